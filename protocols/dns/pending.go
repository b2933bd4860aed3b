package dns

import (
	"math"
	"net/netip"

	"github.com/weftrace/weft/conn"
)

// query is a query waiting for its response.
type query struct {
	id       uint16
	qtype    uint16
	dir      conn.Direction // the way the query moved: Egress when this process asked
	tcp      bool
	name     string // presentation form
	peer     netip.AddrPort
	start    int64 // when its first send moved
	deadline int64
	seq, tid uint32
	cause    conn.Cause
}

// pending holds one connection's waiting queries: an unordered set,
// scanned linearly and removed from by swapping with the last, since a
// socket rarely has more than a few in flight and MaxPending bounds it.
type pending struct {
	qs   []query
	next int64 // earliest deadline; math.MaxInt64 when empty
}

// key is what pairs a response with its query.
type key struct {
	id    uint16
	dir   conn.Direction // the query's direction
	peer  netip.AddrPort
	qtype uint16
	name  []byte // presentation form; nil: a response whose question was cut off
}

// find returns the index of the waiting query k names, or -1. Without a
// question (a response cut short) the first with k's id and peer matches.
func (ps *pending) find(k *key) int {
	for i := range ps.qs {
		q := &ps.qs[i]
		if q.id != k.id || q.dir != k.dir || !samePeer(q.peer, k.peer) {
			continue
		}
		if k.name == nil || q.qtype == k.qtype && equalFold(q.name, k.name) {
			return i
		}
	}
	return -1
}

// samePeer compares peers as one socket sees them; an unknown peer (a
// capture that could not read the address) matches any.
func samePeer(a, b netip.AddrPort) bool {
	if !known(a) || !known(b) {
		return true
	}
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// add adds q; the caller keeps len(qs) below limit, which also bounds the
// slice's capacity.
func (ps *pending) add(q query, limit int) {
	if len(ps.qs) == 0 {
		ps.next = math.MaxInt64
	}
	if len(ps.qs) == cap(ps.qs) {
		nq := make([]query, len(ps.qs), min(max(2, 2*cap(ps.qs)), limit))
		copy(nq, ps.qs)
		ps.qs = nq
	}
	ps.qs = append(ps.qs, q)
	ps.next = min(ps.next, q.deadline)
}

// remove takes out the query at i and returns it.
func (ps *pending) remove(i int) query {
	q := ps.qs[i]
	last := len(ps.qs) - 1
	ps.qs[i] = ps.qs[last]
	ps.qs[last] = query{} // let the name go
	ps.qs = ps.qs[:last]
	if q.deadline == ps.next {
		ps.next = math.MaxInt64
		for j := range ps.qs {
			ps.next = min(ps.next, ps.qs[j].deadline)
		}
	}
	return q
}

// earliest returns the index of the query with the earliest deadline (the
// oldest, as every query waits as long), or -1 when none waits.
func (ps *pending) earliest() int {
	at := -1
	for i := range ps.qs {
		if at < 0 || ps.qs[i].deadline < ps.qs[at].deadline {
			at = i
		}
	}
	return at
}

// due reports whether a query's deadline is at or before now.
func (ps *pending) due(now int64) bool { return len(ps.qs) > 0 && ps.next <= now }
