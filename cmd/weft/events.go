package main

import (
	"time"

	"github.com/weftrace/weft/bpf"
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/internal/memlimit"
	"github.com/weftrace/weft/procmeta"
)

// eventSink feeds decoded kernel events into the connection table, on the
// ring buffer reader's goroutine.
type eventSink struct {
	mem        *memlimit.Guard // sheds data events near the memory cap
	table      *conn.Table
	procs      *procmeta.Cache
	corr       *correlate.Correlator // its timer runs on Tick
	ssl        *bpf.OpenSSL          // nil: no TLS discovery
	golang     *bpf.GoRuntime        // nil: no goroutine tracking
	python     *bpf.PythonRuntime    // nil: no asyncio task tracking
	clock      *bpf.Clock            // re-synced on the eviction tick: wall clocks step
	evictEvery int64
	lastEvict  int64
}

var _ bpf.Handler = (*eventSink)(nil)

func (s *eventSink) ConnOpen(ev *bpf.ConnEvent) {
	local, remote := ev.Tuple()
	// The comm is the calling thread's; only the leader's names the
	// process (a worker may have renamed itself, as dig's isc-net-0000 do).
	comm := ""
	if ev.Tid == ev.Tgid {
		comm = ev.CommString()
	}
	info := conn.Info{
		ID:       conn.ID{PID: ev.Tgid, FD: ev.Fd, Gen: ev.Gen},
		Tuple:    conn.Tuple{Local: local, Remote: remote},
		Role:     role(ev.Role),
		TID:      ev.Tid,
		Comm:     comm,
		OpenedAt: int64(ev.TsNs),
		UDP:      ev.Proto == uint16(bpf.ProtoUDP),
		TLS:      ev.Tls == 1,
	}
	s.table.Open(info)
	s.corr.ObserveAccept(&info)
}

func (s *eventSink) ConnClose(ev *bpf.ConnEvent) {
	s.table.CloseWithEnds(conn.ID{PID: ev.Tgid, FD: ev.Fd, Gen: ev.Gen}, int64(ev.TsNs), ev.Bytes)
}

func (s *eventSink) Data(ev *bpf.DataEvent, payload []byte) {
	if !s.mem.Admit() {
		return // the connection sees a gap, as for lost events
	}
	dir := conn.Egress
	if ev.Dir == bpf.DirIngress {
		dir = conn.Ingress
	}
	id := conn.ID{PID: ev.Tgid, FD: ev.Fd, Gen: ev.Gen}
	cause := s.cause(ev)
	if ev.Proto == bpf.ProtoUDP {
		s.table.DatagramCaused(id, dir, ev.Len, payload, int64(ev.TsEnterNs), int64(ev.TsExitNs), ev.Tid, ev.PeerAddr(), cause)
		return
	}
	s.table.DataCaused(id, dir, ev.Offset, ev.Len, payload, int64(ev.TsEnterNs), int64(ev.TsExitNs), ev.Seq, ev.Tid, cause)
}

// cause is the read the kernel tied a write to. In a Go process threads
// run any goroutine, so only a goroutine's own cause counts there.
func (s *eventSink) cause(ev *bpf.DataEvent) conn.Cause {
	var k conn.CauseKind
	switch ev.CauseKind {
	case bpf.CauseThread:
		k = conn.CauseThread
	case bpf.CauseConnect:
		k = conn.CauseConnect
	case bpf.CauseGoroutine:
		k = conn.CauseGoroutine
	case bpf.CauseTask:
		return conn.Cause{Kind: conn.CauseTask, Task: ev.CauseTask}
	default:
		return conn.Cause{}
	}
	if k != conn.CauseGoroutine && s.golang != nil && s.golang.IsGo(ev.Tgid) {
		return conn.Cause{}
	}
	return conn.Cause{Kind: k, FD: ev.CauseFd, Gen: ev.CauseGen, At: int64(ev.CauseTs), Stream: ev.CauseStream}
}

func (s *eventSink) StreamCause(ev *bpf.StreamEvent) {
	if ev.CauseKind != bpf.CauseGoroutine {
		return
	}
	s.corr.ObserveStreamCause(conn.ID{PID: ev.Tgid, FD: ev.Fd, Gen: ev.Gen}, ev.Stream,
		conn.Cause{Kind: conn.CauseGoroutine, FD: ev.CauseFd, Gen: ev.CauseGen, At: int64(ev.CauseTs), Stream: ev.CauseStream})
}

func (s *eventSink) ProcessExit(ev *bpf.ProcEvent) {
	s.table.ProcessExit(ev.Tgid, int64(ev.TsNs))
	s.procs.Forget(ev.Tgid)
	if s.golang != nil {
		s.golang.Forget(ev.Tgid)
	}
	if s.ssl != nil {
		s.ssl.Notify(ev.Tgid, true)
	}
}

func (s *eventSink) ProcessInfo(ev *bpf.ProcInfoEvent, argv, env []byte) {
	s.procs.ObserveBlocks(ev.Tgid, argv, env)
	if s.golang != nil {
		s.golang.Observe(ev.Tgid)
	}
	if s.python != nil {
		s.python.Observe(ev.Tgid)
	}
	if s.ssl != nil {
		s.ssl.Notify(ev.Tgid, false)
	}
}

func (s *eventSink) Tick(now int64) {
	s.corr.Flush(now) // join waits end on this goroutine, the one that adds
	if now-s.lastEvict < s.evictEvery {
		return
	}
	s.lastEvict = now
	if s.clock != nil {
		s.clock.Sync()
	}
	s.table.EvictIdle(now)
	s.table.ExpireHandlers(now)
	s.procs.Sweep(time.Now())
}

func role(r uint16) conn.Role {
	switch r {
	case bpf.RoleClient:
		return conn.RoleClient
	case bpf.RoleServer:
		return conn.RoleServer
	}
	return conn.RoleUnknown
}
