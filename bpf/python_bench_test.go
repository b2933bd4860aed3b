package bpf

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPythonTaskWrite is what naming the asyncio task adds to a TCP
// write of a CPython process, as the kernel's own run time of write's entry
// and exit programs per call (BPF statistics; steadier than wall clock on a
// busy VM): bpf-ns/call-plain with this process traced as any other, and
// bpf-ns/call-python with it registered as CPython 3.11 over a fake frame
// chain as deep as an asyncio stream write's (two plain frames, three
// coroutines, the loop's frame: six frames read). added-ns/call-python is
// the difference. Each figure comes from its own tracer, loaded in turn.
func BenchmarkPythonTaskWrite(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	write := benchSyscall{"write", unix.SYS_WRITE, true}
	measure := func(python bool) float64 {
		b.StopTimer()
		defer b.StartTimer()
		tr, stop := loadForBench(b, Config{SelfPID: 1, OnlyPID: os.Getpid(), ProgramStats: true, NoPythonTasks: true})
		defer stop()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fake := newFakePython(unix.Gettid(), []bool{false, false, true, true, true, false, false, false})
		defer runtime.KeepAlive(fake)
		if python {
			if err := (&PythonRuntime{procs: tr.objs.PyProcs}).register(uint32(os.Getpid()), &fake.rt); err != nil {
				b.Fatal(err)
			}
		}
		seen := tr.Received()
		b.StartTimer()
		timeSyscall(b, write, tr)
		b.StopTimer()
		requireSeen(b, tr, seen+benchCalls)
		return programNsPerCall(b, tr, write.name)
	}
	var plain, python float64
	for range b.N {
		plain += measure(false)
		python += measure(true)
	}
	n := float64(b.N)
	b.ReportMetric(plain/n, "bpf-ns/call-plain")
	b.ReportMetric(python/n, "bpf-ns/call-python")
	b.ReportMetric((python-plain)/n, "added-ns/call-python")
}
