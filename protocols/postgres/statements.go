package postgres

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// stmt is what weft keeps of one statement: its text as sent (cut to
// MaxQueryBytes), the same with literals replaced by ?, and its first
// keyword. The strings are shared by every exchange that executes it.
type stmt struct {
	raw, san, op string
	cut          bool // raw is a prefix of longer text
	known        bool // the text was seen (false: prepared before weft looked)
}

// stmtOverhead approximates a map entry's cost beyond its strings.
const stmtOverhead = 64

func (s stmt) size() int {
	n := len(s.raw) + stmtOverhead
	if s.san != s.raw {
		n += len(s.san)
	}
	return n
}

// newStmt makes the stmt of raw text; cut says it is a prefix.
func newStmt(raw string, cut bool) stmt {
	raw = validUTF8(raw)
	return stmt{raw: raw, san: Sanitize(raw), op: Keyword(raw), cut: cut, known: true}
}

// validUTF8 returns s with invalid bytes replaced: span attributes must be
// UTF-8 (OTLP's protobuf refuses anything else), and clients may use
// another client_encoding.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cutText bounds text cut short (a prefix, up to a NUL if one is there)
// to max bytes, without ending in the middle of a UTF-8 sequence.
func cutText(b []byte, max int) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) <= max {
		return b
	}
	b = b[:max]
	// Back up over continuation bytes to the last sequence's first byte;
	// drop the sequence if it is incomplete.
	lead := len(b) - 1
	for lead > 0 && len(b)-lead < utf8.UTFMax && b[lead]&0xC0 == 0x80 {
		lead--
	}
	if lead >= 0 && !utf8.FullRune(b[lead:]) {
		b = b[:lead]
	}
	return b
}

// maxPortals bounds the named portals remembered: clients rarely keep
// more than a few open.
const maxPortals = 64

// statements remembers prepared statements by name and portals by name,
// within a count and a byte budget.
type statements struct {
	named   map[string]named
	bytes   int
	seq     uint64 // insertion counter, to forget the oldest first
	unnamed stmt
	portals map[string]stmt
	portal  stmt // the unnamed portal's statement
}

type named struct {
	stmt
	seq uint64
}

// parse records the statement a Parse message names. It reports how many
// statements it forgot to make room.
func (c *statements) parse(name []byte, s stmt, maxCount, maxBytes int) (evicted int) {
	if len(name) == 0 {
		c.unnamed = s
		return 0
	}
	if old, ok := c.named[string(name)]; ok {
		c.bytes -= old.size()
		delete(c.named, string(name))
	}
	if s.size() > maxBytes {
		return 1 // too big to keep at all
	}
	if c.named == nil {
		c.named = make(map[string]named)
	}
	// Forget the oldest until the new one fits. Clients with statement
	// caches close what they evict themselves, so this rarely runs and
	// may scan.
	for len(c.named) >= maxCount || c.bytes+s.size() > maxBytes {
		var oldest string
		min := ^uint64(0)
		for k, v := range c.named {
			if v.seq < min {
				oldest, min = k, v.seq
			}
		}
		c.bytes -= c.named[oldest].size()
		delete(c.named, oldest)
		evicted++
	}
	c.seq++
	c.named[string(name)] = named{s, c.seq}
	c.bytes += s.size()
	return evicted
}

// stmt returns the statement a Bind names; known is false when its Parse
// was not seen.
func (c *statements) stmt(name []byte) stmt {
	if len(name) == 0 {
		return c.unnamed
	}
	return c.named[string(name)].stmt
}

// bind records which statement a portal runs.
func (c *statements) bind(portal []byte, s stmt) {
	if len(portal) == 0 {
		c.portal = s
		return
	}
	if c.portals == nil {
		c.portals = make(map[string]stmt)
	}
	if _, ok := c.portals[string(portal)]; !ok && len(c.portals) >= maxPortals {
		clear(c.portals)
	}
	c.portals[string(portal)] = s
}

// executes returns the statement of the portal an Execute names.
func (c *statements) executes(portal []byte) stmt {
	if len(portal) == 0 {
		return c.portal
	}
	return c.portals[string(portal)]
}

// close forgets a statement ('S') or portal ('P').
func (c *statements) close(kind byte, name []byte) {
	switch {
	case kind == 'S' && len(name) == 0:
		c.unnamed = stmt{}
	case kind == 'S':
		if old, ok := c.named[string(name)]; ok {
			c.bytes -= old.size()
			delete(c.named, string(name))
		}
	case kind == 'P' && len(name) == 0:
		c.portal = stmt{}
	case kind == 'P':
		delete(c.portals, string(name))
	}
}
