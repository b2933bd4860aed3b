package conn

import (
	"fmt"
	"net/netip"
)

// Role says which end of a TCP connection the traced process is.
type Role uint8

const (
	// RoleUnknown is a connection that predates weft: nobody saw connect or accept.
	RoleUnknown Role = iota
	// RoleClient is the connecting side (connect).
	RoleClient
	// RoleServer is the accepting side (accept/accept4).
	RoleServer
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return "unknown"
}

// Direction is the way bytes flow, seen from the traced process.
type Direction uint8

const (
	// Egress is data the process wrote (sent to the peer).
	Egress Direction = iota
	// Ingress is data the process read (received from the peer).
	Ingress
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// Opposite returns the other direction.
func (d Direction) Opposite() Direction { return 1 - d }

// ID names one connection for its whole life. FD numbers are reused by the
// kernel; the generation, assigned in the kernel when the socket is first
// seen, tells two sockets that shared an fd apart.
type ID struct {
	PID uint32
	FD  int32
	Gen uint64
}

func (id ID) String() string { return fmt.Sprintf("%d/%d#%d", id.PID, id.FD, id.Gen) }

// Tuple is the connection's addresses as the traced process sees them.
type Tuple struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
}

// Info is what is known about a connection apart from its bytes. It is
// immutable once the connection is in the table: parsers that infer the
// role of a connection that predates weft put it on the Exchange instead.
type Info struct {
	ID    ID
	Tuple Tuple
	Role  Role
	TID   uint32 // thread that opened (or first used) the connection
	// Comm is the thread-group leader's kernel task name when the leader
	// opened the connection, else empty: a worker thread's name (it may
	// have renamed itself) is not the process's. A fallback service name.
	Comm     string
	OpenedAt int64 // monotonic ns
	UDP      bool  // a UDP socket: segments are datagrams
	// TLS is set on the generation of a connection that carries plaintext
	// captured from OpenSSL; its Seq values are plaintext offsets, which
	// both ends share.
	TLS bool
}

// Segment is a run of one direction's stream, delivered in offset order.
// Bytes the kernel moved but weft did not capture (capture truncated to the
// per-syscall limit, events lost, sendfile) arrive as a Segment with Data
// nil and Skip > 0, so parsers can step over a body of known length.
type Segment struct {
	Dir    Direction
	Offset uint64 // offset of the segment's first byte in its direction's stream
	Data   []byte // captured bytes; only valid during the call
	Skip   uint64 // uncaptured bytes, when Data is nil
	Start  int64  // monotonic ns when the syscall that moved these bytes began
	End    int64  // monotonic ns when it returned
	Seq    uint32 // TCP sequence number of the segment's first byte
	TID    uint32 // thread that made the syscall
	// Cause is, for a write, the read the kernel attributes it to.
	Cause Cause
	// Datagram is set for UDP: Data is one whole datagram (never
	// reassembled, Offset counts datagrams' bytes only for ordering) and
	// Peer is the remote address it came from or went to.
	Datagram bool
	Peer     netip.AddrPort
}

// CauseKind says how the kernel tied a write to an earlier read.
type CauseKind uint8

const (
	// CauseNone: nothing the process read is known to have caused it.
	CauseNone CauseKind = iota
	// CauseThread: the thread's last socket read since its event loop
	// last woke (or, for a blocking thread, since it last read).
	CauseThread
	// CauseConnect: the read the thread had done when it connected this
	// socket (the write is the connection's first).
	CauseConnect
	// CauseGoroutine: the last read of the goroutine that made the
	// request, or of the goroutine that started it (Go).
	CauseGoroutine
	// CauseTask: the asyncio task (CPython) that wrote, in Task; set on
	// the writes of served responses too, so the correlator can tell which
	// request a task was serving when it made a call.
	CauseTask
)

func (k CauseKind) String() string {
	switch k {
	case CauseThread:
		return "thread"
	case CauseConnect:
		return "connect"
	case CauseGoroutine:
		return "goroutine"
	case CauseTask:
		return "task"
	}
	return "none"
}

// Cause names the read a write is attributed to: connection FD#Gen of the
// same process, the read that returned at At. Which exchange that read
// belonged to is the correlator's to find.
type Cause struct {
	Kind CauseKind
	FD   int32
	Gen  uint64
	At   int64 // monotonic ns
	// Stream, when set, names HTTP/2 stream Stream of FD#Gen instead of a
	// read: the grpc-go server stream a handler goroutine serves.
	Stream uint32
	// Task names, for CauseTask, the writer's task within the process (no
	// read: FD, Gen and At are zero).
	Task uint64
}

// Valid reports whether c names a read.
func (c Cause) Valid() bool { return c.Kind != CauseNone }

// Len is the number of stream bytes the segment covers.
func (s *Segment) Len() uint64 {
	if s.Data != nil {
		return uint64(len(s.Data))
	}
	return s.Skip
}

// Handler consumes one connection's segments in order. It is created once
// per connection and called from a single goroutine.
type Handler interface {
	// Segment receives the next run of one direction. The table reuses s
	// and the bytes it points to after the call returns: copy what must
	// outlive it.
	Segment(s *Segment)
	// Close is called once when the connection ends (close, process exit or
	// idle eviction); ts is the monotonic time of the end.
	Close(ts int64)
}

// HandlerFactory makes the Handler for a new connection. The Info pointer
// stays valid for the connection's life.
type HandlerFactory func(info *Info) Handler

// From returns the part of s at or after offset next, the position a
// parser has already reached in s's direction, and whether any is left: a
// segment that overlaps bytes already seen is trimmed, its Seq advanced.
func (s Segment) From(next uint64) (Segment, bool) {
	if s.Offset >= next {
		return s, true
	}
	old := next - s.Offset
	if old >= s.Len() {
		return s, false
	}
	s.Offset, s.Seq = next, s.Seq+uint32(old)
	if s.Data != nil {
		s.Data = s.Data[old:]
	} else {
		s.Skip -= old
	}
	return s, true
}
