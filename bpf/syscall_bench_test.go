package bpf

import (
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Per-syscall cost of weft's programs, in the style of DeepFlow's
// microbenchmark: 10^5 calls of one syscall moving 64 bytes on a connected
// loopback TCP socket pair without weft's programs and 10^5 with them
// (tracing this process), in one run.
const (
	benchCalls   = 100_000
	benchRounds  = 10  // untraced and traced rounds alternate, benchCalls/benchRounds calls each
	benchPayload = 64  // bytes per call
	benchBatch   = 250 // calls timed back to back; 250 x 64 B fit any socket buffer
)

// benchSyscall is one syscall under test: send moves bytes out of the
// client's socket, otherwise into the server's.
type benchSyscall struct {
	name string
	nr   uintptr
	send bool
}

var benchSyscalls = []benchSyscall{
	{"read", unix.SYS_READ, false},
	{"write", unix.SYS_WRITE, true},
	{"recvfrom", unix.SYS_RECVFROM, false},
	{"sendto", unix.SYS_SENDTO, true},
}

// BenchmarkSyscalls reports, per syscall, ns/call-untraced (none of weft's
// tracepoint programs attached), ns/call-traced (the syscall's entry and
// exit programs attached, tracing the benchmark's own sockets) and
// added-ns/call, the difference, and bpf-ns/call, the programs' own run
// time per call by the kernel's BPF statistics (steadier on a busy
// machine than the wall-clock difference). The tracer is loaded once; the syscall's
// two programs are attached and detached between rounds, so the two
// figures alternate on the same connection and a drift in the machine's
// speed (a shared VM) moves both. Only the calls are
// timed, in batches: the peer feeds or drains the connection between
// batches, untimed, on the same thread, so no call waits for data or
// room. Each figure is the mean call of the median batch (a batch the
// scheduler interrupted is slower by far more than the programs cost),
// averaged over b.N. Go's syscall entry is in both; it cancels out of the
// difference.
func BenchmarkSyscalls(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	for _, sc := range benchSyscalls {
		b.Run(sc.name, func(b *testing.B) {
			if n := loadedPrograms("exit_" + sc.name); n > 0 {
				b.Logf("%d other programs named exit_%s are loaded (another weft?): both figures include theirs", n, sc.name)
			}
			var untraced, traced, inBPF float64
			for range b.N {
				b.StopTimer()
				// This process alone is traced (pid 1 is spared instead of it).
				tr, stop := loadForBench(b, Config{SelfPID: 1, OnlyPID: os.Getpid(), ProgramStats: true})
				seen := tr.Received()
				b.StartTimer()
				u, t := timeSyscall(b, sc, tr)
				b.StopTimer()
				requireSeen(b, tr, seen+benchCalls)
				inBPF += programNsPerCall(b, tr, sc.name)
				stop()
				b.StartTimer()
				untraced += u
				traced += t
			}
			n := float64(b.N)
			b.ReportMetric(untraced/n, "ns/call-untraced")
			b.ReportMetric(traced/n, "ns/call-traced")
			b.ReportMetric((traced-untraced)/n, "added-ns/call")
			b.ReportMetric(inBPF/n, "bpf-ns/call")
		})
	}
}

// timeSyscall detaches tr's tracepoints, then makes benchCalls calls of
// sc without any of them and benchCalls with sc's entry and exit programs
// attached (the only ones of weft that run on those calls), alternating in
// benchRounds rounds on one loopback connection, and returns the mean call
// of the median batch of each, in ns. tr is left detached.
func timeSyscall(b *testing.B, sc benchSyscall, tr *Tracer) (untraced, traced float64) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cli, srv := tcpPair(b)
	defer unix.Close(cli)
	defer unix.Close(srv)

	payload := make([]byte, benchPayload)
	bulk := make([]byte, benchPayload*benchBatch)
	p, n := uintptr(unsafe.Pointer(&payload[0])), uintptr(len(payload))
	fd := uintptr(srv)
	if sc.send {
		fd = uintptr(cli)
	}
	tr.detach()
	var pair []link.Link
	var batches [2][]time.Duration // untraced, traced
	for round := range 2 * benchRounds {
		if round%2 == 1 {
			pair = attachPair(b, tr, sc.name)
		} else {
			for _, l := range pair {
				l.Close()
			}
		}
		for done := 0; done < benchCalls/benchRounds; done += benchBatch {
			if !sc.send {
				// Feed the batch in one write and wait until all of it
				// is readable, so no timed read blocks.
				writeAll(b, cli, bulk)
				for {
					queued, err := unix.IoctlGetInt(srv, unix.SIOCINQ)
					if err != nil {
						b.Fatalf("SIOCINQ: %v", err)
					}
					if queued >= len(bulk) {
						break
					}
					runtime.Gosched()
				}
			}
			start := time.Now()
			for range benchBatch {
				// read/write(fd, p, n); recvfrom/sendto(fd, p, n, 0, NULL, 0)
				r, _, errno := unix.Syscall6(sc.nr, fd, p, n, 0, 0, 0)
				if errno != 0 || r != n {
					b.Fatalf("%s: %d bytes, %v", sc.name, r, errno)
				}
			}
			batches[round%2] = append(batches[round%2], time.Since(start))
			if sc.send {
				readAll(b, srv, bulk)
			}
		}
	}
	for _, l := range pair {
		l.Close()
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds()) / benchBatch
	}
	return median(batches[0]), median(batches[1])
}

// detach closes t's tracepoint links.
func (t *Tracer) detach() {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
}

// attachPair attaches t's programs for the entry and exit of one syscall,
// as Load does.
func attachPair(b *testing.B, t *Tracer, syscall string) []link.Link {
	b.Helper()
	var ls []link.Link
	for _, p := range probes {
		if p.name != "sys_enter_"+syscall && p.name != "sys_exit_"+syscall {
			continue
		}
		l, err := link.Tracepoint(p.group, p.name, p.prog(&t.objs.weftPrograms), nil)
		if err != nil {
			b.Fatalf("attach %s: %v", p.name, err)
		}
		ls = append(ls, l)
	}
	if len(ls) != 2 {
		b.Fatalf("%d probes for %s, want entry and exit", len(ls), syscall)
	}
	return ls
}

// programNsPerCall returns the kernel's run time of syscall's entry and
// exit programs (BPF statistics) per traced call of the benchmark: the
// programs' own cost, without the tracepoints'. Other processes' calls
// made while the pair was attached add their early outs (OnlyPID) to it.
func programNsPerCall(b *testing.B, t *Tracer, syscall string) float64 {
	b.Helper()
	var ns float64
	for _, p := range probes {
		if p.name != "sys_enter_"+syscall && p.name != "sys_exit_"+syscall {
			continue
		}
		s, err := p.prog(&t.objs.weftPrograms).Stats()
		if err != nil {
			b.Fatalf("stats of %s: %v", p.name, err)
		}
		ns += float64(s.Runtime.Nanoseconds())
	}
	return ns / benchCalls
}

// requireSeen fails unless tr has had at least n events (read or lost):
// a traced figure from programs that bailed out early would flatter weft.
func requireSeen(b *testing.B, tr *Tracer, n uint64) {
	b.Helper()
	var seen uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		lost, err := tr.Lost()
		if err != nil {
			b.Fatal(err)
		}
		seen = tr.Received()
		for _, l := range lost {
			seen += l
		}
		if seen >= n {
			return
		}
	}
	b.Fatalf("the tracer had %d events, want at least %d: the benchmark's calls were not traced", seen, n)
}

// tcpPair returns both ends of a blocking loopback TCP connection with
// Nagle off (as Go and most servers set it).
func tcpPair(b testing.TB) (cli, srv int) {
	b.Helper()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		b.Fatal(err)
	}
	addr, err := unix.Getsockname(ln)
	if err != nil {
		b.Fatal(err)
	}
	if cli, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		b.Fatal(err)
	}
	if err := unix.Connect(cli, addr); err != nil {
		b.Fatal(err)
	}
	if srv, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	for _, fd := range []int{cli, srv} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			b.Fatal(err)
		}
	}
	return cli, srv
}

func writeAll(b *testing.B, fd int, p []byte) {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err != nil {
			b.Fatalf("feed: %v", err)
		}
		p = p[n:]
	}
}

// readAll reads exactly len(buf) bytes.
func readAll(b *testing.B, fd int, buf []byte) {
	for got := 0; got < len(buf); {
		n, err := unix.Read(fd, buf[got:])
		if err != nil || n == 0 {
			b.Fatalf("drain: %d, %v", n, err)
		}
		got += n
	}
}

// loadedPrograms counts the BPF programs loaded on the host under name
// (the kernel's name, at most 15 characters).
func loadedPrograms(name string) int {
	count := 0
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return count
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && info.Name == name {
			count++
		}
		p.Close()
	}
}
