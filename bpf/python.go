package bpf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync/atomic"

	"github.com/cilium/ebpf"
)

// PythonRuntime makes CPython asyncio servers attributable: it registers
// each CPython process's runtime address and structure offsets with the
// kernel side, which then marks every TCP write of the process with the
// asyncio task that made it (EVENT_DATA cause CAUSE_TASK). No uprobe: the
// task is read from the interpreter's memory at the syscall, so the cost
// is a few user-memory reads per write of a Python process and nothing
// for other processes.
type PythonRuntime struct {
	procs *ebpf.Map
	log   *slog.Logger

	// seen caches, per executable or libpython file, whether it told an
	// error (logged once per file). Only run touches it.
	seen map[string]bool
	work chan uint32
	quit chan struct{}
	done chan struct{}

	registered atomic.Uint64 // CPython processes registered with the kernel side
	failed     atomic.Uint64 // CPython processes weft could not track
	exited     atomic.Uint64 // gone before they were inspected
	dropped    atomic.Uint64 // notices lost to a full queue
}

func newPythonRuntime(objs *weftObjects, log *slog.Logger) *PythonRuntime {
	p := &PythonRuntime{procs: objs.PyProcs, log: log, seen: map[string]bool{},
		work: make(chan uint32, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Observe is told of every new (or newly exec'd) process on the event
// goroutine; a CPython one is inspected on the runtime's own goroutine.
func (p *PythonRuntime) Observe(pid uint32) {
	if !IsPythonProcess(pid) {
		return
	}
	select {
	case p.work <- pid:
	default:
		p.dropped.Add(1)
	}
}

// ScanAll observes every running process: servers started before weft.
func (p *PythonRuntime) ScanAll() { eachOtherProcess(p.Observe) }

func (p *PythonRuntime) run() {
	defer close(p.done)
	for {
		select {
		case <-p.quit:
			return
		case pid := <-p.work:
			rt, err := InspectPython(pid)
			if err == nil {
				err = p.register(pid, rt)
			}
			switch {
			case err == nil:
				p.registered.Add(1)
				p.log.Debug("python process tracked by asyncio task", "pid", pid, "python", rt.Version, "offsets", rt.From, "file", rt.File)
			case errors.Is(err, ErrNotPython):
			case errors.Is(err, fs.ErrNotExist):
				p.exited.Add(1)
			default:
				p.failed.Add(1)
				if key := err.Error(); !p.seen[key] && len(p.seen) < maxGoBins {
					p.seen[key] = true
					p.log.Info("python program not tracked by asyncio task: its calls under concurrency stay roots", "pid", pid, "err", err)
				}
			}
		}
	}
}

func (p *PythonRuntime) register(pid uint32, rt *PyRuntime) error {
	o := rt.Offsets
	v := weftPyOffsets{Runtime: rt.Runtime, InterpMain: o.InterpMain, ThreadsHead: o.ThreadsHead, TsNext: o.TSNext,
		TsNativeTid: o.TSNativeTID, TsCframe: o.TSCFrame, CframeCurrent: o.CFrameCurrent, FramePrevious: o.FramePrevious,
		FrameOwner: o.FrameOwner, OwnedByGenerator: o.OwnedByGenerator}
	if err := p.procs.Put(pid, &v); err != nil {
		return fmt.Errorf("register python process: %w", err)
	}
	return nil
}

// Registered, Failed, Exited and Dropped are for metrics.
func (p *PythonRuntime) Registered() uint64 { return p.registered.Load() }
func (p *PythonRuntime) Failed() uint64     { return p.failed.Load() }
func (p *PythonRuntime) Exited() uint64     { return p.exited.Load() }
func (p *PythonRuntime) Dropped() uint64    { return p.dropped.Load() }

func (p *PythonRuntime) close() {
	close(p.quit)
	<-p.done
}
