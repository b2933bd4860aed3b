package correlate

import (
	"sort"
	"sync/atomic"
	"time"
)

// Nesting: a client span a process made while it was serving a request is
// a child of that request's server span. Kernel events say which process
// and thread made a call and when, not which request it was made for, so
// two rules decide, and where neither does the span stays a root: a
// missing parent is better than a wrong one.
//
//   - Thread: the call was made by the thread that read the request, and
//     that thread read no other request overlapping the call. Right for
//     thread-per-request servers (and for an event loop with one request
//     in flight); wrong for runtimes that move work between threads, so it
//     is used only for processes whose exchanges were each seen on one
//     thread, request and response, at least minStableExchanges times and
//     never otherwise. Go, whose goroutines migrate between threads (and
//     whose HTTP client writes and reads on two goroutines), fails that
//     test within a few exchanges.
//   - Single request in flight: exactly one server span of the process
//     overlapped the call, and it contains it.
//
// Candidates are server spans of the same process whose [Start, End]
// contains the client's. Both sides of a candidate pair are compared when
// the second one arrives; the client decides when it settles, by which
// time every request that overlapped it and ended within the wait has
// arrived. A request that outlives the call by more than the wait is not
// seen in time (the client may then be nested by the other rule, or stay
// a root), and a call a process makes on its own (a timer, a background
// refresh) while serving exactly one request is attributed to it: both are
// limits of attribution by time.

// minStableExchanges is how many single-thread exchanges a process must
// show, with none that moved threads, before the thread rule applies.
const minStableExchanges = 8

// Process state is swept when idle this long: its lists are empty and its
// thread history is for a pid that may have been reused.
const (
	sweepEvery   = int64(10 * time.Second)
	procIdleTime = int64(2 * time.Minute)
	maxProcs     = 16384
)

// procState is what one process's recent exchanges say for nesting.
type procState struct {
	servers  []*node // server spans not yet expired, by end
	clients  []*node // client spans not yet settled, by end
	stable   uint32  // exchanges whose request and response moved on one thread
	migrated bool    // an exchange whose request and response moved on two
	lastSeen int64
}

// nestEvidence is what a client span learnt about the server spans of its
// process that overlapped it.
type nestEvidence struct {
	overlap  int   // server spans that overlapped the call
	first    *node // the first of them
	contain  int   // of those, spans that contained the call
	sameTID  int   // overlapping spans whose request the caller's thread read
	byThread *node // the first of those
}

// proc returns the state of pid, or nil when too many processes are
// tracked (the span then is never nested).
func (j *joiner) proc(pid uint32) *procState {
	p := j.procs[pid]
	if p == nil {
		if len(j.procs) >= maxProcs {
			j.sweepProcs()
			if len(j.procs) >= maxProcs {
				return nil
			}
		}
		p = &procState{}
		j.procs[pid] = p
	}
	p.lastSeen = j.now
	return p
}

func (j *joiner) sweepProcs() {
	for pid, p := range j.procs {
		p.pruneClients()
		p.pruneServers()
		if len(p.servers) == 0 && len(p.clients) == 0 && j.now-p.lastSeen > procIdleTime {
			delete(j.procs, pid)
		}
	}
}

func (p *procState) observeThreads(req, resp uint32) {
	switch {
	case req == 0 || resp == 0:
	case req != resp:
		p.migrated = true
	case p.stable < minStableExchanges:
		p.stable++
	}
}

func (p *procState) threadTrusted() bool { return !p.migrated && p.stable >= minStableExchanges }

// nestOnArrival compares n with the opposite-kind spans of its process
// already here that it may overlap, and files n for those still to come.
func (j *joiner) nestOnArrival(n *node) {
	p := n.proc
	if n.isServer() {
		for _, c := range p.clients[endsAfter(p.clients, n.start):] {
			if !c.settled {
				pair(c, n)
			}
		}
		p.servers = insertByEnd(p.servers, n)
		return
	}
	for _, s := range p.servers[endsAfter(p.servers, n.start):] {
		if !s.expired {
			pair(n, s)
		}
	}
	p.clients = insertByEnd(p.clients, n)
}

// pair records server span s as evidence for client span c.
func pair(c, s *node) {
	if s == c.partner || s.start > c.end || s.end < c.start {
		return // the call's own other end (a process calling itself), or no overlap
	}
	ev := &c.ev
	ev.overlap++
	if ev.first == nil {
		ev.first = s
	}
	if contains(s, c) {
		ev.contain++
	}
	if c.reqTID != 0 && s.reqTID == c.reqTID {
		ev.sameTID++
		if ev.byThread == nil {
			ev.byThread = s
		}
	}
}

func contains(s, c *node) bool { return s.start <= c.start && c.end <= s.end }

// nest decides the parent of client span c, which is settling.
func (j *joiner) nest(c *node) {
	ev := &c.ev
	var parent *node
	var rule *atomic.Uint64
	if c.cause.Valid() {
		p, why := j.causeParent(c)
		if p != nil {
			parent, rule = p, &j.stats.byCause[causeNested]
		} else {
			j.stats.byCause[why].Add(1)
		}
	}
	switch {
	case parent != nil:
		// the cause rule decided
	case c.proc != nil && c.proc.threadTrusted() && ev.sameTID == 1 && contains(ev.byThread, c):
		parent, rule = ev.byThread, &j.stats.byThread
	case ev.overlap == 1 && contains(ev.first, c):
		parent, rule = ev.first, &j.stats.bySingle
	}
	switch {
	case parent == nil:
		if ev.contain > 0 {
			j.stats.unattributed.Add(1)
		}
	case parent.emitted:
		c.setExt(parent.ctx())
		c.nestedUnder = parent
		rule.Add(1)
	case j.link(c, parent):
		c.nestedUnder = parent
		rule.Add(1)
	default:
		j.stats.unattributed.Add(1) // a cycle: the candidate hangs below c
	}
}

// endsAfter returns the index of the first span in list (sorted by end)
// that ends at or after t.
func endsAfter(list []*node, t int64) int {
	return sort.Search(len(list), func(i int) bool { return list[i].end >= t })
}

// insertByEnd inserts n into list keeping it sorted by end; spans arrive
// roughly in end order, so this is an append.
func insertByEnd(list []*node, n *node) []*node {
	list = append(list, n)
	i := len(list) - 1
	for i > 0 && list[i-1].end > n.end {
		list[i] = list[i-1]
		i--
	}
	list[i] = n
	return list
}

func (p *procState) pruneClients() {
	i := 0
	for i < len(p.clients) && p.clients[i].settled {
		p.clients[i] = nil
		i++
	}
	p.clients = p.clients[i:]
}

func (p *procState) pruneServers() {
	i := 0
	for i < len(p.servers) && p.servers[i].expired {
		p.servers[i] = nil
		i++
	}
	p.servers = p.servers[i:]
}
