package conn

import "slices"

// stream is one direction of a connection, rebuilt by offset. Everything
// before next has been delivered; held is what arrived ahead of a gap.
type stream struct {
	e   *entry
	dir Direction

	// anchored says next is meaningful. The kernel counts offsets from
	// when it first saw the socket and sends the open event then, so
	// streams of opened connections start at 0. A connection made up from
	// data lost its open event and maybe more: each of its streams starts
	// at its first chunk, since the size of what went missing is unknown.
	anchored bool
	next     uint64
	nextSeq  uint32 // TCP sequence number of the byte at next
	lastEnd  int64  // End of the last delivered segment, to date gaps

	held      []held // sorted by offset; held[0].off > next
	heldBytes int    // captured bytes in held
	heldSince int64  // event clock when the oldest held chunk arrived
	arena     []byte // copies of held chunks' bytes

	pending            bool // in the table's pendList
	pendPrev, pendNext *stream
}

// chunk is one data event's view of a stream: n bytes from off, of which
// data is the captured prefix.
type chunk struct {
	off        uint64
	n          uint64
	data       []byte
	start, end int64
	seq, tid   uint32
	cause      Cause
}

func (s *stream) anchor(off uint64) {
	s.anchored = true
	s.next = off
}

// accept routes a chunk: deliver what is new now, drop what is behind, hold
// what is ahead.
func (t *Table) accept(s *stream, c *chunk) {
	switch {
	case c.off+c.n <= s.next:
		t.stats.DuplicateChunks.Add(1)
		t.stats.DuplicateBytes.Add(c.n)
	case c.off <= s.next:
		t.deliver(s, c)
		if len(s.held) > 0 {
			t.drain(s)
		}
	default:
		t.hold(s, c)
	}
}

// deliver hands over the part of c at or after next (c.off <= next <
// c.off+c.n): its captured bytes, aliasing the caller's, then a Skip for
// what the capture limit cut off.
func (t *Table) deliver(s *stream, c *chunk) {
	cut := s.next - c.off
	if cut > 0 {
		t.stats.DuplicateBytes.Add(cut)
	}
	if captured := uint64(len(c.data)); cut < captured {
		t.emitData(s, c.data[cut:], c.start, c.end, c.seq+uint32(cut), c.tid, c.cause)
		cut = captured
	}
	if cut < c.n {
		t.skip(s, c.n-cut, c.start, c.end, c.seq+uint32(cut), c.tid, c.cause)
		t.stats.BytesSkippedTruncated.Add(c.n - cut)
	}
}

// drain delivers held chunks that the stream has reached.
func (t *Table) drain(s *stream) {
	n, freed := 0, 0
	for ; n < len(s.held) && s.held[n].off <= s.next; n++ {
		h := &s.held[n]
		freed += len(h.data)
		if h.off+h.n > s.next {
			t.deliver(s, &h.chunk)
		} else {
			t.stats.DuplicateChunks.Add(1)
			t.stats.DuplicateBytes.Add(h.n)
		}
	}
	if n == 0 {
		return
	}
	s.held = slices.Delete(s.held, 0, n)
	t.unaccount(s, freed)
	t.pend.remove(s)
	if len(s.held) == 0 {
		t.release(s)
		return
	}
	s.heldSince = s.held[0].arrived
	for i := range s.held {
		s.heldSince = min(s.heldSince, s.held[i].arrived)
	}
	t.pend.insert(s)
}

// skipGap gives up the gap before the first held chunk: the missing range
// becomes a Skip, then everything now contiguous is delivered.
func (t *Table) skipGap(s *stream) {
	h := &s.held[0]
	t.skipTo(s, &h.chunk)
	t.drain(s)
}

// skipTo delivers [next, c.off) as lost. Its sequence number is derived
// from c's, and it is dated between the last delivered segment and c.
func (t *Table) skipTo(s *stream, c *chunk) {
	gap := c.off - s.next
	if gap == 0 {
		return
	}
	start := s.lastEnd
	if start == 0 || start > c.start {
		start = c.start
	}
	t.skip(s, gap, start, c.start, c.seq-uint32(gap), c.tid, Cause{})
	t.stats.BytesSkippedLost.Add(gap)
}

// emitData hands data at next to the Handler through the table's one reused
// Segment, so a delivery never allocates.
func (t *Table) emitData(s *stream, data []byte, start, end int64, seq, tid uint32, cause Cause) {
	n := uint64(len(data))
	t.seg = Segment{Dir: s.dir, Offset: s.next, Data: data, Start: start, End: end, Seq: seq, TID: tid, Cause: cause}
	s.advance(n, end, seq)
	s.e.h.Segment(&t.seg)
	t.seg.Data = nil // don't keep the event's buffer reachable
	t.stats.Segments.Add(1)
	t.stats.BytesDelivered.Add(n)
}

// skip hands n uncaptured bytes at next to the Handler; the caller counts
// them by reason.
func (t *Table) skip(s *stream, n uint64, start, end int64, seq, tid uint32, cause Cause) {
	t.seg = Segment{Dir: s.dir, Offset: s.next, Skip: n, Start: start, End: end, Seq: seq, TID: tid, Cause: cause}
	s.advance(n, end, seq)
	s.e.h.Segment(&t.seg)
	t.stats.Segments.Add(1)
}

func (s *stream) advance(n uint64, end int64, seq uint32) {
	s.next += n
	s.nextSeq = seq + uint32(n)
	s.lastEnd = end
}
