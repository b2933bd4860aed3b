package bpf

import (
	"encoding/binary"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakePython lays out, in this process's memory, the chain of CPython 3.11
// structures the kernel side walks (runtime -> main interpreter -> thread
// state of the calling thread -> C frame -> frames), with frame owners as
// given from the innermost frame outwards (true: a coroutine's frame).
type fakePython struct {
	mem    []byte // never moved: Go's heap does not compact
	frames []uint64
	rt     PyRuntime
}

func newFakePython(tid int, owners []bool) *fakePython {
	o := pyTable["3.11"]
	f := &fakePython{mem: make([]byte, 4096+len(owners)*128)}
	base := uint64(uintptr(unsafe.Pointer(&f.mem[0])))
	put := func(at uint64, v uint64) { binary.LittleEndian.PutUint64(f.mem[at-base:], v) }
	runtimeAt, interp, other, ts, cframe := base, base+256, base+512, base+768, base+1024
	put(runtimeAt+uint64(o.InterpMain), interp)
	// Two thread states: another thread's first, as in a process whose
	// main thread is not the loop's.
	put(interp+uint64(o.ThreadsHead), other)
	put(other+uint64(o.TSNativeTID), uint64(tid)+1)
	put(other+uint64(o.TSNext), ts)
	put(ts+uint64(o.TSNativeTID), uint64(tid))
	put(ts+uint64(o.TSCFrame), cframe)
	for i := range owners {
		fr := base + 2048 + uint64(i)*128
		f.frames = append(f.frames, fr)
		if owners[i] {
			f.mem[fr-base+uint64(o.FrameOwner)] = o.OwnedByGenerator
		}
		if i > 0 {
			put(f.frames[i-1]+uint64(o.FramePrevious), fr)
		}
	}
	if len(f.frames) > 0 {
		put(cframe+uint64(o.CFrameCurrent), f.frames[0])
	}
	f.rt = PyRuntime{Version: "3.11", Runtime: runtimeAt, Offsets: o, From: "table"}
	return f
}

// taskRecorder keeps the cause of every egress data event.
type taskRecorder struct {
	nopHandler
	mu     sync.Mutex
	causes map[int32][]struct {
		kind uint32
		task uint64
	}
}

func (r *taskRecorder) Data(ev *DataEvent, _ []byte) {
	if ev.Dir != DirEgress {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.causes[ev.Fd] = append(r.causes[ev.Fd], struct {
		kind uint32
		task uint64
	}{ev.CauseKind, ev.CauseTask})
}

// TestPythonTaskCause registers this process as CPython with a fake frame
// chain and checks what the kernel names as the task of a TCP write: the
// outermost frame of the innermost run of coroutine frames, or nothing
// when no coroutine runs.
func TestPythonTaskCause(t *testing.T) {
	requireKernel(t)
	tr, err := Load(Config{SelfPID: 1, NoPythonTasks: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec := &taskRecorder{causes: map[int32][]struct {
		kind uint32
		task uint64
	}{}}
	done := make(chan error, 1)
	go func() { done <- tr.Run(rec) }()
	defer func() {
		tr.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	// innermost first: two plain frames (transport.write, StreamWriter.write),
	// three coroutines (get, handle... the task's), the loop's plain frames,
	// then an older coroutine run further out that must not be taken.
	cases := []struct {
		name   string
		owners []bool
		want   int // index of the frame named, -1: none
	}{
		{"task", []bool{false, false, true, true, true, false, false, true}, 4},
		{"coroutine innermost", []bool{true, true, false}, 1},
		{"event loop", []bool{false, false, false, false}, -1},
	}
	for _, tc := range cases {
		fake := newFakePython(tid, tc.owners)
		p := &PythonRuntime{procs: tr.objs.PyProcs}
		if err := p.register(uint32(unix.Getpid()), &fake.rt); err != nil {
			t.Fatal(err)
		}
		cli, srv := tcpPair(t)
		if _, err := unix.Write(cli, []byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		want := uint64(0)
		if tc.want >= 0 {
			want = fake.frames[tc.want]
		}
		var got []struct {
			kind uint32
			task uint64
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(got) == 0; time.Sleep(10 * time.Millisecond) {
			rec.mu.Lock()
			got = rec.causes[int32(cli)]
			delete(rec.causes, int32(cli))
			rec.mu.Unlock()
		}
		switch {
		case len(got) == 0:
			t.Errorf("%s: no event for the write", tc.name)
		case want == 0 && got[0].kind == CauseTask:
			t.Errorf("%s: task %#x named, want none", tc.name, got[0].task)
		case want != 0 && (got[0].kind != CauseTask || got[0].task != want):
			t.Errorf("%s: cause %d task %#x, want task %#x (frame %d)", tc.name, got[0].kind, got[0].task, want, tc.want)
		}
		unix.Close(cli)
		unix.Close(srv)
		runtime.KeepAlive(fake)
	}
}
