package correlate

import (
	"time"

	"github.com/weftrace/weft/conn"
)

// The cause rule: the kernel tells, for each request a process writes,
// which earlier socket read of that process it attributes the write to
// (conn.Cause: the thread's last read since its event loop woke, the read
// the thread had done when it connected the socket, or in Go the last read
// of the goroutine that made the request or of the one that started it).
// That read belongs to an exchange of the same process:
//
//   - a request it was serving: that server span is the parent;
//   - the response of an earlier call it made: the parent is that call's
//     parent (transitively: the second of two sequential calls).
//
// The read names a connection and a time, not an exchange: the exchange is
// the one of that connection live at the read. The rule decides only when
// exactly one exchange of the connection was live between the read and the
// call's start (a multiplexed connection with several streams in flight
// does not decide), and only for a parent that contains the call in time:
// a stale cause (a goroutine's parent that read long ago, a thread whose
// loop state the kernel missed) then leaves the span a root rather than
// nesting it wrongly.

// causeScanSlack bounds how far out of end order a connection's
// exchanges may arrive: events reach user space in batches (10 ms polls,
// per-CPU buffers), far less than this.
const causeScanSlack = int64(100 * time.Millisecond)

// connRef names a connection of a process as the kernel does.
type connRef struct {
	pid uint32
	fd  int32
	gen uint64
}

// causeOutcome is why the cause rule did or did not decide.
type causeOutcome uint8

const (
	causeNested     causeOutcome = iota // parent found
	causeNoExchange                     // no exchange of the cause's connection was live at the read
	causeAmbiguous                      // several were (a multiplexed connection)
	causeOutside                        // the parent found does not contain the call
	causeRootChain                      // the call it follows had no parent either
	numCauseOutcomes
)

func (o causeOutcome) String() string {
	switch o {
	case causeNested:
		return "nested"
	case causeNoExchange:
		return "no_exchange"
	case causeAmbiguous:
		return "ambiguous"
	case causeOutside:
		return "outside_request"
	case causeRootChain:
		return "root_chain"
	}
	return "unknown"
}

// indexConn makes n findable by the connection it moved on.
func (j *joiner) indexConn(n *node, id conn.ID) {
	n.conn = connRef{pid: id.PID, fd: id.FD, gen: id.Gen}
	n.connIndexed = true
	j.byConn[n.conn] = append(j.byConn[n.conn], n)
}

// unindexConn removes an expiring n; a connection's exchanges expire
// roughly in arrival order, so n is near the front.
func (j *joiner) unindexConn(n *node) {
	if !n.connIndexed {
		return
	}
	list := j.byConn[n.conn]
	switch {
	case len(list) > 0 && list[0] == n:
		list[0] = nil
		list = list[1:] // the usual case: no copy
	default:
		for i, m := range list {
			if m == n {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
	}
	if len(list) == 0 {
		delete(j.byConn, n.conn)
		return
	}
	j.byConn[n.conn] = list
}

// causeParent resolves client span c's kernel cause to the server span it
// was made for.
func (j *joiner) causeParent(c *node) (*node, causeOutcome) {
	cs := c.cause
	if cs.Kind == conn.CauseTask {
		return j.taskParent(c)
	}
	if cs.Stream != 0 {
		return j.streamParent(c)
	}
	var hit *node
	live := 0
	// Newest first: a connection's exchanges arrive as they end (give or
	// take the event reader's batching), so once one ended well before the
	// read, the older ones did too. A busy keep-alive connection holds
	// thousands within the expiry window.
	list := j.byConn[connRef{pid: c.pid, fd: cs.FD, gen: cs.Gen}]
	for i := len(list) - 1; i >= 0; i-- {
		n := list[i]
		if n.end < cs.At-causeScanSlack {
			break
		}
		if n == c || n.end < cs.At || n.start > c.start {
			continue // not live between the read and the call
		}
		live++
		if n.start <= cs.At {
			hit = n
		}
	}
	switch {
	case live > 1:
		return nil, causeAmbiguous
	case hit == nil:
		return nil, causeNoExchange
	}
	p := hit
	if hit.isClient() {
		// The response of an earlier call: the parent is the one that
		// call was made for.
		if p = hit.nestedUnder; p == nil {
			return nil, causeRootChain
		}
	}
	if !p.isServer() || !contains(p, c) {
		return nil, causeOutside
	}
	return p, causeNested
}

// streamParent resolves a cause that names an HTTP/2 stream (the grpc-go
// server stream the calling goroutine served): that stream's server span,
// when it contains the call.
func (j *joiner) streamParent(c *node) (*node, causeOutcome) {
	cs := c.cause
	var hit *node
	for _, n := range j.byConn[connRef{pid: c.pid, fd: cs.FD, gen: cs.Gen}] {
		if n.stream == cs.Stream && n.isServer() && n != c {
			if hit != nil {
				return nil, causeAmbiguous // a stream id reused within the window
			}
			hit = n
		}
	}
	switch {
	case hit == nil:
		return nil, causeNoExchange
	case !contains(hit, c):
		return nil, causeOutside
	}
	return hit, causeNested
}

// streamKey names an HTTP/2 stream of a connection.
type streamKey struct {
	conn   connRef
	stream uint32
}

// maxStreamCauses bounds the stream causes waiting for their exchange.
const maxStreamCauses = 16384

// streamCauses holds, for client streams of Go programs, the cause the
// kernel saw when the call's message was sent (grpc-go: one writer
// goroutine per connection writes every call's frames, so the write's own
// cause says nothing). Bounded: the oldest is forgotten first, counted.
type streamCauses struct {
	m       map[streamKey]conn.Cause
	order   []streamKey // ring, oldest at head
	head, n int
}

func newStreamCauses(max int) streamCauses {
	return streamCauses{m: make(map[streamKey]conn.Cause), order: make([]streamKey, max)}
}

// put records k's cause (a stream seen again, another message, keeps its
// place) and reports whether an older one waiting was forgotten for it.
func (s *streamCauses) put(k streamKey, c conn.Cause) (evicted bool) {
	if _, ok := s.m[k]; ok {
		s.m[k] = c
		return false
	}
	if s.n == len(s.order) {
		old := s.order[s.head]
		if _, ok := s.m[old]; ok {
			delete(s.m, old)
			evicted = true
		}
		s.head = (s.head + 1) % len(s.order)
		s.n--
	}
	s.order[(s.head+s.n)%len(s.order)] = k
	s.n++
	s.m[k] = c
	return evicted
}

// take returns and forgets k's cause.
func (s *streamCauses) take(k streamKey) (conn.Cause, bool) {
	c, ok := s.m[k]
	if ok {
		delete(s.m, k)
	}
	return c, ok
}

func (s *streamCauses) clear() {
	clear(s.m)
	s.head, s.n = 0, 0
}

// ObserveStreamCause records the cause of a Go program's HTTP/2 client
// stream (grpc-go): the exchange of that stream takes it instead of the
// cause its frames' write carried. Call it from the goroutine that calls
// Add.
func (c *Correlator) ObserveStreamCause(id conn.ID, stream uint32, cause conn.Cause) {
	if stream == 0 || !cause.Valid() {
		return
	}
	if c.join.streams.put(streamKey{conn: connRef{pid: id.PID, fd: id.FD, gen: id.Gen}, stream: stream}, cause) {
		c.joinStats.streamCausesDropped.Add(1)
	}
	c.joinStats.streamCauses.Add(1)
}
