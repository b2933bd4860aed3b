package conn

// tick advances the event clock. Timestamps from different CPUs are
// slightly out of order, so the clock keeps the latest.
func (t *Table) tick(ts int64) {
	if ts > t.clock {
		t.clock = ts
	}
	t.eventsSinceEvict++
}

// expire gives up gaps that have waited longer than the reorder window on
// the event clock, oldest first. It runs after each event is applied, never
// before, so an event that fills a gap is not beaten by its own timestamp.
func (t *Table) expire() {
	for s := t.pend.head; s != nil && t.clock-s.heldSince > t.window; s = t.pend.head {
		t.stats.GapsWindow.Add(1)
		t.skipGap(s)
	}
}

// EvictIdle ends connections with no event for longer than IdleTimeout
// before now (monotonic ns, the clock of event timestamps). Call it
// periodically from the reader's goroutine, after draining what the ring
// buffer holds.
//
// It also lets the reorder window run out on a quiet system: when no event
// at all arrived since the previous call, nothing can still be in flight
// behind the held data, so now stands in for the event clock. While events
// flow, only their timestamps count, so a reader that is behind never gives
// up a gap whose filler is still queued.
func (t *Table) EvictIdle(now int64) {
	if t.eventsSinceEvict == 0 && now > t.clock {
		t.clock = now
		t.expire()
	}
	t.eventsSinceEvict = 0
	for e := t.lru.tail; e != nil && now-e.lastActive > t.idle; e = t.lru.tail {
		t.end(e, e.lastActive, reasonIdle, nil)
	}
}
