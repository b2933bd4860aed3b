package bpf

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPythonTaskWrite is what naming the asyncio task adds to a TCP
// write of a CPython process: write(2) traced as any process's
// (ns/call-traced), and traced with this process registered as CPython
// 3.11 over a fake frame chain as deep as an asyncio stream write's (two
// plain frames, three coroutines, the loop's frame: six frames read,
// ns/call-python); added-ns/call-python is the difference.
func BenchmarkPythonTaskWrite(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	write := benchSyscall{"write", unix.SYS_WRITE, true}
	var plain, python float64
	for range b.N {
		b.StopTimer()
		tr, stop := loadForBench(b, Config{SelfPID: 1, NoPythonTasks: true})
		b.StartTimer()
		_, t := timeSyscall(b, write, tr)
		b.StopTimer()
		runtime.LockOSThread()
		fake := newFakePython(unix.Gettid(), []bool{false, false, true, true, true, false, false, false})
		if err := (&PythonRuntime{procs: tr.objs.PyProcs}).register(uint32(os.Getpid()), &fake.rt); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, p := timeSyscall(b, write, tr)
		b.StopTimer()
		runtime.UnlockOSThread()
		runtime.KeepAlive(fake)
		stop()
		b.StartTimer()
		plain += t
		python += p
	}
	n := float64(b.N)
	b.ReportMetric(plain/n, "ns/call-traced")
	b.ReportMetric(python/n, "ns/call-python")
	b.ReportMetric((python-plain)/n, "added-ns/call-python")
}
