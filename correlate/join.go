package correlate

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// The join stage sits between conversion and the output function. Spans
// wait in it, in arrival order, for the other end of their connection
// (join.go: client and server of one request, matched by tuple and request
// sequence number) and for the incoming request they were made for
// (nest.go), then leave as whole trees whose ids are set top-down.
//
// Exchanges complete when their response ends, so an inner call completes
// before the request that made it: a span can only be given its parent
// after it arrived, and its trace id only once its tree's root is known.
// Every span therefore waits Wait after it arrived ("settles"), and a tree
// is emitted when all its spans have settled. A parent found after its
// child's tree was emitted is too late to change that tree; a child found
// after its parent's tree was emitted still joins it, by id.
//
// Concurrency: Add, Flush, FlushAll and ObserveAccept must be called from
// one goroutine (the agent's event goroutine). The stage holds no lock;
// only its counters are read from other goroutines.

// Defaults of JoinConfig.
const (
	DefaultJoinWait     = 1500 * time.Millisecond
	DefaultJoinMaxSpans = 65536
)

// maxClockJump is the furthest an exchange's end may move the stage's
// clock ahead at once; the timer (Flush) may move it any distance.
const maxClockJump = int64(time.Minute)

// JoinConfig bounds the join stage.
type JoinConfig struct {
	// Wait is how long a span waits after its exchange arrived for the
	// other end of its connection and for its parent; zero means
	// DefaultJoinWait. Spans are emitted at most about Wait late (plus
	// whatever the rest of their tree waits for).
	Wait time.Duration
	// MaxSpans bounds the spans held, waiting or kept as possible parents;
	// zero means DefaultJoinMaxSpans. When full, the oldest is settled at
	// once (emitted without waiting out its time) and counted.
	MaxSpans int
}

// Validate rejects negative bounds.
func (c JoinConfig) Validate() error {
	var errs []error
	if c.Wait < 0 {
		errs = append(errs, fmt.Errorf("join wait %v is negative", c.Wait))
	}
	if c.MaxSpans < 0 {
		errs = append(errs, fmt.Errorf("join max spans %d is negative", c.MaxSpans))
	}
	return errors.Join(errs...)
}

func (c JoinConfig) withDefaults() JoinConfig {
	if c.Wait == 0 {
		c.Wait = DefaultJoinWait
	}
	if c.MaxSpans == 0 {
		c.MaxSpans = DefaultJoinMaxSpans
	}
	return c
}

// spanCtx is a parent known by id only: from a traceparent header, or a
// local span already emitted.
type spanCtx struct {
	trace trace.TraceID
	span  trace.SpanID
	state string
}

// joinKey names one request on one TCP connection the same way at both
// ends: the client's and the server's addresses and the sequence number of
// the request's first byte.
type joinKey struct {
	client, server netip.AddrPort
	seq            uint32
}

// node is a span in the join stage.
type node struct {
	span       Span
	pid        uint32
	reqTID     uint32 // thread that moved the request's first byte
	start, end int64  // monotonic ns
	deadline   int64  // settles at
	expires    int64  // leaves the indexes at
	proto      protocols.Protocol
	remote     netip.AddrPort // the peer, unmapped

	key   joinKey
	keyed bool
	proc  *procState // nil without a connection

	// conn is the connection the exchange moved on (cause.go), cause the
	// read the kernel attributes a client request to.
	conn        connRef
	connIndexed bool
	cause       conn.Cause
	stream      uint32 // HTTP/2 stream id, 0: none
	task        uint64 // server: the task that answered it (task.go), 0: none
	// nestedUnder is the server span a client span was nested under, by
	// any rule, kept until it expires for calls its response led to.
	nestedUnder *node

	partner  *node // the other end of the same request
	parent   *node // a local parent in the same pending tree
	children []*node
	ext      spanCtx // a parent known by id only, when hasExt
	hasExt   bool
	// hasTP says ext came from the span's own traceparent header.
	hasTP bool

	unsettled int  // at a tree's root: its spans not yet settled
	peerDone  bool // service.peer.name decided
	settled   bool
	emitted   bool
	expired   bool
	ev        nestEvidence // clients: the server spans they overlapped
}

func (n *node) isClient() bool { return n.span.Kind == trace.SpanKindClient }
func (n *node) isServer() bool { return n.span.Kind == trace.SpanKindServer }

func (n *node) root() *node {
	for n.parent != nil {
		n = n.parent
	}
	return n
}

// ctx is the node's own context, valid once emitted.
func (n *node) ctx() spanCtx {
	return spanCtx{trace: n.span.TraceID, span: n.span.SpanID, state: n.span.TraceState}
}

func (n *node) setExt(c spanCtx) { n.ext, n.hasExt = c, true }

// joinStats are the join stage's counters, read by metrics.
type joinStats struct {
	pairs               atomic.Uint64                   // client and server ends matched
	latePairs           atomic.Uint64                   // matched after one end's tree was emitted
	byThread            atomic.Uint64                   // client spans nested by the thread rule
	streamCauses        atomic.Uint64                   // HTTP/2 client stream causes observed
	streamCausesDropped atomic.Uint64                   // ... forgotten before their exchange came
	byCause             [numCauseOutcomes]atomic.Uint64 // client spans the cause rule judged, by outcome
	bySingle            atomic.Uint64                   // ... by the single-request-in-flight rule
	unattributed        atomic.Uint64                   // made while serving, parent undecidable
	evicted             atomic.Uint64                   // settled early: the buffer was full
	held                atomic.Int64                    // spans in the buffer now
}

// joiner is the join stage.
type joiner struct {
	wait     int64
	maxSpans int
	seed     uint64
	out      func(Span)
	graph    *serviceGraph
	peers    peerTable
	stats    *joinStats

	now int64 // latest monotonic time seen
	// q holds spans in arrival order: q[head:settled] have settled and
	// wait to expire, q[settled:] wait to settle. Deadlines grow with
	// arrival, so both ends are FIFOs.
	q       []*node
	head    int
	settled int

	byKey     map[joinKey]*node
	byConn    map[connRef][]*node
	byTask    map[taskRef][]*node
	streams   streamCauses
	procs     map[uint32]*procState
	lastSweep int64
}

func newJoiner(cfg JoinConfig, seed uint64, out func(Span), procs ProcessLookup, stats *joinStats, graph *serviceGraph) *joiner {
	cfg = cfg.withDefaults()
	return &joiner{
		wait:     int64(cfg.Wait),
		maxSpans: cfg.MaxSpans,
		seed:     seed,
		out:      out,
		graph:    graph,
		peers:    newPeerTable(procs),
		stats:    stats,
		byKey:    make(map[joinKey]*node),
		byConn:   make(map[connRef][]*node),
		byTask:   make(map[taskRef][]*node),
		streams:  newStreamCauses(maxStreamCauses),
		procs:    make(map[uint32]*procState),
	}
}

// add takes the span converted from ex. s has its times, process and
// kind; a valid TraceID is a traceparent's (the span's remote parent).
func (j *joiner) add(ex *protocols.Exchange, s *Span) {
	// Exchange ends drive the clock between timer ticks (under sustained
	// load the event loop may not tick), but one absurd end must not
	// settle everything and then stall the timer.
	if j.now == 0 || ex.End-j.now < maxClockJump {
		j.now = max(j.now, ex.End)
	}
	if len(j.q)-j.head >= j.maxSpans {
		j.evictOldest()
	}
	n := &node{
		span:      *s,
		start:     ex.Start,
		end:       max(ex.End, ex.Start),
		deadline:  j.now + j.wait,
		proto:     ex.Protocol,
		unsettled: 1,
	}
	n.expires = n.deadline + j.wait
	n.span.SpanID = exchangeSpanID(j.seed, ex)
	if s.TraceID.IsValid() {
		n.setExt(spanCtx{trace: s.TraceID, span: s.ParentSpanID, state: s.TraceState})
		n.hasTP = true
	}
	if c := ex.Conn; c != nil && (n.isClient() || n.isServer()) {
		n.pid, n.reqTID = c.ID.PID, ex.RequestTID
		j.indexConn(n, c.ID)
		if ex.HTTP != nil {
			n.stream = ex.HTTP.StreamID
		}
		if n.isClient() {
			n.cause = ex.RequestCause
			if sc, ok := j.streams.take(streamKey{conn: n.conn, stream: n.stream}); ok && n.stream != 0 {
				n.cause = sc // the goroutine that sent the call, not the writer's
			}
		}
		n.remote = unmap(c.Tuple.Remote)
		if n.isServer() {
			j.indexTask(n, ex.ResponseCause)
			j.peers.learn(unmap(c.Tuple.Local), n.pid, serviceName(&n.span), j.now)
		}
		if !c.UDP && c.Tuple.Local.IsValid() && c.Tuple.Remote.IsValid() {
			n.keyed = true
			n.key = joinKey{client: unmap(c.Tuple.Local), server: n.remote, seq: ex.RequestSeq}
			if n.isServer() {
				n.key.client, n.key.server = n.key.server, n.key.client
			}
			j.match(n)
		}
		if n.proc = j.proc(n.pid); n.proc != nil {
			n.proc.observeThreads(ex.RequestTID, ex.ResponseTID)
			j.nestOnArrival(n)
		}
	}
	j.q = append(j.q, n)
	j.advance()
}

// match pairs n with the other end of its request when that end is
// already here, else makes n findable by it.
func (j *joiner) match(n *node) {
	other := j.byKey[n.key]
	if other == nil || other.span.Kind == n.span.Kind {
		// A same-kind entry is a duplicate or a reused tuple: the newer
		// one is the likelier partner.
		j.byKey[n.key] = n
		return
	}
	delete(j.byKey, n.key)
	client, server := n, other
	if n.isServer() {
		client, server = other, n
	}
	client.partner, server.partner = server, client
	j.stats.pairs.Add(1)
	switch {
	case server.hasExt:
		// An explicit traceparent wins: the server keeps the parent its
		// caller named (see settle for the client side).
	case server.emitted:
		j.stats.latePairs.Add(1) // too late to hang it under its client
	case client.emitted:
		server.setExt(client.ctx())
		j.stats.latePairs.Add(1)
	default:
		j.link(server, client)
	}
}

// link makes child (a pending tree's root) a child of parent (pending).
// It refuses a link that would close a cycle.
func (j *joiner) link(child, parent *node) bool {
	r := parent.root()
	if r == child || child.parent != nil || child.hasExt {
		return false
	}
	child.parent = parent
	parent.children = append(parent.children, child)
	r.unsettled += child.unsettled
	child.unsettled = 0
	return true
}

// advance settles and expires what is due at j.now.
func (j *joiner) advance() {
	for j.settled < len(j.q) && j.q[j.settled].deadline <= j.now {
		j.settleNext()
	}
	for j.head < j.settled && j.q[j.head].expires <= j.now {
		j.expireOldest()
	}
	if j.now-j.lastSweep >= sweepEvery {
		j.lastSweep = j.now
		j.sweepProcs()
	}
	j.compact()
	j.stats.held.Store(int64(len(j.q) - j.head))
}

// flush advances the stage to the monotonic time now.
func (j *joiner) flush(now int64) {
	j.now = max(j.now, now)
	j.advance()
}

// flushAll settles, emits and forgets everything: for shutdown.
func (j *joiner) flushAll() {
	for j.settled < len(j.q) {
		j.settleNext()
	}
	for j.head < len(j.q) {
		j.expireOldest()
	}
	j.q, j.head, j.settled = nil, 0, 0
	clear(j.byKey)
	clear(j.byConn)
	clear(j.byTask)
	j.streams.clear()
	clear(j.procs)
	clear(j.peers.m)
	j.stats.held.Store(0)
}

func (j *joiner) evictOldest() {
	if j.head == j.settled {
		j.settleNext()
		j.stats.evicted.Add(1)
	}
	j.expireOldest()
}

// settleNext settles the oldest waiting span: its parent is decided, and
// its tree is emitted when it was the tree's last unsettled span.
func (j *joiner) settleNext() {
	n := j.q[j.settled]
	j.settled++
	if n.isClient() && n.parent == nil && !n.hasExt {
		j.nest(n)
		if n.parent == nil && !n.hasExt && n.partner != nil && n.partner.hasTP {
			// The request carried a traceparent its server span joined:
			// a client span with no parent of its own sits beside that
			// server span, under the caller's span the header names.
			n.setExt(n.partner.ext)
		}
	}
	n.ev = nestEvidence{} // its pointers would keep expired spans alive
	n.settled = true
	if n.proc != nil {
		n.proc.pruneClients()
	}
	r := n.root()
	r.unsettled--
	if r.unsettled == 0 {
		j.emit(r)
	}
}

// expireOldest drops the oldest settled span from the indexes: it can no
// longer be matched or become a parent. Its service graph edge is counted
// now, when no partner can come any more.
func (j *joiner) expireOldest() {
	n := j.q[j.head]
	j.q[j.head] = nil
	j.head++
	n.expired = true
	n.nestedUnder = nil
	j.unindexConn(n)
	j.unindexTask(n)
	if n.keyed && j.byKey[n.key] == n {
		delete(j.byKey, n.key)
	}
	if n.proc != nil {
		n.proc.pruneServers()
	}
	if n.isClient() {
		j.addPeerService(n)
	}
	j.graph.record(n)
}

// compact reclaims the queue's consumed front.
func (j *joiner) compact() {
	if j.head < 1024 || j.head < len(j.q)/2 {
		return
	}
	k := copy(j.q, j.q[j.head:])
	clear(j.q[k:])
	j.q = j.q[:k]
	j.settled -= j.head
	j.head = 0
}

// emit sets the ids of the tree rooted at r top-down and hands its spans
// out: the root's trace id is its traceparent's (or a parent's emitted
// earlier), else derived from the root's span id.
func (j *joiner) emit(r *node) {
	c := spanCtx{}
	if r.hasExt {
		c = r.ext
	} else {
		c.trace = rootTraceID(j.seed, r.span.SpanID)
	}
	stack := []*node{r}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n.span.TraceID, n.span.TraceState = c.trace, c.state
		if n.parent != nil {
			n.span.ParentSpanID = n.parent.span.SpanID
		} else {
			n.span.ParentSpanID = c.span
		}
		if n.isClient() {
			j.addPeerService(n)
		}
		n.emitted = true
		j.out(n.span)
		stack = append(stack, n.children...)
		n.children = nil
	}
}

// unmap gives an IPv4-mapped IPv6 address (a dual-stack socket's view of
// an IPv4 peer) as the IPv4 address the other end sees.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func serviceName(s *Span) string {
	if s.Process == nil {
		return ""
	}
	return s.Process.ServiceName
}

// ObserveAccept records that the process of an accepted connection
// listens at its local address, so client spans towards that address get
// its service as their peer even when its side of an exchange is not seen.
// Call it from the goroutine that calls Add.
func (c *Correlator) ObserveAccept(info *conn.Info) {
	if info.Role == conn.RoleServer && !info.UDP {
		c.join.peers.accepted(unmap(info.Tuple.Local), info.ID.PID, info.Comm, c.join.now)
	}
}

// Flush emits the spans whose wait ended by now (monotonic ns, the clock
// of the exchanges). Call it regularly from the goroutine that calls Add.
func (c *Correlator) Flush(now int64) { c.join.flush(now) }

// FlushAll emits every span held, without waiting: at shutdown, after the
// last exchange.
func (c *Correlator) FlushAll() { c.join.flushAll() }
