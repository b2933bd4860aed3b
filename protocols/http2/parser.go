package http2

import (
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// dirState is where a direction is in its stream of frames.
type dirState uint8

const (
	dsPreface dirState = iota // inside the client connection preface
	dsHeader                  // reading a frame header
	dsPayload                 // inside a frame's payload
	dsLost                    // frame boundaries unknown: wait for a segment that starts with frames
)

// side is one direction's parsing state.
type side struct {
	st      dirState
	started bool   // a segment of this direction arrived
	next    uint64 // stream offset expected next
	pre     int    // preface bytes consumed

	hdr [frameHeaderLen]byte
	hn  int // header bytes collected
	fh  frameHeader
	fr  frame

	// The header block being assembled: HEADERS or PUSH_PROMISE, then
	// CONTINUATIONs until END_HEADERS.
	blk       []byte
	blkOn     bool // a block is open
	blkLost   bool // some of its bytes were not captured, or it is too big
	blkStream uint32
	blkPush   bool // a PUSH_PROMISE block: decoded for the table only
	blkEnd    bool // its HEADERS frame carried END_STREAM
	blkStart  int64
	blkSeq    uint32
	blkTID    uint32
	blkCause  conn.Cause

	// Where the current frame's first byte moved.
	fStart int64
	fSeq   uint32
	fTID   uint32
	fCause conn.Cause

	dec       decoder
	fromStart bool // the direction was seen from the connection's start
	framed    bool // it has known its frame boundaries at some point
}

// Parser follows the HTTP/2 exchanges of one connection. It implements
// conn.Handler and, like every handler, is called from one goroutine.
type Parser struct {
	info  *conn.Info
	sink  protocols.Sink
	opts  Options
	stats *Stats

	reqDir    conn.Direction
	roleKnown bool
	closed    bool
	// prefaceDir is the direction that sent the client preface, when
	// prefaceSeen.
	prefaceDir  conn.Direction
	prefaceSeen bool

	sides   [2]side
	streams streams
	maxReq  uint32 // highest stream id whose request headers were seen

	blk  block // the block being decoded
	last struct {
		method, path, authority, host, ua, ts string
	}

	ex   protocols.Exchange
	http protocols.HTTP
}

var _ protocols.Parser = (*Parser)(nil)

// New returns the parser for one connection. Exchanges go to sink.
func New(info *conn.Info, sink protocols.Sink, opts Options) *Parser {
	p := &Parser{info: info, sink: sink, opts: opts.withDefaults()}
	p.stats = p.opts.Stats
	switch info.Role {
	case conn.RoleClient:
		p.reqDir, p.roleKnown = conn.Egress, true
	case conn.RoleServer:
		p.reqDir, p.roleKnown = conn.Ingress, true
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
	if !sd.started {
		p.start(d, s)
	}
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
	if s.Data == nil {
		p.skip(d, s, s.Skip)
		return
	}
	p.data(d, s)
}

// start sets a direction up from its first segment. A direction seen from
// the connection's start has a known HPACK table (empty, 4096 bytes); any
// other begins with its table and its frame boundaries unknown.
func (p *Parser) start(d conn.Direction, s *conn.Segment) {
	sd, other := &p.sides[d], &p.sides[d.Opposite()]
	sd.started, sd.next = true, s.Offset
	// Where weft does not know the direction's start, it does not know a
	// frame boundary either: it waits for a segment that starts with
	// frames.
	sd.st = dsLost
	if s.Offset == 0 && s.Data != nil {
		n := min(len(s.Data), len(Preface))
		switch {
		case string(s.Data[:n]) == Preface[:n]:
			sd.st, sd.fromStart = dsPreface, true
			p.prefaceDir, p.prefaceSeen = d, true
			if !p.roleKnown {
				p.reqDir, p.roleKnown = d, true
			}
		case p.info.Role != conn.RoleUnknown:
			// Offsets of a connection weft saw open count from its start.
			sd.st, sd.fromStart = dsHeader, true
		case p.prefaceSeen && p.prefaceDir != d:
			// The peer's preface was seen: weft saw this connection open.
			sd.st, sd.fromStart = dsHeader, true
		}
	}
	sd.framed = sd.st != dsLost
	// Huffman coding shrinks a string to 5/8 at best: a name and a value
	// from a block within the limit always fit twice its size.
	sd.dec.init(uint32(p.opts.MaxTableSize), 2*p.opts.MaxHeaderBlockBytes, sd.fromStart)
	if !sd.fromStart {
		p.stats.HPACKDesyncs.Add(1)
	}
	// A table's size bound comes from the other side's SETTINGS: all of
	// them must have been seen.
	if other.started {
		sd.dec.boundKnown = sd.dec.boundKnown && other.fromStart
		other.dec.boundKnown = other.dec.boundKnown && sd.fromStart
	}
}

// data consumes captured bytes.
func (p *Parser) data(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	b := s.Data
	if sd.st == dsLost {
		if _, ok := framesAt(b); !ok {
			return
		}
		p.resync(d)
	}
	for i := 0; i < len(b); {
		switch sd.st {
		case dsPreface:
			i = p.preface(d, s, i)
		case dsHeader:
			i = p.header(d, s, i)
		case dsPayload:
			i = p.payload(d, s, i)
		default: // lost within this segment
			return
		}
	}
}

// skip steps over n uncaptured bytes: harmless inside the preface and
// frame payloads (what they cost depends on the frame), fatal to the
// framing where they hide a frame header.
func (p *Parser) skip(d conn.Direction, s *conn.Segment, n uint64) {
	sd := &p.sides[d]
	for n > 0 {
		switch sd.st {
		case dsPreface:
			k := min(n, uint64(len(Preface)-sd.pre))
			sd.pre += int(k)
			n -= k
			if sd.pre == len(Preface) {
				sd.st = dsHeader
			}
		case dsPayload:
			n -= p.skipPayload(d, s, n)
		case dsHeader:
			p.loseFraming(d)
			return
		default:
			return
		}
	}
}

// preface consumes the client connection preface from b[i].
func (p *Parser) preface(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	b := s.Data
	k := min(len(b)-i, len(Preface)-sd.pre)
	if string(b[i:i+k]) != Preface[sd.pre:sd.pre+k] {
		p.stats.Malformed.Add(1)
		p.loseFraming(d)
		return len(b)
	}
	sd.pre += k
	if sd.pre == len(Preface) {
		sd.st = dsHeader
	}
	return i + k
}

// loseFraming gives up a direction's frame boundaries: it waits for a
// segment that starts with frames. What an unseen header block did to the
// HPACK table is unknown, and so is what became of the streams whose
// frames it was carrying.
func (p *Parser) loseFraming(d conn.Direction) {
	sd := &p.sides[d]
	p.stats.FramingLost.Add(1)
	sd.st, sd.hn = dsLost, 0
	sd.blkOn, sd.blk = false, sd.blk[:0]
	if sd.dec.lose() {
		p.stats.HPACKDesyncs.Add(1)
	}
	for i := range p.streams.s {
		st := &p.streams.s[i]
		if !st.used {
			continue
		}
		switch {
		case !p.roleKnown:
		case d == p.reqDir:
			// Request bytes lost cost the body size only: the outcome
			// travels the other way.
			if !st.reqEnd {
				st.reqBody = -1
			}
		case !st.respEnd:
			st.partial, st.respBody = true, -1
		}
	}
}

// resync resumes a lost direction at a segment that starts with frames.
func (p *Parser) resync(d conn.Direction) {
	sd := &p.sides[d]
	if sd.framed {
		p.stats.FramingResyncs.Add(1) // else the first frames of a late start
	}
	sd.st, sd.hn, sd.framed = dsHeader, 0, true
}

// Close ends the connection: streams still open are emitted with what is
// known, requests without a response as unanswered.
func (p *Parser) Close(ts int64) {
	if p.closed {
		return
	}
	p.closed = true
	for i := range p.streams.s {
		st := &p.streams.s[i]
		if !st.used {
			continue
		}
		switch {
		case !st.req:
			p.stats.Orphans.Add(1)
		case st.resp:
			// The outcome (trailers, the end) was never seen.
			st.partial = true
			p.emit(st, st.lastEnd)
		default:
			p.emit(st, ts)
		}
		p.streams.close(st)
	}
	p.streams = streams{}
	for i := range p.sides {
		p.sides[i].blk = nil
		p.sides[i].dec = decoder{}
	}
}
