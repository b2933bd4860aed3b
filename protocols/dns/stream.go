package dns

import (
	"sync/atomic"

	"github.com/weftrace/weft/conn"
)

// Where a TCP direction is in its framing (RFC 1035 4.2.2: each message
// follows its two-byte length).
const (
	fLen  uint8 = iota // reading a length prefix
	fBody              // reading, or stepping over, a message
	fLost              // lost its place: waits for a segment that starts a message
)

// framer is one TCP direction's framing state.
type framer struct {
	st     uint8
	nlen   uint8   // length prefix bytes read so far
	prefix [2]byte // the length prefix
	want   int     // message length
	got    int     // message bytes passed, captured or not
	buf    []byte  // message bytes kept when it spans segments
	cut    bool    // some message bytes were neither captured nor kept
	next   uint64  // stream offset expected next
	at     at      // where the message's first byte (its prefix) moved
}

// stream consumes a run of a TCP direction.
func (p *Parser) stream(s *conn.Segment) {
	n := s.Len()
	if n == 0 {
		return
	}
	f := &p.frames[s.Dir&1]
	switch {
	case s.Offset > f.next:
		// Bytes the conn layer did not report (or that detection
		// swallowed) are a skip like any other.
		p.skip(s, s.Offset-f.next)
	case s.Offset < f.next:
		t, ok := s.From(f.next)
		if !ok {
			return
		}
		s = &t
	}
	f.next = s.Offset + s.Len()
	if s.Data == nil {
		p.skip(s, s.Skip)
		return
	}
	p.data(s)
}

// data consumes captured bytes.
func (p *Parser) data(s *conn.Segment) {
	f := &p.frames[s.Dir&1]
	b := s.Data
	if f.st == fLost {
		if !LooksLikeStream(b) {
			return
		}
		f.st, f.nlen = fLen, 0
	}
	for i := 0; i < len(b) && f.st != fLost; {
		if f.st == fLen {
			if f.nlen == 0 {
				f.at = at{start: moved(s), seq: s.Seq + uint32(i), tid: s.TID, cause: s.Cause}
			}
			f.prefix[f.nlen] = b[i]
			f.nlen++
			i++
			if f.nlen == 2 {
				p.begin(s.Dir)
			}
			continue
		}
		k := min(len(b)-i, f.want-f.got)
		part := b[i : i+k]
		i += k
		if f.got == 0 && k == f.want {
			// The whole message is in this segment: decode it in place.
			f.got = k
			p.message(s, part)
			continue
		}
		p.keep(f, part)
		f.got += k
		if f.got == f.want {
			p.message(s, f.buf)
		}
	}
}

// begin starts the message whose length prefix was just read.
func (p *Parser) begin(d conn.Direction) {
	f := &p.frames[d&1]
	f.want, f.got, f.cut, f.buf = int(be16(f.prefix[:])), 0, false, f.buf[:0]
	if f.want < headerLen {
		p.lose(d, &p.stats.Malformed)
		return
	}
	f.st = fBody
}

// keep holds part of a message that spans segments, up to MaxMessageBytes.
func (p *Parser) keep(f *framer, part []byte) {
	limit := min(f.want, p.opts.MaxMessageBytes)
	room := limit - len(f.buf)
	if room < len(part) {
		f.cut = true
	}
	part = part[:max(0, min(room, len(part)))]
	if len(part) == 0 {
		return
	}
	if need := len(f.buf) + len(part); need > cap(f.buf) {
		nb := make([]byte, len(f.buf), limit)
		copy(nb, f.buf)
		f.buf = nb
	}
	f.buf = append(f.buf, part...)
}

// skip steps over n uncaptured bytes: possible inside a message, whose
// length is known; fatal to the framing anywhere else.
func (p *Parser) skip(s *conn.Segment, n uint64) {
	f := &p.frames[s.Dir&1]
	if f.st != fBody {
		if f.st == fLen {
			p.lose(s.Dir, &p.stats.Desyncs)
		}
		return
	}
	k := min(n, uint64(f.want-f.got))
	f.got += int(k)
	f.cut = true
	if f.got == f.want {
		p.message(s, f.buf)
		if n > k {
			// The next length prefix was not captured.
			p.lose(s.Dir, &p.stats.Desyncs)
		}
	}
}

// message handles a complete TCP message, of which b is what was kept; its
// last byte is in s.
func (p *Parser) message(s *conn.Segment, b []byte) {
	f := &p.frames[s.Dir&1]
	f.st, f.nlen = fLen, 0
	if !decode(b, &p.m) {
		if f.cut {
			p.stats.Desyncs.Add(1) // not even its header was captured
		} else {
			p.stats.Malformed.Add(1)
		}
		return
	}
	if f.cut && p.m.response {
		p.m.partial = true
	}
	t := f.at
	t.end = s.End
	p.handle(s.Dir, p.info.Tuple.Remote, true, t)
}

// lose drops direction d's current message, counts why, and makes the
// direction wait for a segment that starts a message.
func (p *Parser) lose(d conn.Direction, why *atomic.Uint64) {
	why.Add(1)
	f := &p.frames[d&1]
	f.st, f.nlen, f.buf = fLost, 0, f.buf[:0]
}
