package http2

// staticTable is RFC 7541 Appendix A; index i is staticTable[i-1].
var staticTable = [61]struct{ name, value string }{
	{":authority", ""},
	{":method", "GET"},
	{":method", "POST"},
	{":path", "/"},
	{":path", "/index.html"},
	{":scheme", "http"},
	{":scheme", "https"},
	{":status", "200"},
	{":status", "204"},
	{":status", "206"},
	{":status", "304"},
	{":status", "400"},
	{":status", "404"},
	{":status", "500"},
	{"accept-charset", ""},
	{"accept-encoding", "gzip, deflate"},
	{"accept-language", ""},
	{"accept-ranges", ""},
	{"accept", ""},
	{"access-control-allow-origin", ""},
	{"age", ""},
	{"allow", ""},
	{"authorization", ""},
	{"cache-control", ""},
	{"content-disposition", ""},
	{"content-encoding", ""},
	{"content-language", ""},
	{"content-length", ""},
	{"content-location", ""},
	{"content-range", ""},
	{"content-type", ""},
	{"cookie", ""},
	{"date", ""},
	{"etag", ""},
	{"expect", ""},
	{"expires", ""},
	{"from", ""},
	{"host", ""},
	{"if-match", ""},
	{"if-modified-since", ""},
	{"if-none-match", ""},
	{"if-range", ""},
	{"if-unmodified-since", ""},
	{"last-modified", ""},
	{"link", ""},
	{"location", ""},
	{"max-forwards", ""},
	{"proxy-authenticate", ""},
	{"proxy-authorization", ""},
	{"range", ""},
	{"referer", ""},
	{"refresh", ""},
	{"retry-after", ""},
	{"server", ""},
	{"set-cookie", ""},
	{"strict-transport-security", ""},
	{"transfer-encoding", ""},
	{"user-agent", ""},
	{"vary", ""},
	{"via", ""},
	{"www-authenticate", ""},
}

// staticBytes is staticTable as byte slices, so lookups hand out bytes
// without converting.
var staticBytes = func() (t [len(staticTable)][2][]byte) {
	for i, e := range staticTable {
		t[i] = [2][]byte{[]byte(e.name), []byte(e.value)}
	}
	return t
}()

// entryOverhead is what RFC 7541 4.1 adds to an entry's name and value
// lengths to make its size.
const entryOverhead = 32

// dynEntry is one dynamic table entry: its bytes live in the table's arena
// at virtual offset off (name, then value). An unknown entry was inserted
// by a representation weft could not decode: its place is known, its
// content and size are not.
type dynEntry struct {
	off        uint64
	nlen, vlen uint32
	unknown    bool
}

// size is the entry's RFC 7541 size; an unknown entry counts the least an
// entry can weigh, so the table never evicts a live entry too early.
func (e *dynEntry) size() uint64 { return uint64(e.nlen) + uint64(e.vlen) + entryOverhead }

// dynTable is the part of one direction's dynamic table weft knows: the
// newest entries, in insertion order, evicted first in first out. Their
// bytes sit contiguously in arena (FIFO eviction keeps the live bytes one
// run), which is compacted when the run reaches its end, so entries cost no
// allocation once the arena has grown.
type dynTable struct {
	ents     []dynEntry // ring, oldest at head
	head     int
	n        int
	unknowns int // unknown entries among the n
	arena    []byte
	base     uint64 // virtual offset of arena[0]
	end      uint64 // virtual offset just past the newest entry's bytes
	size     uint64 // sum of the entries' sizes
	// limit bounds size: the table's maximum size as far as it is known,
	// never above the decoder's cap.
	limit uint64
}

// at returns the entry k places from the newest (k=0 newest); k < n.
func (t *dynTable) at(k int) *dynEntry {
	return &t.ents[(t.head+t.n-1-k)%len(t.ents)]
}

func (t *dynTable) bytes(e *dynEntry) (name, value []byte) {
	i := int(e.off - t.base)
	n, v := int(e.nlen), int(e.vlen)
	return t.arena[i : i+n : i+n], t.arena[i+n : i+n+v : i+n+v]
}

// setLimit changes the maximum size and evicts what no longer fits.
func (t *dynTable) setLimit(limit uint64) {
	t.limit = limit
	t.evict(0)
}

// evict drops the oldest entries until need more bytes fit under limit.
func (t *dynTable) evict(need uint64) {
	for t.n > 0 && t.size+need > t.limit {
		e := &t.ents[t.head]
		t.size -= e.size()
		if e.unknown {
			t.unknowns--
		}
		*e = dynEntry{}
		t.head = (t.head + 1) % len(t.ents)
		t.n--
	}
	if t.n == 0 {
		t.head, t.base, t.end = 0, 0, 0
	}
}

// clear forgets every entry: after a loss their indices are unknown.
func (t *dynTable) clear() {
	t.evict(t.limit + 1)
}

// add inserts an entry (RFC 7541 4.4): one larger than the whole table
// empties it and is not kept. name and value are nil for an unknown entry.
func (t *dynTable) add(name, value []byte, unknown bool) {
	e := dynEntry{nlen: uint32(len(name)), vlen: uint32(len(value)), unknown: unknown}
	sz := e.size()
	if sz > t.limit {
		t.evict(t.limit + 1)
		return
	}
	t.evict(sz)
	if t.n == len(t.ents) {
		t.grow()
	}
	if raw := len(name) + len(value); raw > 0 {
		t.reserve(raw)
		i := int(t.end - t.base)
		copy(t.arena[i:], name)
		copy(t.arena[i+len(name):], value)
		e.off = t.end
		t.end += uint64(raw)
	}
	t.ents[(t.head+t.n)%len(t.ents)] = e
	t.n++
	t.size += sz
	if unknown {
		t.unknowns++
	}
}

// grow doubles the entry ring, which never needs more than limit/32 slots.
func (t *dynTable) grow() {
	ne := make([]dynEntry, max(8, 2*len(t.ents)))
	for i := range t.n {
		ne[i] = t.ents[(t.head+i)%len(t.ents)]
	}
	t.ents, t.head = ne, 0
}

// reserve makes room for raw more bytes at the end of the arena: it moves
// the live run to the front when that leaves half the arena free, else
// grows the arena to twice what the run needs. Live bytes never exceed
// the limit, so the arena never exceeds twice the limit, and a compaction
// is paid for by the half arena of insertions before the next one.
func (t *dynTable) reserve(raw int) {
	if int(t.end-t.base)+raw <= len(t.arena) {
		return
	}
	oldest := t.oldestOff()
	live := t.arena[oldest-t.base : t.end-t.base]
	if need := len(live) + raw; need > len(t.arena)/2 {
		na := make([]byte, max(256, 2*need))
		copy(na, live)
		t.arena = na
	} else {
		copy(t.arena, live)
	}
	t.base = oldest
}

// oldestOff is the virtual offset of the oldest entry that has bytes, or
// end when none has.
func (t *dynTable) oldestOff() uint64 {
	for i := range t.n {
		if e := &t.ents[(t.head+i)%len(t.ents)]; e.nlen+e.vlen > 0 {
			return e.off
		}
	}
	return t.end
}
