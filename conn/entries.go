package conn

// closeReason says why a connection ended, for Stats.
type closeReason uint8

const (
	reasonClose closeReason = iota
	reasonExit
	reasonReplaced
	reasonIdle
	reasonFull
	reasonFlush
)

// lookup finds the connection data belongs to, making it up when its open
// event was never seen, or nil when the data is stale: for an older
// generation, or for a connection that ended for good.
func (t *Table) lookup(id ID, tid uint32, ts int64) *entry {
	if e := t.last; e != nil && e.info.ID == id {
		return e
	}
	if e := t.conns[slotOf(id)]; e != nil {
		if e.info.ID.Gen == id.Gen {
			t.last = e
			return e
		}
		if id.Gen < e.info.ID.Gen {
			t.stats.StaleEvents.Add(1)
			return nil
		}
		t.end(e, e.lastActive, reasonReplaced, nil)
	} else if t.ended.has(id) {
		t.stats.StaleEvents.Add(1)
		return nil
	}
	e := t.create(Info{ID: id, TID: tid, OpenedAt: ts}, false)
	t.last = e
	return e
}

// create adds a connection, evicting the least recently used one when the
// table is full, and makes its Handler.
func (t *Table) create(info Info, opened bool) *entry {
	for len(t.conns) >= t.cfg.MaxConns && t.lru.tail != nil {
		t.end(t.lru.tail, t.lru.tail.lastActive, reasonFull, nil)
	}
	e := &entry{info: info, opened: opened, lastActive: info.OpenedAt}
	for d := range e.streams {
		e.streams[d].e = e
		e.streams[d].dir = Direction(d)
	}
	if opened {
		// The kernel counts offsets from when it first saw the socket,
		// which is when it sent the open: both streams start at 0.
		e.streams[Egress].anchor(0)
		e.streams[Ingress].anchor(0)
	}
	t.conns[slotOf(info.ID)] = e
	t.lru.pushFront(e)
	pidAdd(t.pids, e)
	if opened {
		t.stats.Opened.Add(1)
	} else {
		t.stats.OpenedFromData.Add(1)
	}
	t.stats.Live.Store(int64(len(t.conns)))
	e.h = t.newHandler(&e.info)
	if e.h == nil {
		e.h = nopHandler{}
	}
	return e
}

// adopt takes a late open event for a connection made up from data. Info
// stays as it is: it is immutable once in the table, and exchanges may
// already carry it to other goroutines. The ring buffer keeps the kernel's
// order, so an open that trails its data is rare; usually it was lost.
// The open does anchor streams not seen yet: the kernel counts from 0.
func (t *Table) adopt(e *entry) {
	e.opened = true
	for d := range e.streams {
		if !e.streams[d].anchored {
			e.streams[d].anchor(0)
		}
	}
}

// end removes a connection, delivers what it still holds and closes its
// Handler, exactly once.
func (t *Table) end(e *entry, ts int64, why closeReason, ends *[2]uint64) {
	if e.closed {
		return
	}
	e.closed = true
	delete(t.conns, slotOf(e.info.ID))
	t.lru.remove(e)
	pidRemove(t.pids, e)
	if t.last == e {
		t.last = nil
	}
	t.stats.Live.Store(int64(len(t.conns)))
	for d := range e.streams {
		s := &e.streams[d]
		for len(s.held) > 0 {
			t.stats.GapsClose.Add(1)
			t.skipGap(s)
		}
		if ends != nil && s.anchored && ends[d] > s.next {
			tail := ends[d] - s.next
			t.skip(s, tail, min(s.lastEnd, ts), ts, s.nextSeq, 0, Cause{})
			t.stats.BytesSkippedLost.Add(tail)
		}
	}
	e.h.Close(ts)
	if why == reasonClose || why == reasonExit || why == reasonReplaced {
		t.ended.add(e.info.ID)
	}
	switch why {
	case reasonClose:
		t.stats.ClosedByClose.Add(1)
	case reasonExit:
		t.stats.ClosedByExit.Add(1)
	case reasonReplaced:
		t.stats.ClosedReplaced.Add(1)
	case reasonIdle:
		t.stats.EvictedIdle.Add(1)
	case reasonFull:
		t.stats.EvictedFull.Add(1)
	case reasonFlush:
		t.stats.ClosedAtFlush.Add(1)
	}
}
