package conn

import "slices"

// held is a chunk that arrived ahead of a gap, its bytes copied.
type held struct {
	chunk
	arrived int64 // event clock at arrival, for the reorder window
}

// minArena is the smallest copy buffer worth keeping (tests lower a
// table's to reach the compaction paths with small inputs).
const minArena = 4 << 10

// maxFree bounds each free list, so memory that a burst of reordering took
// is given back rather than kept for ever.
const maxFree = 16

// hold keeps a chunk that is ahead of the stream until its gap is filled.
// When keeping it would pass a limit, gaps are given up, this stream's
// first, then the table's oldest, until it fits; a chunk too big to hold
// at all is delivered at once after a skip.
func (t *Table) hold(s *stream, c *chunk) {
	i, found := slices.BinarySearchFunc(s.held, c.off, func(h held, off uint64) int {
		switch {
		case h.off < off:
			return -1
		case h.off > off:
			return 1
		}
		return 0
	})
	if found && s.held[i].n >= c.n && len(s.held[i].data) >= len(c.data) {
		t.stats.DuplicateChunks.Add(1)
		t.stats.DuplicateBytes.Add(c.n)
		return
	}
	need := len(c.data)
	for {
		overStream := s.heldBytes+need > t.cfg.MaxPendingBytes || len(s.held) >= t.cfg.MaxPendingChunks
		overTable := t.pendingBytes+need > t.cfg.MaxTotalPendingBytes
		switch {
		case !overStream && !overTable:
			t.insert(s, c)
			return
		case overStream && len(s.held) > 0:
			t.stats.PendingOverflowsStream.Add(1)
			t.skipGap(s)
		case overTable && t.pend.head != nil:
			t.stats.PendingOverflowsTable.Add(1)
			t.skipGap(t.pend.head)
		default:
			// Nothing held is left to make room: c alone is over a limit.
			if overStream {
				t.stats.PendingOverflowsStream.Add(1)
			} else {
				t.stats.PendingOverflowsTable.Add(1)
			}
			t.skipTo(s, c)
			t.deliver(s, c)
			return
		}
		if c.off <= s.next { // the skips reached c
			t.accept(s, c)
			return
		}
	}
}

// insert copies c into the stream's held list.
func (t *Table) insert(s *stream, c *chunk) {
	h := held{chunk: *c, arrived: t.clock}
	h.data = t.store(s, c.data)
	if s.held == nil {
		s.held = t.getHeld()
	}
	i, _ := slices.BinarySearchFunc(s.held, c.off, func(h held, off uint64) int {
		if h.off <= off {
			return -1 // after equal offsets: twins stay in arrival order
		}
		return 1
	})
	s.held = slices.Insert(s.held, i, h)
	s.heldBytes += len(c.data)
	t.pendingBytes += len(c.data)
	t.stats.PendingBytes.Add(int64(len(c.data)))
	t.stats.ChunksHeld.Add(1)
	if !s.pending {
		s.heldSince = t.clock
		t.pend.insert(s)
	}
}

// unaccount forgets freed bytes that drain delivered or dropped.
func (t *Table) unaccount(s *stream, freed int) {
	s.heldBytes -= freed
	t.pendingBytes -= freed
	t.stats.PendingBytes.Add(int64(-freed))
}

// release gives an emptied stream's buffers back to the table, so idle
// connections hold no reorder memory.
func (t *Table) release(s *stream) {
	if s.arena != nil {
		if len(t.freeBufs) < maxFree {
			t.freeBufs = append(t.freeBufs, s.arena[:0])
		}
		s.arena = nil
	}
	if s.held != nil {
		if len(t.freeHeld) < maxFree {
			t.freeHeld = append(t.freeHeld, s.held[:0])
		}
		s.held = nil
	}
}

func (t *Table) getHeld() []held {
	if n := len(t.freeHeld); n > 0 {
		h := t.freeHeld[n-1]
		t.freeHeld[n-1] = nil
		t.freeHeld = t.freeHeld[:n-1]
		return h
	}
	return make([]held, 0, min(t.cfg.MaxPendingChunks, 8))
}

// store copies data into the stream's arena and returns the copy.
func (t *Table) store(s *stream, data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	if cap(s.arena)-len(s.arena) < len(data) {
		t.regrow(s, len(data))
	}
	p := len(s.arena)
	s.arena = append(s.arena, data...)
	return s.arena[p:len(s.arena):len(s.arena)]
}

// regrow makes room for n more bytes by moving the live held bytes into a
// fresh buffer: the arena only grows by appending, and bytes of chunks
// already delivered are dead. The new buffer leaves at least as much free
// as is live, up to twice MaxPendingBytes, so moves stay rare.
func (t *Table) regrow(s *stream, n int) {
	need := s.heldBytes + n
	size := t.minArena
	for size < 2*need {
		size *= 2
	}
	size = max(min(size, t.maxArena), need)
	buf := t.getBuf(size)
	for i := range s.held {
		h := &s.held[i]
		if len(h.data) > 0 {
			p := len(buf)
			buf = append(buf, h.data...)
			h.data = buf[p:len(buf):len(buf)]
		}
	}
	if s.arena != nil && len(t.freeBufs) < maxFree {
		t.freeBufs = append(t.freeBufs, s.arena[:0])
	}
	s.arena = buf
}

// getBuf returns an empty buffer of at least size bytes, reusing a free one.
func (t *Table) getBuf(size int) []byte {
	for i, b := range t.freeBufs {
		if cap(b) >= size {
			last := len(t.freeBufs) - 1
			t.freeBufs[i] = t.freeBufs[last]
			t.freeBufs[last] = nil
			t.freeBufs = t.freeBufs[:last]
			return b
		}
	}
	return make([]byte, 0, size)
}
