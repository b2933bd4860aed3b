package conn

// Open starts tracking a connection. An open for a newer generation of a
// tracked fd ends the old connection first (its close event was lost); an
// open older than the tracked generation is stale and dropped, and so is
// a repeated one. An open for a connection first seen through its data
// keeps that connection and its handler (see adopt).
func (t *Table) Open(info Info) {
	t.tick(info.OpenedAt)
	if e := t.conns[slotOf(info.ID)]; e != nil {
		switch {
		case info.ID.Gen < e.info.ID.Gen:
			t.stats.StaleEvents.Add(1)
			return
		case info.ID.Gen == e.info.ID.Gen:
			if e.opened {
				t.stats.StaleEvents.Add(1)
			} else {
				t.adopt(e)
			}
			return
		}
		t.end(e, e.lastActive, reasonReplaced, nil)
	}
	t.create(info, true)
	t.expire()
}

// Close ends a connection: held data is delivered after skips for its gaps,
// then the Handler's Close. A close for a newer generation than the tracked
// one ends the tracked one too, since its fd was reused.
func (t *Table) Close(id ID, ts int64) { t.close(id, ts, nil) }

// CloseWithEnds is Close when the close event also says how long each
// direction's stream was (ends[d] is the offset one past the last byte the
// kernel saw in direction d): bytes past the last delivered one are
// delivered as a final Skip, so a lost tail is not silent.
func (t *Table) CloseWithEnds(id ID, ts int64, ends [2]uint64) { t.close(id, ts, &ends) }

func (t *Table) close(id ID, ts int64, ends *[2]uint64) {
	t.tick(ts)
	e := t.conns[slotOf(id)]
	switch {
	case e == nil:
		// Never seen, or already gone: remember it, so data that raced
		// the close cannot bring it back.
		t.ended.add(id)
		return
	case id.Gen < e.info.ID.Gen:
		t.stats.StaleEvents.Add(1)
		return
	case id.Gen > e.info.ID.Gen:
		t.end(e, e.lastActive, reasonReplaced, nil)
		t.ended.add(id)
	default:
		t.end(e, ts, reasonClose, ends)
	}
	t.expire()
}

// ProcessExit ends every connection of pid.
func (t *Table) ProcessExit(pid uint32, ts int64) {
	t.tick(ts)
	for e := t.pids[pid]; e != nil; e = t.pids[pid] {
		t.end(e, ts, reasonExit, nil)
	}
	t.expire()
}

// Flush ends every connection, for shutdown.
func (t *Table) Flush(ts int64) {
	for t.lru.head != nil {
		t.end(t.lru.head, ts, reasonFlush, nil)
	}
}

// Data feeds one chunk: length bytes at offset of dir's stream moved by one
// syscall between start and end, of which data is the captured prefix
// (len(data) <= length). data is only read during the call; in-order bytes
// reach the Handler without a copy.
func (t *Table) Data(id ID, dir Direction, offset uint64, length uint32, data []byte, start, end int64, seq, tid uint32) {
	t.DataCaused(id, dir, offset, length, data, start, end, seq, tid, Cause{})
}

// DataCaused is Data for a chunk whose write the kernel attributed to an
// earlier read (Segment.Cause).
func (t *Table) DataCaused(id ID, dir Direction, offset uint64, length uint32, data []byte, start, end int64, seq, tid uint32, cause Cause) {
	if uint64(len(data)) > uint64(length) {
		data = data[:length]
	}
	if length == 0 {
		return
	}
	if dir > Ingress || offset+uint64(length) < offset {
		t.stats.StaleEvents.Add(1)
		return
	}
	t.tick(end)
	e := t.lookup(id, tid, start)
	if e == nil {
		return
	}
	if end > e.lastActive {
		e.lastActive = end
	}
	t.lru.moveToFront(e)
	s := &e.streams[dir]
	if !s.anchored {
		s.anchor(offset)
	}
	c := chunk{off: offset, n: uint64(length), data: data, start: start, end: end, seq: seq, tid: tid, cause: cause}
	t.accept(s, &c)
	t.expire()
}
