package http1

import (
	"bytes"
	"sync/atomic"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// maxChunkLine bounds a chunk-size line with its extensions (and
// MaxHeaderBytes bounds it too).
const maxChunkLine = 1024

// state is where a direction is in its current message.
type state uint8

const (
	stSearch     state = iota // lost: wait for a segment that starts a message
	stHead                    // reading a start line and headers
	stBody                    // stepping over a body of known length
	stChunkSize               // reading a chunk-size line
	stChunkData               // stepping over chunk data
	stChunkEnd                // the CRLF after chunk data
	stTrailers                // reading the trailer section
	stUntilClose              // a response body that ends with the connection
	stTunnel                  // after an upgrade or CONNECT: not HTTP/1 any more
)

// side is one direction's parsing state.
type side struct {
	st   state
	buf  []byte // a head, trailer section or chunk line split across segments
	scan int    // where to resume looking for the end of what buf holds
	left uint64 // body, chunk or CRLF bytes still to come
	body int64  // body bytes of the current message so far
	// lost is set when the direction lost its place mid-stream, so the
	// resynchronised response side knows older requests went unanswered.
	lost bool
	next uint64 // stream offset expected next

	// Where the current message's first byte moved.
	start int64
	seq   uint32
	tid   uint32
	cause conn.Cause
	// lastEnd is the End of the last segment carrying the message's bytes.
	lastEnd int64
	reqID   uint64 // request side: the request whose body is flowing
}

func (sd *side) consumed() { sd.buf, sd.scan = sd.buf[:0], 0 }

// request is what a parsed request head leaves for its exchange.
type request struct {
	id                                 uint64
	method, path, version, host        string
	userAgent, traceParent, traceState string
	bodySize                           int64
	start                              int64
	seq, tid                           uint32
	cause                              conn.Cause
	head, connect                      bool
}

// Parser follows the HTTP/1 exchanges of one connection. It implements
// conn.Handler and, like every handler, is called from one goroutine.
type Parser struct {
	info  *conn.Info
	sink  protocols.Sink
	opts  Options
	stats *Stats

	reqDir    conn.Direction
	roleKnown bool
	closed    bool

	sides  [2]side
	q      queue
	nextID uint64

	// cur is the request whose response is being read, once its status
	// line is in; status is that response's status.
	cur    request
	hasCur bool
	status int

	// Last values seen, so repeats on a keep-alive connection cost no
	// allocation.
	lastPath, lastHost, lastUA, lastTS string

	hd   msgHead
	ex   protocols.Exchange
	http protocols.HTTP
}

var _ protocols.Parser = (*Parser)(nil)

// New returns the parser for one connection. Exchanges go to sink.
func New(info *conn.Info, sink protocols.Sink, opts Options) *Parser {
	p := &Parser{info: info, sink: sink, opts: opts.withDefaults()}
	p.stats = p.opts.Stats
	// With the role known both streams start at a message; otherwise the
	// connection predates weft and both wait in stSearch for one.
	switch info.Role {
	case conn.RoleClient:
		p.reqDir, p.roleKnown = conn.Egress, true
		p.sides[0].st, p.sides[1].st = stHead, stHead
	case conn.RoleServer:
		p.reqDir, p.roleKnown = conn.Ingress, true
		p.sides[0].st, p.sides[1].st = stHead, stHead
	}
	return p
}

// Segment consumes the next run of one direction's stream.
func (p *Parser) Segment(s *conn.Segment) {
	n := s.Len()
	if p.closed || n == 0 {
		return
	}
	d := s.Dir & 1
	sd := &p.sides[d]
	switch {
	case s.Offset > sd.next:
		// Bytes the conn layer did not report (or that detection
		// swallowed) are a skip like any other.
		p.skip(d, s, s.Offset-sd.next)
	case s.Offset < sd.next:
		t, ok := s.From(sd.next)
		if !ok {
			return
		}
		s = &t
	}
	sd.next = s.Offset + s.Len()
	if !p.roleKnown {
		// Infer which way requests flow from the first message start.
		if s.Data == nil {
			return
		}
		switch req, resp := LooksLikeHTTP1(s.Data); {
		case req:
			p.reqDir, p.roleKnown = d, true
		case resp:
			p.reqDir, p.roleKnown = d.Opposite(), true
		default:
			return
		}
	}
	if s.Data == nil {
		p.skip(d, s, s.Skip)
		return
	}
	p.data(d, s)
}

// data consumes captured bytes.
func (p *Parser) data(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	b := s.Data
	if sd.st == stSearch {
		req, resp := LooksLikeHTTP1(b)
		if d == p.reqDir && !req || d != p.reqDir && !resp {
			return
		}
		p.resync(d, s)
	}
	for i := 0; i < len(b); {
		switch sd.st {
		case stHead:
			i = p.head(d, s, i)
		case stBody, stChunkData:
			n := min(uint64(len(b)-i), sd.left)
			i += int(n)
			p.advance(d, s, n)
		case stUntilClose:
			p.advance(d, s, uint64(len(b)-i))
			return
		case stChunkEnd:
			if b[i] != "\r\n"[2-sd.left] {
				p.fail(d, &p.stats.Malformed)
				return
			}
			i++
			p.advance(d, s, 1)
		case stChunkSize:
			i = p.chunkSize(d, s, i)
		case stTrailers:
			i = p.trailers(d, s, i)
		default: // stSearch after a failure, stTunnel
			return
		}
	}
}

// skip steps over n uncaptured bytes: possible inside a body whose length
// is known, fatal to the current message anywhere else.
func (p *Parser) skip(d conn.Direction, s *conn.Segment, n uint64) {
	sd := &p.sides[d]
	for n > 0 {
		switch sd.st {
		case stBody, stChunkData, stChunkEnd:
			k := min(n, sd.left)
			n -= k
			p.advance(d, s, k)
		case stUntilClose:
			p.advance(d, s, n)
			return
		case stHead, stChunkSize, stTrailers:
			p.fail(d, &p.stats.Desyncs)
			return
		default:
			return
		}
	}
}

// advance accounts n body bytes (captured or not) of the current message.
func (p *Parser) advance(d conn.Direction, s *conn.Segment, n uint64) {
	sd := &p.sides[d]
	sd.lastEnd = s.End
	switch sd.st {
	case stUntilClose:
		sd.body += int64(n)
	case stBody:
		sd.left -= n
		sd.body += int64(n)
		if sd.left == 0 {
			p.finish(d, s)
		}
	case stChunkData:
		sd.left -= n
		sd.body += int64(n)
		if sd.left == 0 {
			sd.st, sd.left = stChunkEnd, 2
		}
	case stChunkEnd:
		sd.left -= n
		if sd.left == 0 {
			sd.st = stChunkSize
		}
	}
}

// collect gathers a section that ends where end says, from b[i:] and
// earlier segments, buffering at most limit bytes. It returns the whole
// section once complete (the caller then calls consumed), and where the
// bytes after it start; over reports a section past the limit.
func (p *Parser) collect(sd *side, b []byte, i, limit int, end func([]byte, int) (int, int)) (sec []byte, next int, over bool) {
	if len(sd.buf) == 0 {
		if e, _ := end(b[i:], 0); e > 0 && e <= limit {
			return b[i : i+e], i + e, false
		}
	}
	old := len(sd.buf)
	take := min(len(b)-i, limit-old)
	if need := old + take; need > cap(sd.buf) {
		nb := make([]byte, old, min(max(need, 2*cap(sd.buf), 256), limit))
		copy(nb, sd.buf)
		sd.buf = nb
	}
	sd.buf = append(sd.buf, b[i:i+take]...)
	e, resume := end(sd.buf, sd.scan)
	if e < 0 {
		sd.scan = resume
		return nil, i + take, len(sd.buf) >= limit
	}
	return sd.buf[:e], i + e - old, false
}

// head reads a message head starting at b[i].
func (p *Parser) head(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	b := s.Data
	if len(sd.buf) == 0 {
		// Tolerate stray empty lines between messages (RFC 9112 2.2).
		for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
			i++
		}
		if i == len(b) {
			return i
		}
		sd.seq, sd.tid, sd.start, sd.cause = s.Seq+uint32(i), s.TID, s.End, s.Cause
		if d == conn.Egress {
			// A write's bytes leave when it starts; a read's arrive by
			// the time it returns, not when the program began waiting.
			sd.start = s.Start
		}
	}
	sec, next, over := p.collect(sd, b, i, p.opts.MaxHeaderBytes, headEnd)
	if over {
		p.fail(d, &p.stats.Malformed)
		return len(b)
	}
	if sec != nil {
		sd.lastEnd = s.End
		p.parseHead(d, s, sec)
		sd.consumed()
	}
	return next
}

func (p *Parser) parseHead(d conn.Direction, s *conn.Segment, raw []byte) {
	hd := &p.hd
	hd.reset()
	line, rest := cutLine(raw)
	isReq := d == p.reqDir
	ok := isReq && hd.parseRequestLine(line) || !isReq && hd.parseStatusLine(line)
	ok = ok && hd.parseFields(rest)
	// A request whose body ends neither by length nor by chunking cannot
	// be framed (RFC 9112 6.3): servers reject it, and so do we.
	ok = ok && !(isReq && hd.hasTE && !hd.chunked)
	if !ok {
		p.fail(d, &p.stats.Malformed)
		return
	}
	if isReq {
		p.request(d)
	} else {
		p.response(d, s)
	}
}

// request queues a parsed request head and sets up its body.
func (p *Parser) request(d conn.Direction) {
	sd, hd := &p.sides[d], &p.hd
	m, ok := method(hd.method)
	if !ok {
		m = string(hd.method)
	}
	r := request{
		id:      p.nextID,
		method:  m,
		version: "1.1",
		start:   sd.start,
		seq:     sd.seq,
		tid:     sd.tid,
		cause:   sd.cause,
		head:    m == "HEAD",
		connect: m == "CONNECT",
	}
	p.nextID++
	if hd.minor == '0' {
		r.version = "1.0"
	}
	path, authority := splitTarget(hd.target, r.connect)
	host := hd.host
	if len(authority) > 0 {
		host = authority
	}
	r.path = intern(&p.lastPath, path)
	r.host = intern(&p.lastHost, host)
	r.userAgent = intern(&p.lastUA, hd.ua)
	r.traceState = intern(&p.lastTS, hd.traceState)
	if len(hd.traceParent) > 0 {
		r.traceParent = string(hd.traceParent)
	}
	sd.reqID, sd.body = r.id, 0
	switch {
	case hd.chunked:
		r.bodySize = -1
		sd.st = stChunkSize
	case hd.contentLength > 0:
		r.bodySize = hd.contentLength
		sd.st, sd.left = stBody, uint64(hd.contentLength)
	default:
		sd.st = stHead
	}
	if p.q.push(r, p.opts.MaxPending) {
		p.stats.Overflows.Add(1)
	}
}

// response pairs a parsed status line with the oldest pending request and
// sets up the body its framing implies (RFC 9112 6.3).
func (p *Parser) response(d conn.Direction, s *conn.Segment) {
	sd, hd := &p.sides[d], &p.hd
	st := hd.status
	if st < 200 && st != 101 {
		sd.st = stHead // interim: the final response follows
		return
	}
	if p.q.n > 0 {
		p.cur, p.hasCur = p.q.pop(), true
	} else {
		p.stats.Orphans.Add(1)
	}
	p.status, sd.body = st, 0
	switch {
	case st == 101 || p.hasCur && p.cur.connect && st/100 == 2:
		p.finish(d, s)
		p.tunnel()
	case p.hasCur && p.cur.head, st == 204, st == 304:
		p.finish(d, s)
	case hd.hasTE && hd.chunked:
		sd.st = stChunkSize
	case hd.hasTE:
		sd.st = stUntilClose
	case hd.contentLength > 0:
		sd.st, sd.left = stBody, uint64(hd.contentLength)
	case hd.contentLength == 0:
		p.finish(d, s)
	default:
		sd.st = stUntilClose
	}
}

// chunkSize reads a chunk-size line starting at b[i].
func (p *Parser) chunkSize(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	sec, next, over := p.collect(sd, s.Data, i, min(maxChunkLine, p.opts.MaxHeaderBytes), lineEnd)
	if over {
		p.fail(d, &p.stats.Malformed)
		return len(s.Data)
	}
	if sec == nil {
		return next
	}
	n, ok := parseChunkSize(bytes.TrimSuffix(sec[:len(sec)-1], cr))
	sd.consumed()
	switch {
	case !ok:
		p.fail(d, &p.stats.Malformed)
		return len(s.Data)
	case n == 0:
		sd.st = stTrailers
	default:
		sd.st, sd.left = stChunkData, uint64(n)
	}
	return next
}

// trailers reads the trailer section after the last chunk; its fields are
// not kept.
func (p *Parser) trailers(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	sec, next, over := p.collect(sd, s.Data, i, p.opts.MaxHeaderBytes, headEnd)
	if over {
		p.fail(d, &p.stats.Malformed)
		return len(s.Data)
	}
	if sec != nil {
		sd.consumed()
		p.finish(d, s)
	}
	return next
}

func lineEnd(b []byte, from int) (end, resume int) {
	if nl := bytes.IndexByte(b[from:], '\n'); nl >= 0 {
		return from + nl + 1, 0
	}
	return -1, len(b)
}

// finish ends the current message of direction d; its last byte is in s.
func (p *Parser) finish(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	sd.st = stHead
	if d == p.reqDir {
		if r := p.pending(sd.reqID); r != nil {
			r.bodySize = sd.body
		}
		return
	}
	if p.hasCur {
		p.hasCur = false
		p.emit(&p.cur, p.status, sd.body, s.End)
	}
}

// pending finds a request not yet emitted by id.
func (p *Parser) pending(id uint64) *request {
	if p.hasCur && p.cur.id == id {
		return &p.cur
	}
	if p.q.n > 0 {
		if i := id - p.q.at(0).id; i < uint64(p.q.n) {
			return p.q.at(int(i))
		}
	}
	return nil
}

// fail drops direction d's current message, counts why, and makes the
// direction wait for a segment that starts a new message.
func (p *Parser) fail(d conn.Direction, why *atomic.Uint64) {
	why.Add(1)
	sd := &p.sides[d]
	if d != p.reqDir && p.hasCur {
		// The status line was read: the exchange happened, only its body
		// size is unknown.
		p.hasCur = false
		p.emit(&p.cur, p.status, -1, sd.lastEnd)
	}
	sd.st, sd.lost = stSearch, true
	sd.consumed()
}

// resync restarts direction d at the message that s starts.
func (p *Parser) resync(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	sd.st = stHead
	if d != p.reqDir && sd.lost {
		// Responses were lost with the bytes. Without pipelining, which is
		// what almost every client does, the response found now answers
		// the newest request; the older ones were answered unseen.
		for p.q.n > 1 {
			r := p.q.pop()
			p.emit(&r, 0, -1, s.Start)
		}
	}
	sd.lost = false
}

// tunnel stops parsing: after 101 or a successful CONNECT the bytes
// belong to another protocol.
func (p *Parser) tunnel() {
	for i := range p.sides {
		p.sides[i].st = stTunnel
		p.sides[i].buf = nil
	}
}

func (p *Parser) emit(r *request, status int, respBody, end int64) {
	p.http = protocols.HTTP{
		Method:           r.method,
		Path:             r.path,
		Version:          r.version,
		Status:           status,
		Host:             r.host,
		UserAgent:        r.userAgent,
		TraceParent:      r.traceParent,
		TraceState:       r.traceState,
		RequestBodySize:  r.bodySize,
		ResponseBodySize: respBody,
	}
	role := conn.RoleServer
	if p.reqDir == conn.Egress {
		role = conn.RoleClient
	}
	var respTID uint32
	var respCause conn.Cause
	if status != 0 {
		respTID = p.sides[p.reqDir.Opposite()].tid // set when the status line began
		if role == conn.RoleServer {
			respCause = p.sides[p.reqDir.Opposite()].cause
		}
	}
	p.ex = protocols.Exchange{
		Conn:          p.info,
		Role:          role,
		Protocol:      protocols.HTTP1,
		Start:         r.start,
		End:           end,
		RequestSeq:    r.seq,
		RequestTID:    r.tid,
		ResponseTID:   respTID,
		RequestCause:  r.cause,
		ResponseCause: respCause,
		HTTP:          &p.http,
	}
	p.stats.Exchanges.Add(1)
	if status == 0 {
		p.stats.Unanswered.Add(1)
	}
	p.sink(&p.ex)
}

// Close ends the connection: a body delimited by the close is complete,
// and requests still waiting are emitted unanswered.
func (p *Parser) Close(ts int64) {
	if p.closed {
		return
	}
	p.closed = true
	if p.hasCur {
		rs := &p.sides[p.reqDir.Opposite()]
		body := int64(-1)
		if rs.st == stUntilClose {
			body = rs.body
		}
		p.hasCur = false
		p.emit(&p.cur, p.status, body, rs.lastEnd)
	}
	for p.q.n > 0 {
		r := p.q.pop()
		p.emit(&r, 0, -1, ts)
	}
	p.q = queue{}
	for i := range p.sides {
		p.sides[i].buf = nil
	}
}

// intern returns b as a string, reusing *last when they are equal.
func intern(last *string, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}
