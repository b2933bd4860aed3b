package http2

import (
	"errors"

	"golang.org/x/net/http2/hpack"
)

// DefaultHeaderTableSize is HPACK's initial table size (RFC 9113 6.5.2).
const DefaultHeaderTableSize = 4096

// fieldSink receives the fields of a header block as they decode. name
// and value are valid only during the call; static is the static table
// index the name came from (0 when it came from elsewhere), so common
// names are classified without comparing bytes. unknown is called instead
// for a field whose name or value is a dynamic table entry weft does not
// know.
type fieldSink interface {
	field(name, value []byte, static int)
	unknown()
}

var (
	errTruncated = errors.New("hpack: truncated representation")
	errInvalid   = errors.New("hpack: invalid representation")
	errIndex     = errors.New("hpack: index past the table")
	errTooLong   = errors.New("hpack: string too long")
)

// decoder is one direction's HPACK decoder (RFC 7541). Unlike a peer's, it
// may not know every entry of its dynamic table: after a header block that
// was not decoded, or in a capture that began mid-connection, the entries
// from before are unknown, and so is their number. References past the
// entries inserted since then decode as unknown fields. Once those newer
// entries provably fill the table's maximum size, nothing older can remain
// and the decoder is synced again.
type decoder struct {
	tab dynTable
	// synced: every entry of the peer's table is in tab.
	synced bool
	// cur is the encoder's maximum table size, when curKnown (it changes
	// only by size updates in header blocks). bound is an upper bound of
	// it, when boundKnown: the largest of 4096 and every
	// SETTINGS_HEADER_TABLE_SIZE the decoding side announced, which only a
	// connection seen from its start knows.
	cur, bound           uint32
	curKnown, boundKnown bool
	// announced is the largest SETTINGS_HEADER_TABLE_SIZE seen so far;
	// announceLost says a SETTINGS frame was not captured whole. Both are
	// kept across init, which may come after the other side's SETTINGS.
	announced    uint32
	announceLost bool
	// cap bounds the table weft stores, whatever the peers agree on.
	cap     uint32
	scratch huffBuf
	// resyncs counts the times the decoder became synced again.
	resyncs uint64
}

// init readies a decoder. fromStart says the direction's next header
// block is the connection's first one, with the default table size.
func (d *decoder) init(cap uint32, maxString int, fromStart bool) {
	d.cap = cap
	d.scratch.max = maxString
	d.synced = fromStart
	d.cur, d.curKnown = DefaultHeaderTableSize, fromStart
	d.bound = max(DefaultHeaderTableSize, d.announced)
	d.boundKnown = fromStart && !d.announceLost
	d.tab.setLimit(d.limit())
}

// limit is what the stored table may hold: the maximum size as far as it
// is known (too large is safe, it only keeps entries the peer dropped),
// never more than cap.
func (d *decoder) limit() uint64 {
	switch {
	case d.curKnown:
		return uint64(min(d.cur, d.cap))
	case d.boundKnown:
		return uint64(min(d.bound, d.cap))
	}
	return uint64(d.cap)
}

// announce records a SETTINGS_HEADER_TABLE_SIZE sent by the side that
// decodes this direction: the most the encoder may use from then on.
func (d *decoder) announce(v uint32) {
	d.announced = max(d.announced, v)
	if d.boundKnown && v > d.bound {
		d.bound = v
		d.tab.setLimit(d.limit())
	}
}

// loseAnnouncements records a SETTINGS frame that was not captured whole:
// the bound is unknown from then on.
func (d *decoder) loseAnnouncements() {
	d.announceLost, d.boundKnown = true, false
}

// lose forgets the table after a header block that was not decoded: it may
// have inserted entries and carried a size update. It reports whether the
// decoder was synced until then.
func (d *decoder) lose() bool {
	was := d.synced
	d.synced, d.curKnown = false, false
	d.tab.clear()
	d.tab.setLimit(d.limit())
	return was
}

// decode walks one whole header block, calling sink for each field. On an
// error the table can no longer be trusted: the caller must lose it.
func (d *decoder) decode(b []byte, sink fieldSink) error {
	for len(b) > 0 {
		c := b[0]
		var err error
		switch {
		case c&0x80 != 0:
			b, err = d.indexed(b, sink)
		case c&0xc0 == 0x40:
			b, err = d.literal(b, 6, true, sink)
		case c&0xe0 == 0x20:
			b, err = d.sizeUpdate(b)
		default: // 0000xxxx without indexing, 0001xxxx never indexed
			b, err = d.literal(b, 4, false, sink)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// indexed is an indexed header field (RFC 7541 6.1).
func (d *decoder) indexed(b []byte, sink fieldSink) ([]byte, error) {
	i, b, err := readInt(b, 7)
	if err != nil {
		return nil, err
	}
	name, value, static, known, err := d.lookup(i)
	if err != nil {
		return nil, err
	}
	if known {
		sink.field(name, value, static)
	} else {
		sink.unknown()
	}
	return b, nil
}

// literal is a literal header field with or without incremental indexing
// (RFC 7541 6.2); n is the size of the name index's prefix.
func (d *decoder) literal(b []byte, n uint8, index bool, sink fieldSink) ([]byte, error) {
	ni, b, err := readInt(b, n)
	if err != nil {
		return nil, err
	}
	d.scratch.reset()
	var name []byte
	static, known := 0, true
	if ni > 0 {
		var dyn []byte
		dyn, _, static, known, err = d.lookup(ni)
		if err != nil {
			return nil, err
		}
		name = dyn
		if known && static == 0 && index {
			// The insertion may move the arena the name lives in.
			name, err = d.scratch.appendRaw(dyn)
			if err != nil {
				return nil, err
			}
		}
	} else if name, b, err = d.str(b); err != nil {
		return nil, err
	}
	value, b, err := d.str(b)
	if err != nil {
		return nil, err
	}
	if index {
		if known {
			d.tab.add(name, value, false)
		} else {
			d.tab.add(nil, nil, true)
		}
		d.checkSync()
	}
	if known {
		sink.field(name, value, static)
	} else {
		sink.unknown()
	}
	return b, nil
}

// sizeUpdate is a dynamic table size update (RFC 7541 6.3). RFC 7541
// wants it first in a block; peers check that, an observer need not.
func (d *decoder) sizeUpdate(b []byte) ([]byte, error) {
	v, b, err := readInt(b, 5)
	if err != nil {
		return nil, err
	}
	if v > 1<<31 {
		return nil, errInvalid
	}
	d.cur, d.curKnown = uint32(v), true
	if d.cur > d.cap {
		// Entries weft cannot store may be referenced.
		d.synced = false
	}
	d.tab.setLimit(d.limit())
	d.checkSync()
	return b, nil
}

// checkSync makes the decoder synced again when the known entries fill the
// table's maximum size so that not even the smallest unknown entry can
// still be in the peer's table (eviction is first in, first out).
func (d *decoder) checkSync() {
	if d.synced || d.tab.unknowns > 0 {
		return
	}
	var most uint32
	switch {
	case d.curKnown:
		most = d.cur
	case d.boundKnown:
		most = d.bound
	default:
		return
	}
	if most <= d.cap && d.tab.size+entryOverhead > uint64(most) {
		d.synced = true
		d.resyncs++
	}
}

// lookup resolves index i (RFC 7541 2.3.3). known is false for an entry
// weft does not know; an index past a synced table is an error.
func (d *decoder) lookup(i uint64) (name, value []byte, static int, known bool, err error) {
	switch {
	case i == 0:
		return nil, nil, 0, false, errInvalid
	case i <= uint64(len(staticTable)):
		e := &staticBytes[i-1]
		return e[0], e[1], int(i), true, nil
	}
	k := i - uint64(len(staticTable)) - 1
	if k >= uint64(d.tab.n) {
		if d.synced {
			return nil, nil, 0, false, errIndex
		}
		return nil, nil, 0, false, nil
	}
	e := d.tab.at(int(k))
	if e.unknown {
		return nil, nil, 0, false, nil
	}
	name, value = d.tab.bytes(e)
	return name, value, 0, true, nil
}

// str reads a string literal (RFC 7541 5.2), Huffman-decoding it into the
// scratch buffer when it is encoded.
func (d *decoder) str(b []byte) (s, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, errTruncated
	}
	huff := b[0]&0x80 != 0
	n, b, err := readInt(b, 7)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(b)) {
		return nil, nil, errTruncated
	}
	raw := b[:n]
	if !huff {
		return raw, b[n:], nil
	}
	s, err = d.scratch.huffman(raw)
	return s, b[n:], err
}

// readInt reads an integer with an n-bit prefix (RFC 7541 5.1). Like
// x/net's decoder it takes up to nine continuation bytes; values past 2^32,
// which no index, size or length can use, are refused.
func readInt(b []byte, n uint8) (uint64, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errTruncated
	}
	mask := uint64(1)<<n - 1
	v := uint64(b[0]) & mask
	if v < mask {
		return v, b[1:], nil
	}
	var m uint
	for i := 1; i < len(b); i++ {
		c := b[i]
		v += uint64(c&0x7f) << m
		if c&0x80 == 0 {
			if v > 1<<32 {
				return 0, nil, errInvalid
			}
			return v, b[i+1:], nil
		}
		if m += 7; m >= 63 {
			return 0, nil, errInvalid
		}
	}
	return 0, nil, errTruncated
}

// huffBuf holds decoded strings of one representation: a name and a value
// side by side, never more than max bytes, reused for every block.
type huffBuf struct {
	b   []byte
	max int
}

func (h *huffBuf) reset() { h.b = h.b[:0] }

// appendRaw copies s into the buffer and returns the copy.
func (h *huffBuf) appendRaw(s []byte) ([]byte, error) {
	if len(h.b)+len(s) > h.max {
		return nil, errTooLong
	}
	start := len(h.b)
	h.b = append(h.b, s...)
	return h.b[start:len(h.b):len(h.b)], nil
}

// huffman decodes s with x/net's Huffman decoder into the buffer.
func (h *huffBuf) huffman(s []byte) ([]byte, error) {
	start := len(h.b)
	if _, err := hpack.HuffmanDecode(h, s); err != nil {
		h.b = h.b[:start]
		return nil, err
	}
	return h.b[start:len(h.b):len(h.b)], nil
}

// Write appends what the Huffman decoder produced.
func (h *huffBuf) Write(p []byte) (int, error) {
	if len(h.b)+len(p) > h.max {
		return 0, errTooLong
	}
	h.b = append(h.b, p...)
	return len(p), nil
}
