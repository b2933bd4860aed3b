package http2

import (
	"encoding/binary"

	"github.com/weftrace/weft/conn"
)

// frame is the payload layout of the frame being read: fixed fields first
// (pad length, priority, promised stream, error code), then content, then
// padding.
type frame struct {
	left   uint32 // payload bytes not yet consumed
	need   int    // fixed-field bytes still to read into fix
	fixLen int
	fix    [8]byte
	clen   uint32 // content bytes still to come, once need is 0
	ctotal int64  // the frame's content length; -1 unknown
	// opaque: the fixed fields were lost or make no sense, so the rest of
	// the payload is stepped over blind.
	opaque bool
	set    [6]byte // a SETTINGS entry split across segments
	sn     int
}

// header collects a frame header from b[i].
func (p *Parser) header(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	b := s.Data
	if sd.hn == 0 {
		// A write's bytes leave when it starts; a read's arrive by the
		// time it returns, not when the program began waiting.
		sd.fStart, sd.fSeq, sd.fTID, sd.fCause = s.End, s.Seq+uint32(i), s.TID, s.Cause
		if d == conn.Egress {
			sd.fStart = s.Start
		}
	}
	k := copy(sd.hdr[sd.hn:], b[i:])
	sd.hn += k
	if sd.hn < frameHeaderLen {
		return i + k
	}
	sd.hn = 0
	sd.fh = parseFrameHeader(sd.hdr[:])
	p.beginFrame(d, s)
	return i + k
}

// beginFrame sets up the payload of the frame whose header was just read.
func (p *Parser) beginFrame(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	h := sd.fh
	if !h.sane() {
		p.stats.Malformed.Add(1)
		p.loseFraming(d)
		return
	}
	if sd.blkOn && (h.typ != ftContinuation || h.stream != sd.blkStream) {
		// Only the block's CONTINUATIONs may follow an unfinished block.
		p.stats.Malformed.Add(1)
		sd.blkLost = true
		p.finishBlock(d, s)
	}
	fr := &sd.fr
	*fr = frame{left: h.length, ctotal: -1}
	padded := 0
	if h.flags&flagPadded != 0 {
		padded = 1
	}
	switch h.typ {
	case ftData:
		fr.need = padded
	case ftHeaders:
		fr.need = padded
		if h.flags&flagPriority != 0 {
			fr.need += 5
		}
		p.openBlock(d, false)
	case ftPushPromise:
		fr.need = padded + 4
		p.openBlock(d, true)
	case ftContinuation:
		if !sd.blkOn {
			p.stats.Malformed.Add(1)
			fr.opaque = true
		}
	case ftRSTStream:
		fr.need = 4
	case ftSettings:
	default: // PRIORITY, PING, GOAWAY, WINDOW_UPDATE, unknown: not needed
		fr.opaque = true
	}
	fr.fixLen = fr.need
	switch {
	case fr.need > int(h.length):
		p.stats.Malformed.Add(1)
		p.prefixLost(d)
	case fr.need == 0 && !fr.opaque:
		fr.clen, fr.ctotal = h.length, int64(h.length)
	}
	sd.st = dsPayload
	if h.length == 0 {
		p.endFrame(d, s)
	}
}

// openBlock starts the header block a HEADERS or PUSH_PROMISE frame opens.
func (p *Parser) openBlock(d conn.Direction, push bool) {
	sd := &p.sides[d]
	sd.blkOn, sd.blkLost, sd.blkPush = true, false, push
	sd.blkStream, sd.blkEnd = sd.fh.stream, !push && sd.fh.flags&flagEndStream != 0
	sd.blkStart, sd.blkSeq, sd.blkTID, sd.blkCause = sd.fStart, sd.fSeq, sd.fTID, sd.fCause
	sd.blk = sd.blk[:0]
}

// payload consumes frame payload bytes from b[i].
func (p *Parser) payload(d conn.Direction, s *conn.Segment, i int) int {
	sd := &p.sides[d]
	fr := &sd.fr
	b := s.Data
	for i < len(b) && fr.left > 0 {
		k := min(uint32(len(b)-i), fr.left)
		switch {
		case fr.opaque:
		case fr.need > 0:
			k = min(k, uint32(fr.need))
			copy(fr.fix[fr.fixLen-fr.need:], b[i:i+int(k)])
			fr.need -= int(k)
			if fr.need == 0 {
				p.prefixDone(d)
			}
		case fr.clen > 0:
			k = min(k, fr.clen)
			p.content(d, s, b[i:i+int(k)])
			fr.clen -= k
		}
		i += int(k)
		fr.left -= k
	}
	if fr.left == 0 && sd.st == dsPayload {
		p.endFrame(d, s)
	}
	return i
}

// skipPayload steps over up to n uncaptured payload bytes and returns how
// many it took.
func (p *Parser) skipPayload(d conn.Direction, s *conn.Segment, n uint64) uint64 {
	sd := &p.sides[d]
	fr := &sd.fr
	k := min(n, uint64(fr.left))
	if !fr.opaque && fr.need > 0 {
		p.prefixLost(d)
	}
	if !fr.opaque && fr.clen > 0 {
		c := min(k, uint64(fr.clen))
		p.contentLost(d)
		fr.clen -= uint32(c)
	}
	fr.left -= uint32(k)
	if fr.left == 0 {
		p.endFrame(d, s)
	}
	return k
}

// prefixDone checks the fixed fields and sizes the content.
func (p *Parser) prefixDone(d conn.Direction) {
	sd := &p.sides[d]
	fr, h := &sd.fr, sd.fh
	pad := 0
	if h.flags&flagPadded != 0 && (h.typ == ftData || h.typ == ftHeaders || h.typ == ftPushPromise) {
		pad = int(fr.fix[0])
	}
	if fr.fixLen+pad > int(h.length) {
		p.stats.Malformed.Add(1)
		p.prefixLost(d)
		return
	}
	fr.clen = h.length - uint32(fr.fixLen+pad)
	fr.ctotal = int64(fr.clen)
}

// prefixLost makes the rest of the frame opaque: without its pad length
// the content's size is unknown.
func (p *Parser) prefixLost(d conn.Direction) {
	sd := &p.sides[d]
	sd.fr.opaque, sd.fr.ctotal, sd.fr.clen = true, -1, 0
	if sd.blkOn && (sd.fh.typ == ftHeaders || sd.fh.typ == ftPushPromise) {
		sd.blkLost = true
	}
}

// contentLost accounts content bytes that were not captured: DATA is
// counted by length anyway; a header block fragment cannot be decoded; a
// SETTINGS entry may have changed the table size bound.
func (p *Parser) contentLost(d conn.Direction) {
	sd := &p.sides[d]
	switch sd.fh.typ {
	case ftHeaders, ftPushPromise, ftContinuation:
		sd.blkLost = true
	case ftSettings:
		p.sides[d.Opposite()].dec.loseAnnouncements()
	}
}

// content consumes captured content bytes of the current frame.
func (p *Parser) content(d conn.Direction, s *conn.Segment, c []byte) {
	sd := &p.sides[d]
	switch sd.fh.typ {
	case ftHeaders, ftPushPromise, ftContinuation:
		p.fragment(d, s, c)
	case ftSettings:
		p.settings(d, c)
	}
}

// fragment adds a header block fragment. A block that is whole in one
// captured frame, the usual case, is decoded in place.
func (p *Parser) fragment(d conn.Direction, s *conn.Segment, c []byte) {
	sd := &p.sides[d]
	if sd.blkLost {
		return
	}
	limit := p.opts.MaxHeaderBlockBytes
	need := len(sd.blk) + len(c)
	if need > limit {
		p.stats.OversizedBlocks.Add(1)
		sd.blkLost = true
		return
	}
	if len(sd.blk) == 0 && sd.fh.flags&flagEndHeaders != 0 && int64(len(c)) == sd.fr.ctotal {
		p.decodeBlock(d, s, c)
		return
	}
	if need > cap(sd.blk) {
		nb := make([]byte, len(sd.blk), min(max(need, 2*cap(sd.blk), 256), limit))
		copy(nb, sd.blk)
		sd.blk = nb
	}
	sd.blk = append(sd.blk, c...)
}

// settings reads SETTINGS entries: only the header table size matters, to
// the decoder of the other direction.
func (p *Parser) settings(d conn.Direction, c []byte) {
	fr := &p.sides[d].fr
	for len(c) > 0 {
		k := copy(fr.set[fr.sn:], c)
		fr.sn += k
		c = c[k:]
		if fr.sn < len(fr.set) {
			return
		}
		fr.sn = 0
		if binary.BigEndian.Uint16(fr.set[:2]) == settingHeaderTableSize {
			p.sides[d.Opposite()].dec.announce(binary.BigEndian.Uint32(fr.set[2:]))
		}
	}
}

// endFrame acts on a frame whose last payload byte is in s.
func (p *Parser) endFrame(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	sd.st = dsHeader
	h, fr := sd.fh, &sd.fr
	switch h.typ {
	case ftData:
		p.onData(d, s, h.stream, fr.ctotal, h.flags&flagEndStream != 0)
	case ftHeaders, ftPushPromise, ftContinuation:
		if sd.blkOn && h.flags&flagEndHeaders != 0 {
			p.finishBlock(d, s)
		}
	case ftRSTStream:
		code := int64(-1)
		if !fr.opaque {
			code = int64(binary.BigEndian.Uint32(fr.fix[:4]))
		}
		p.onReset(s, h.stream, code)
	}
}

// finishBlock decodes the block that just ended (or accounts it lost).
func (p *Parser) finishBlock(d conn.Direction, s *conn.Segment) {
	sd := &p.sides[d]
	if !sd.blkLost {
		p.decodeBlock(d, s, sd.blk)
		sd.blk = sd.blk[:0]
		return
	}
	sd.blkOn, sd.blk = false, sd.blk[:0]
	if sd.dec.lose() {
		p.stats.HPACKDesyncs.Add(1)
	}
	p.blk.reset()
	p.blk.unknown = true
	p.headers(d, s, true)
}

// decodeBlock decodes a whole header block and acts on it.
func (p *Parser) decodeBlock(d conn.Direction, s *conn.Segment, b []byte) {
	sd := &p.sides[d]
	sd.blkOn = false
	p.blk.reset()
	resyncs := sd.dec.resyncs
	if err := sd.dec.decode(b, blockSink{p}); err != nil {
		p.stats.Malformed.Add(1)
		if sd.dec.lose() {
			p.stats.HPACKDesyncs.Add(1)
		}
		p.blk.unknown = true
	}
	if n := sd.dec.resyncs - resyncs; n > 0 {
		p.stats.HPACKResyncs.Add(n)
	}
	p.headers(d, s, false)
}
