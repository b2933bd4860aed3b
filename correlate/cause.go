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
