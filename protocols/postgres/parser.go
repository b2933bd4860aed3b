package postgres

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// state is where a direction is in its stream of messages.
type state uint8

const (
	stStartup state = iota // client, at the start: untyped startup-phase messages
	stBegin                // server, at the start: an answer byte or a typed message
	stAnswer               // server: the one-byte answer to SSLRequest or GSSENCRequest
	stHeader               // a typed message's type byte and length
	stBody                 // a message body: collected up to keep, the rest stepped over
	stSearch               // lost: wait for captured bytes where messages start
	stOff                  // not parsed any more: encrypted, cancelled or terminated
)

// side is one direction's framing state.
type side struct {
	st   state
	hdr  [5]byte // header bytes so far: type and length, or the length alone
	nh   int
	typ  byte // 0 for an untyped startup-phase message
	left uint64
	blen int    // the body's length
	keep int    // body bytes wanted (a prefix; the rest is stepped over)
	buf  []byte // the wanted bytes of a body split across segments
	cut  bool   // buf holds less than the whole body
	next uint64 // stream offset expected next

	// Where the current message's first byte moved.
	start int64
	seq   uint32
	tid   uint32
	cause conn.Cause
}

// Parser follows the PostgreSQL operations of one connection. It
// implements conn.Handler and, like every handler, is called from one
// goroutine.
type Parser struct {
	info  *conn.Info
	sink  protocols.Sink
	opts  Options
	stats *Stats

	reqDir    conn.Direction
	roleKnown bool
	closed    bool

	sides   [2]side
	answers int // SSLRequest/GSSENCRequest messages awaiting their one-byte answer

	db, user, app string

	stmts statements
	q     queue
	run   run    // the extended-protocol messages leading to the next Execute
	res   result // what the server said so far about the oldest op
	// respLost is set when server bytes were lost: until the next
	// ReadyForQuery, an answer that does not fit the oldest op ends the
	// ops before the one it fits.
	respLost bool
	respEnd  int64 // End of the last server segment
	prevEnd  int64 // End of the server segment before it
	// described says whether the last Describe answered RowDescription:
	// the portal executed next returns rows.
	described bool
	lastQuery stmt   // the last simple query, reused when repeated
	lastVerb  string // the last command tag's verb, reused when repeated

	dec decoders
	ex  protocols.Exchange
	pg  protocols.PostgresInfo
}

// decoders are the pgproto3 messages decoded into, reused.
type decoders struct {
	startup pgproto3.StartupMessage
	query   pgproto3.Query
	parse   pgproto3.Parse
	close   pgproto3.Close
	cc      pgproto3.CommandComplete
	err     pgproto3.ErrorResponse
	notice  pgproto3.NoticeResponse
}

var _ protocols.Parser = (*Parser)(nil)

// New returns the parser for one connection. Exchanges go to sink.
func New(info *conn.Info, sink protocols.Sink, opts Options) *Parser {
	p := &Parser{info: info, sink: sink, opts: opts.withDefaults()}
	p.stats = p.opts.Stats
	switch info.Role {
	case conn.RoleClient:
		p.setRole(conn.Egress, true)
	case conn.RoleServer:
		p.setRole(conn.Ingress, true)
	default:
		// The connection predates weft: both directions wait for bytes
		// that start messages.
		p.sides[0].st, p.sides[1].st = stSearch, stSearch
	}
	return p
}

// setRole fixes which way requests flow; fromStart says both streams are
// seen from their first byte.
func (p *Parser) setRole(reqDir conn.Direction, fromStart bool) {
	p.reqDir, p.roleKnown = reqDir, true
	if fromStart {
		p.sides[reqDir].st = stStartup
		p.sides[reqDir.Opposite()].st = stBegin
	}
}

func (p *Parser) backend(d conn.Direction) bool { return d != p.reqDir }

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
		gap := *s
		gap.Data, gap.Skip = nil, s.Offset-sd.next
		p.skip(d, &gap, gap.Skip)
	case s.Offset < sd.next:
		t, ok := s.From(sd.next)
		if !ok {
			return
		}
		s = &t
	}
	sd.next = s.Offset + s.Len()
	if !p.roleKnown && !p.inferRole(d, s) {
		return
	}
	if p.backend(d) {
		p.prevEnd, p.respEnd = p.respEnd, s.End
	}
	if s.Data == nil {
		p.skip(d, s, s.Skip)
		return
	}
	p.data(d, s)
}

// inferRole decides, from the first captured bytes that tell, which way
// requests flow on a connection whose role is unknown.
func (p *Parser) inferRole(d conn.Direction, s *conn.Segment) bool {
	if s.Data == nil {
		return false
	}
	front, back := LooksLikePostgres(s.Data)
	switch {
	case front && !back:
		_, _, startup := startupCode(s.Data)
		p.setRole(d, startup && s.Offset == 0)
	case back && !front:
		p.setRole(d.Opposite(), false)
	default:
		return false
	}
	return true
}

// data consumes captured bytes.
func (p *Parser) data(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	b := s.Data
	i := 0
	for i < len(b) {
		switch sd.st {
		case stStartup, stHeader:
			i = p.header(d, s, i)
		case stBody:
			i = p.body(d, s, i)
		case stBegin:
			sd.st = stHeader
			if p.answers > 0 || len(b) == 1 && (b[0] == 'N' || b[0] == 'S' || b[0] == 'G') {
				// The answer to an SSLRequest; a lone N, S or G first
				// is one even if the request was not seen yet.
				sd.st = stAnswer
			}
		case stAnswer:
			i = p.answer(d, b, i)
		case stSearch:
			j := p.findStart(d, b[i:])
			if j < 0 {
				return
			}
			i += j
			sd.st, sd.nh = stHeader, 0
			if p.backend(d) && p.q.n > 0 {
				p.serverResync(moved(d, s))
			}
		default: // stOff
			return
		}
	}
}

// answer reads the server's one-byte answer to SSLRequest or
// GSSENCRequest at b[i].
func (p *Parser) answer(d conn.Direction, b []byte, i int) int {
	sd := &p.sides[d]
	p.answers = max(p.answers-1, 0)
	switch b[i] {
	case 'N':
		if p.answers == 0 {
			sd.st = stHeader
		}
		return i + 1
	case 'S', 'G':
		// TLS or GSSAPI from here on: plaintext capture of TLS is
		// another parser's job.
		p.stats.Encrypted.Add(1)
		p.off()
		return len(b)
	}
	// Anything else is a message: an old server's ErrorResponse.
	sd.st = stHeader
	return i
}

// off stops parsing the connection.
func (p *Parser) off() {
	for i := range p.sides {
		p.sides[i].st = stOff
		p.sides[i].buf = nil
	}
}

// header reads a message header starting at b[i]: type and length, or in
// the startup phase the length alone.
func (p *Parser) header(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	b := s.Data
	if sd.nh == 0 {
		if sd.st == stStartup && p.answers > 0 && b[i] == 0x16 {
			// A TLS ClientHello: the server's 'S' was not seen yet.
			p.stats.Encrypted.Add(1)
			p.off()
			return len(b)
		}
		sd.seq, sd.tid, sd.start, sd.cause = s.Seq+uint32(i), s.TID, moved(d, s), s.Cause
	}
	typed := sd.st == stHeader
	need := 5
	if !typed {
		need = 4
	}
	k := copy(sd.hdr[sd.nh:need], b[i:])
	sd.nh += k
	i += k
	if sd.nh < need {
		return i
	}
	sd.nh = 0
	n := binary.BigEndian.Uint32(sd.hdr[need-4:])
	backend := p.backend(d)
	if typed {
		sd.typ = sd.hdr[0]
		if !headerOK(backend, sd.typ, n) {
			p.lose(d, s, &p.stats.Malformed)
			return len(b)
		}
	} else {
		sd.typ = 0
		if n < 8 || n > maxStartupLen {
			p.lose(d, s, &p.stats.Malformed)
			return len(b)
		}
	}
	sd.left = uint64(n) - 4
	sd.blen = int(sd.left)
	sd.keep = p.keepFor(backend, sd.typ, sd.blen)
	sd.buf, sd.cut = sd.buf[:0], false
	sd.st = stBody
	if sd.left == 0 {
		p.finish(d, s, nil)
	}
	return i
}

// keepFor says how much of a body of n bytes is worth collecting: the
// whole of the small messages decoded, a prefix of the ones whose head is
// enough, nothing of the rest.
func (p *Parser) keepFor(backend bool, typ byte, n int) int {
	k := 0
	if backend {
		switch typ {
		case bCommandComplete:
			k = 256
		case bErrorResponse, bNoticeResponse:
			k = 2048
		case bReadyForQuery:
			k = 1
		}
	} else {
		switch typ {
		case 0: // startup-phase message
			k = maxStartupLen
		case fQuery:
			k = p.opts.MaxQueryBytes + 1
		case fParse:
			k = maxNameLen + 1 + p.opts.MaxQueryBytes + 1
		case fBind:
			k = 2 * (maxNameLen + 1) // the portal and statement names only
		case fExecute, fClose:
			k = maxNameLen + 6
		}
	}
	return min(k, n)
}

// body consumes body bytes starting at b[i].
func (p *Parser) body(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	b := s.Data
	k := int(min(sd.left, uint64(len(b)-i)))
	if len(sd.buf) == 0 && !sd.cut && uint64(k) == sd.left && k >= sd.keep {
		// The whole message is in this segment: no copy.
		sd.left = 0
		p.finish(d, s, b[i:i+sd.keep])
		return i + k
	}
	if want := sd.keep - len(sd.buf); want > 0 && !sd.cut {
		take := min(want, k)
		if need := len(sd.buf) + take; need > cap(sd.buf) {
			nb := make([]byte, len(sd.buf), min(max(need, 2*cap(sd.buf), 256), sd.keep))
			copy(nb, sd.buf)
			sd.buf = nb
		}
		sd.buf = append(sd.buf, b[i:i+take]...)
	}
	sd.left -= uint64(k)
	if sd.left == 0 {
		p.finish(d, s, sd.buf)
	}
	return i + k
}

// skip steps over n uncaptured bytes: possible inside a body, fatal to the
// framing anywhere else.
func (p *Parser) skip(d conn.Direction, s *conn.Segment, n uint64) {
	sd := &p.sides[d]
	for n > 0 {
		switch sd.st {
		case stBody:
			k := min(n, sd.left)
			if len(sd.buf) < sd.keep {
				sd.cut = true
			}
			sd.left -= k
			n -= k
			if sd.left == 0 {
				p.finish(d, s, sd.buf)
			}
		case stSearch, stOff:
			return
		default:
			p.lose(d, s, &p.stats.Desyncs)
			return
		}
	}
}

// finish hands a complete message to its direction's handler; body is
// what was kept of it (cut when less than the whole).
func (p *Parser) finish(d conn.Direction, s *conn.Segment, body []byte) {
	sd := &p.sides[d]
	m := msg{typ: sd.typ, body: body, cut: sd.cut || sd.keep < sd.blen, start: sd.start, seq: sd.seq, tid: sd.tid, cause: sd.cause, end: s.End, moved: moved(d, s)}
	sd.st, sd.cut = stHeader, false
	switch {
	case p.backend(d):
		p.serverMsg(&m)
	case m.typ == 0:
		sd.st = stStartup
		p.startupMsg(d, &m)
	default:
		p.clientMsg(d, &m)
	}
	switch {
	case cap(sd.buf) > keptBuf:
		sd.buf = nil // a rare large message: idle connections stay small
	case sd.st != stOff:
		sd.buf = sd.buf[:0]
	}
}

// keptBuf is the most buffer capacity a direction keeps between messages.
const keptBuf = 1024

// msg is one framed message.
type msg struct {
	typ   byte
	body  []byte // the kept bytes of the body, valid during the call
	cut   bool   // body is a prefix
	start int64  // when its first byte moved
	seq   uint32
	tid   uint32
	cause conn.Cause
	end   int64 // End of the segment holding its last byte
	moved int64 // when its last byte moved (see moved)
}

// moved is when a segment's bytes moved for the traced process: a write's
// when it began, a read's when it returned (not when it began waiting).
func moved(d conn.Direction, s *conn.Segment) int64 {
	if d == conn.Egress {
		return s.Start
	}
	return s.End
}

// lose drops direction d's current message, counts why, and makes the
// direction wait for bytes that start messages. s is the segment where
// the framing broke.
func (p *Parser) lose(d conn.Direction, s *conn.Segment, why *atomic.Uint64) {
	why.Add(1)
	sd := &p.sides[d]
	sd.st, sd.nh, sd.cut = stSearch, 0, false
	sd.buf = sd.buf[:0]
	if p.backend(d) {
		p.respLost, p.res.lost = true, true
		return
	}
	// Whatever was lost is answered before whatever comes next: a gap
	// takes those answers. When the loss is inside a run that bound the
	// unnamed portal, the execution lost is most likely of its statement.
	gap := op{kind: opGap, start: moved(d, s), seq: s.Seq, tid: s.TID, cause: s.Cause}
	if p.run.open {
		gap.st, gap.start, gap.seq, gap.tid, gap.cause = p.stmts.portal, p.run.start, p.run.seq, p.run.tid, p.run.cause
	}
	p.run = run{}
	if last := p.q.n; last == 0 || p.q.at(last-1).kind != opGap {
		p.push(gap)
	}
}

// findStart looks in b for the first offset where a plausible run of
// messages starts. At 0 one complete message is enough; further in, two,
// or one that ends exactly where b does, so a byte inside a row is not
// taken for a message start.
func (p *Parser) findStart(d conn.Direction, b []byte) int {
	backend := p.backend(d)
	for j := range b {
		if !knownType(backend, b[j]) {
			continue
		}
		c, exact, ok := chainAt(b[j:], backend)
		if ok && (c >= 2 || c == 1 && (j == 0 || exact)) {
			return j
		}
	}
	return -1
}

// chainAt is chain, also reporting whether the complete messages end
// exactly at the end of b.
func chainAt(b []byte, backend bool) (complete int, exact, ok bool) {
	c, ok := chain(b, backend)
	if !ok || c == 0 {
		return c, false, ok
	}
	// Walk again to find where the complete ones end.
	off := 0
	for range c {
		off += 1 + int(binary.BigEndian.Uint32(b[off+1:]))
	}
	return c, off == len(b), true
}

// Close ends the connection: operations still waiting are emitted
// without an answer.
func (p *Parser) Close(ts int64) {
	if p.closed {
		return
	}
	p.closed = true
	// With server bytes lost, the answers may have been among them.
	lost := p.respLost || p.sides[p.reqDir.Opposite()].st == stSearch
	for p.q.n > 0 {
		o := p.q.pop()
		switch {
		case o.kind != opQuery && o.kind != opExecute:
		case lost:
			p.lostOp(o, p.respEnd)
		default:
			p.stats.Unanswered.Add(1)
			p.emit(&o, ts, outcomeNone)
		}
		p.res = result{}
	}
	p.q = queue{}
	p.stmts = statements{}
	for i := range p.sides {
		p.sides[i].buf = nil
	}
}
