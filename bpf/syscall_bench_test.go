package bpf

import (
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Per-syscall cost of weft's programs, in the style of DeepFlow's
// microbenchmark: 10^5 calls of one syscall moving 64 bytes on a connected
// loopback TCP socket pair, timed without weft's programs and with the
// tracer loaded (tracing this process), in one run.
const (
	benchCalls   = 100_000
	benchPayload = 64
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

// BenchmarkSyscalls reports, per syscall, ns/call-untraced (no weft),
// ns/call-traced (weft's tracepoint programs attached and tracing the
// benchmark's own sockets) and added-ns/call, the difference; each the
// median batch's mean (see timeSyscall), averaged over b.N rounds. Only the
// calls are timed: the peer feeds or drains the connection between
// batches, untimed, on the same thread, so no call waits for data or
// room. Go's syscall entry is in both figures; it cancels out of the
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
			var untraced, traced float64
			for range b.N {
				untraced += timeSyscall(b, sc)
				b.StopTimer()
				tr, stop := loadForBench(b, Config{SelfPID: 1}) // pid 1 spared: this process is traced
				b.StartTimer()
				traced += timeSyscall(b, sc)
				b.StopTimer()
				requireSeen(b, tr, benchCalls)
				stop()
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(untraced/n, "ns/call-untraced")
			b.ReportMetric(traced/n, "ns/call-traced")
			b.ReportMetric((traced-untraced)/n, "added-ns/call")
		})
	}
}

// timeSyscall makes benchCalls calls of sc on a fresh loopback connection,
// timed in batches of benchBatch, and returns the mean time of one call in
// the median batch, in ns: on a small shared VM a batch the scheduler
// interrupted is slower by far more than the programs cost, and the median
// leaves those out.
func timeSyscall(b *testing.B, sc benchSyscall) float64 {
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
	batches := make([]time.Duration, 0, benchCalls/benchBatch)
	for done := 0; done < benchCalls; done += benchBatch {
		if !sc.send {
			// Feed the batch in one write and wait until all of it is
			// readable, so no timed read blocks.
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
		batches = append(batches, time.Since(start))
		if sc.send {
			readAll(b, srv, bulk)
		}
	}
	slices.Sort(batches)
	return float64(batches[len(batches)/2].Nanoseconds()) / benchBatch
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
func tcpPair(b *testing.B) (cli, srv int) {
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
