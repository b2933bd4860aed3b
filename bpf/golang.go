package bpf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// GoRuntime makes Go processes attributable: it registers each one's
// goroutine offsets with the kernel side, so socket reads are remembered
// per goroutine rather than per thread, and hooks net/http's client
// hand-off ((*persistConn).roundTrip, once per executable file) so a
// request written by a connection's writeLoop goroutine is attributed to
// the goroutine that made it. One uprobe trap per client request; no
// uretprobes (they corrupt Go stacks).
type GoRuntime struct {
	procs      *ebpf.Map
	prog       *ebpf.Program
	log        *slog.Logger
	clientHook bool // attach the roundTrip and grpc-go uprobes
	grpcServer *ebpf.Program
	grpcClient *ebpf.Program

	// pids is owned by the event goroutine (Observe, Forget, IsGo).
	pids map[uint32]struct{}

	mu    sync.Mutex
	files map[fileID][]link.Link // nil value: inspected, nothing to hook
	// bins caches what each executable file said: a program started many
	// times (a CLI, a worker pool) is read once. Only run touches it.
	bins map[fileID]goInspection
	work chan uint32
	quit chan struct{}
	done chan struct{}

	registered atomic.Uint64 // Go processes registered with the kernel side
	failed     atomic.Uint64 // Go processes weft could not track
	exited     atomic.Uint64 // Go processes gone before they were inspected
	dropped    atomic.Uint64 // notices lost to a full queue
	hooked     atomic.Int64  // executables with the hand-off uprobe
	grpcHooked atomic.Int64  // executables with the grpc-go stream uprobes
	grpcMissed atomic.Int64  // executables linking grpc-go without them
}

func newGoRuntime(objs *weftObjects, log *slog.Logger, clientHook bool) *GoRuntime {
	g := &GoRuntime{procs: objs.GoProcs, prog: objs.UprobeGoRoundtrip, log: log, clientHook: clientHook,
		grpcServer: objs.UprobeGoGrpcHandleStream, grpcClient: objs.UprobeGoGrpcClientWrite,
		pids: map[uint32]struct{}{}, files: map[fileID][]link.Link{}, bins: map[fileID]goInspection{},
		work: make(chan uint32, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// Observe is told of every new (or newly exec'd) process on the event
// goroutine. A Go process is known as one at once, before its offsets are
// registered: until then its events carry no goroutine cause, and thread
// causes, wrong for Go, are ignored (see IsGo).
func (g *GoRuntime) Observe(pid uint32) {
	if !IsGoExecutable(fmt.Sprintf("/proc/%d/exe", pid)) {
		delete(g.pids, pid) // exec'd into something else
		return
	}
	g.pids[pid] = struct{}{}
	select {
	case g.work <- pid:
	default:
		g.dropped.Add(1)
	}
}

// Forget drops an exited process.
func (g *GoRuntime) Forget(pid uint32) {
	delete(g.pids, pid)
}

// ScanAll observes every running process: Go servers started before weft.
func (g *GoRuntime) ScanAll() { eachOtherProcess(g.Observe) }

// eachOtherProcess calls fn for every running process but weft, which is
// never traced (inspecting its own binary would be waste).
func eachOtherProcess(fn func(pid uint32)) {
	entries, _ := os.ReadDir("/proc")
	self := uint64(os.Getpid())
	for _, e := range entries {
		if pid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && pid != self {
			fn(uint32(pid))
		}
	}
}

// IsGo reports whether pid runs a Go program. Event goroutine only.
func (g *GoRuntime) IsGo(pid uint32) bool {
	_, ok := g.pids[pid]
	return ok
}

func (g *GoRuntime) run() {
	defer close(g.done)
	for {
		select {
		case <-g.quit:
			return
		case pid := <-g.work:
			select {
			case <-g.quit: // shutting down: the queue can wait no more
				return
			default:
			}
			switch fresh, err := g.register(pid); {
			case err == nil:
			case errors.Is(err, fs.ErrNotExist):
				g.exited.Add(1) // it ended before it could be inspected
			default:
				g.failed.Add(1)
				if fresh { // once per executable file, not per process
					g.log.Info("go program not tracked by goroutine: its calls under concurrency stay roots", "pid", pid, "err", err)
				}
			}
		}
	}
}

// register reads pid's executable and tells the kernel side its offsets;
// fresh says the executable was read now rather than known.
func (g *GoRuntime) register(pid uint32) (fresh bool, err error) {
	path := fmt.Sprintf("/proc/%d/exe", pid)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, fs.ErrNotExist // gone already: nothing to track
	}
	id := fileID{dev: st.Dev, ino: st.Ino}
	in, ok := g.bins[id]
	if !ok {
		fresh = true
		in.bin, in.err = InspectGo(path)
		if errors.Is(in.err, fs.ErrNotExist) {
			return fresh, in.err // the process went: the file may still be read for the next
		}
		if len(g.bins) >= maxGoBins {
			clear(g.bins)
		}
		g.bins[id] = in
	}
	bin, err := in.bin, in.err
	if err != nil {
		return fresh, err
	}
	g.mu.Lock()
	_, seen := g.files[id]
	if !seen {
		type hook struct {
			sym  string
			prog *ebpf.Program
			addr uint64
		}
		var hooks []hook
		if bin.RoundTrip != 0 && g.clientHook {
			hooks = append(hooks, hook{roundTripSymbol, g.prog, bin.RoundTrip})
		}
		if bin.GRPCHandleStream != 0 && bin.GRPCClientWrite != 0 && g.clientHook {
			hooks = append(hooks, hook{grpcHandleStreamSymbol, g.grpcServer, bin.GRPCHandleStream},
				hook{grpcClientWriteSymbol, g.grpcClient, bin.GRPCClientWrite})
		}
		var links []link.Link
		var ex *link.Executable
		var err error
		if len(hooks) > 0 {
			ex, err = link.OpenExecutable(path)
		}
		for _, h := range hooks {
			if err != nil {
				break
			}
			var l link.Link
			if l, err = ex.Uprobe(h.sym, h.prog, &link.UprobeOptions{Address: h.addr}); err == nil {
				links = append(links, l)
			} else {
				err = fmt.Errorf("attach uprobe %s: %w", h.sym, err)
			}
		}
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			g.mu.Unlock()
			return fresh, err
		}
		if bin.RoundTrip != 0 && g.clientHook {
			g.hooked.Add(1)
		}
		if bin.GRPCHandleStream != 0 && g.clientHook {
			g.grpcHooked.Add(1)
		}
		if bin.GRPCUnhooked != "" {
			g.grpcMissed.Add(1)
			g.log.Info("grpc-go calls of this program stay roots under concurrency", "pid", pid, "reason", bin.GRPCUnhooked)
		}
		g.files[id] = links
	}
	g.mu.Unlock()
	o := bin.Offsets
	v := weftGoOffsets{TlsG: o.TLSG, Goid: o.GoID, ParentGoid: o.ParentGoID, PconnConn: o.PConnConn, NetfdSysfd: o.NetFDSysfd,
		GrpcSrvStreamId: o.GRPCServerStreamID, GrpcSrvConn: o.GRPCServerConn, GrpcCliStreamId: o.GRPCClientStreamID, GrpcCliConn: o.GRPCClientConn}
	if err := g.procs.Put(pid, &v); err != nil {
		return fresh, fmt.Errorf("register go process: %w", err)
	}
	g.registered.Add(1)
	g.log.Debug("go process tracked by goroutine", "pid", pid, "go", bin.Version, "offsets", bin.From, "http_client_hook", bin.RoundTrip != 0)
	return fresh, nil
}

// goInspection is InspectGo's answer for one file.
type goInspection struct {
	bin *GoBinary
	err error
}

// maxGoBins bounds the inspection cache (distinct executables).
const maxGoBins = 4096

// Registered, Failed, Dropped and Hooked are for metrics.
func (g *GoRuntime) Registered() uint64 { return g.registered.Load() }
func (g *GoRuntime) Failed() uint64     { return g.failed.Load() }
func (g *GoRuntime) Exited() uint64     { return g.exited.Load() }
func (g *GoRuntime) Dropped() uint64    { return g.dropped.Load() }
func (g *GoRuntime) Hooked() int64      { return g.hooked.Load() }

// GRPCHooked is the number of executables with grpc-go's stream uprobes.
func (g *GoRuntime) GRPCHooked() int64 { return g.grpcHooked.Load() }

// GRPCUnhooked is the number of executables that link grpc-go but could
// not get its hooks (no DWARF).
func (g *GoRuntime) GRPCUnhooked() int64 { return g.grpcMissed.Load() }

func (g *GoRuntime) close() {
	close(g.quit)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ls := range g.files {
		for _, l := range ls {
			l.Close()
		}
	}
	clear(g.files)
}
