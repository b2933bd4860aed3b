package dns

import (
	"net/netip"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// Parser follows the DNS exchanges of one socket, UDP or TCP. It implements
// conn.Handler and, like every handler, is called from one goroutine.
type Parser struct {
	info    *conn.Info
	sink    protocols.Sink
	opts    Options
	stats   *Stats
	timeout int64 // ns
	quick   int64 // ns: Options.QuickClose
	lastEnd int64 // the latest segment's End: a close at or before it was not seen but inferred
	closed  bool

	pend   pending
	frames [2]framer // TCP only, by direction

	m        message // the message being handled
	name     []byte  // its question name in presentation form
	lastName string  // the last name kept, reused while queries repeat it

	ex  protocols.Exchange
	dns protocols.DNSInfo
}

var _ protocols.Parser = (*Parser)(nil)

// New returns the parser for one connection. Exchanges go to sink.
func New(info *conn.Info, sink protocols.Sink, opts Options) *Parser {
	p := &Parser{info: info, sink: sink, opts: opts.withDefaults()}
	p.stats = p.opts.Stats
	p.timeout = int64(p.opts.Timeout)
	p.quick = int64(p.opts.QuickClose)
	if info.Role == conn.RoleUnknown {
		// A TCP connection that predates weft may be mid-message: each
		// direction waits for a segment that starts one.
		p.frames[0].st, p.frames[1].st = fLost, fLost
	}
	return p
}

// Segment consumes the next datagram, or run of a TCP stream.
func (p *Parser) Segment(s *conn.Segment) {
	if p.closed {
		return
	}
	p.lastEnd = max(p.lastEnd, s.End)
	p.expire(s.End)
	switch {
	case s.Datagram || p.info.UDP:
		// A Skip is the uncaptured tail of the datagram just decoded as
		// far as it went.
		if s.Data != nil {
			p.datagram(s)
		}
	default:
		p.stream(s)
	}
}

// Expire ends, as timed out, the queries whose deadline is at or before
// now (monotonic ns). Segments and Close expire queries too; Expire is for
// a periodic tick on sockets that went quiet. Call it from the goroutine
// that calls Segment.
func (p *Parser) Expire(now int64) {
	if !p.closed {
		p.expire(now)
	}
}

func (p *Parser) expire(now int64) {
	for p.pend.due(now) {
		q := p.pend.remove(p.pend.earliest())
		p.emit(&q, q.deadline, 0, nil, false)
	}
}

// Close ends the connection: queries still waiting are emitted unanswered,
// ending at their deadline or at the close, whichever came first.
//
// A query this socket sent whose close came sooner than
// Options.QuickClose after it is not a timeout: the client gave up at
// once (DNSInfo.NoResponse). That is what a client does when its read
// fails, typically with ECONNREFUSED after an ICMP port unreachable
// (nothing listens there), which the kernel events do not carry: a failed
// read moves no bytes. A close at or before the last segment's end was
// not seen but inferred (a lost close event, an eviction), so it says
// nothing about the client.
func (p *Parser) Close(ts int64) {
	if p.closed {
		return
	}
	p.expire(ts)
	seen := ts > p.lastEnd
	for len(p.pend.qs) > 0 {
		q := p.pend.remove(p.pend.earliest())
		end := max(q.start, min(ts, q.deadline))
		p.emit(&q, end, 0, nil, seen && q.dir == conn.Egress && end-q.start < p.quick)
	}
	p.closed = true
	p.pend = pending{}
	p.frames = [2]framer{}
	p.name, p.lastName = nil, ""
}

// datagram handles one UDP datagram: one whole message, or its captured
// head.
func (p *Parser) datagram(s *conn.Segment) {
	if !decode(s.Data, &p.m) {
		p.stats.Malformed.Add(1)
		return
	}
	peer := s.Peer
	if !known(peer) {
		peer = p.info.Tuple.Remote
	}
	p.handle(s.Dir, peer, false, at{start: moved(s), end: s.End, seq: s.Seq, tid: s.TID, cause: s.Cause})
}

// known reports whether ap names a peer: an unconnected socket's remote
// end reads as the unspecified address and port 0.
func known(ap netip.AddrPort) bool {
	return ap.IsValid() && (ap.Port() != 0 || !ap.Addr().IsUnspecified())
}

// at is where a message moved: start is when its first byte moved, end
// when its last did.
type at struct {
	start, end int64
	seq, tid   uint32
	cause      conn.Cause
}

// moved is when the bytes of s moved: a write's when it began, a read's by
// the time it returned (not when the program began waiting).
func moved(s *conn.Segment) int64 {
	if s.Dir == conn.Egress {
		return s.Start
	}
	return s.End
}

// handle pairs the decoded message p.m, which moved in direction d to or
// from peer: a query waits, a response ends the query it answers.
func (p *Parser) handle(d conn.Direction, peer netip.AddrPort, tcp bool, t at) {
	m := &p.m
	k := key{id: m.id, dir: d, peer: peer, qtype: m.qtype}
	if m.hasQuestion {
		p.name = appendName(p.name[:0], &m.name)
		k.name = p.name
	}
	if m.response {
		k.dir = d.Opposite()
		i := p.pend.find(&k)
		if i < 0 {
			p.stats.Orphans.Add(1)
			return
		}
		if m.partial {
			p.stats.Partial.Add(1)
		}
		q := p.pend.remove(i)
		p.emit(&q, t.end, t.tid, m, false)
		return
	}
	switch {
	case !m.hasQuestion:
		p.stats.Malformed.Add(1)
		return
	case peer.Addr().IsMulticast():
		// mDNS and LLMNR: any host may answer, from its own address.
		p.stats.Multicast.Add(1)
		return
	case p.pend.find(&k) >= 0:
		p.stats.Retransmits.Add(1)
		return
	}
	if len(p.pend.qs) >= p.opts.MaxPending {
		p.pend.remove(p.pend.earliest())
		p.stats.Overflows.Add(1)
	}
	p.pend.add(query{
		id: m.id, qtype: m.qtype, dir: d, tcp: tcp, name: p.intern(p.name), peer: peer,
		start: t.start, deadline: t.start + p.timeout, seq: t.seq, tid: t.tid, cause: t.cause,
	}, p.opts.MaxPending)
}

// intern returns b as a string, reusing the last one when they are equal:
// a process asks for the same few names over and over.
func (p *Parser) intern(b []byte) string {
	if string(b) != p.lastName {
		p.lastName = string(b)
	}
	return p.lastName
}

// emit sends q's exchange, answered by m (whose first byte thread rtid
// moved), or unanswered when m is nil: timed out, or given up at once by
// the client when abandoned is set.
func (p *Parser) emit(q *query, end int64, rtid uint32, m *message, abandoned bool) {
	p.dns = protocols.DNSInfo{
		ID: q.id, Name: q.name, Type: q.qtype, RCode: -1,
		Transport: "udp", Peer: q.peer,
	}
	if q.tcp {
		p.dns.Transport = "tcp"
	}
	if m != nil {
		p.dns.RCode, p.dns.Answers = m.rcode, int(m.ancount)
		p.dns.Addrs, p.dns.NAddrs, p.dns.Partial = m.addrs, m.naddrs, m.partial
	} else if abandoned {
		p.dns.NoResponse = true
		p.stats.NoResponse.Add(1)
	} else {
		p.dns.TimedOut = true
		p.stats.TimedOut.Add(1)
	}
	role := conn.RoleServer
	if q.dir == conn.Egress {
		role = conn.RoleClient
	}
	p.ex = protocols.Exchange{
		Conn:         p.info,
		Role:         role,
		Protocol:     protocols.DNS,
		Start:        q.start,
		End:          max(end, q.start),
		RequestSeq:   q.seq,
		RequestTID:   q.tid,
		ResponseTID:  rtid,
		RequestCause: q.cause,
		DNS:          &p.dns,
	}
	p.stats.Exchanges.Add(1)
	p.sink(&p.ex)
}
