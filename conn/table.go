package conn

// Table tracks live connections and feeds each one's Handler its streams in
// order. All methods are called from one goroutine (the event reader's), so
// the table takes no locks; only Stats is read from elsewhere. Handlers must
// not call back into the table.
type Table struct {
	cfg        TableConfig
	window     int64 // cfg.ReorderWindow in ns
	idle       int64 // cfg.IdleTimeout in ns
	minArena   int   // smallest per-stream copy buffer
	maxArena   int   // largest per-stream copy buffer
	newHandler HandlerFactory

	conns map[slot]*entry
	pids  map[uint32]*entry // head of each process's connection list
	lru   lruList
	pend  pendList
	last  *entry // one-entry lookup cache: events come in runs per connection

	// clock is the latest event timestamp seen: the reorder window is
	// measured on it, so a reader that falls behind never gives up gaps
	// whose fillers are still queued in the ring buffer.
	clock int64
	// eventsSinceEvict tells EvictIdle whether the stream of events went
	// quiet since its last call, when the event clock cannot advance alone.
	eventsSinceEvict uint64

	ended tombstones

	pendingBytes int
	seg          Segment // reused for every delivery so it never escapes to the heap
	freeBufs     [][]byte
	freeHeld     [][]held
	stats        Stats
}

// slot is what the kernel reuses: one process's fd number. The table holds
// at most one connection per slot; the generation decides which.
type slot struct {
	pid uint32
	fd  int32
}

// entry is one live connection.
type entry struct {
	info       Info
	h          Handler
	opened     bool // an open event was seen; else made up from data
	closed     bool
	lastActive int64

	lruPrev, lruNext *entry
	pidPrev, pidNext *entry

	streams [2]stream
}

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

// NewTable makes an empty table. Zero fields of cfg take their defaults.
// newHandler is called once per connection; a nil factory, or a nil Handler
// from it, discards the connection's bytes but still tracks it.
func NewTable(cfg TableConfig, newHandler HandlerFactory) *Table {
	cfg = cfg.withDefaults()
	if newHandler == nil {
		newHandler = func(*Info) Handler { return nopHandler{} }
	}
	return &Table{
		cfg:        cfg,
		window:     int64(cfg.ReorderWindow),
		idle:       int64(cfg.IdleTimeout),
		minArena:   minArena,
		maxArena:   max(minArena, 2*cfg.MaxPendingBytes),
		newHandler: newHandler,
		conns:      make(map[slot]*entry),
		pids:       make(map[uint32]*entry),
	}
}

// Stats returns the table's counters, safe to read from any goroutine.
func (t *Table) Stats() *Stats { return &t.stats }

// Len is the number of live connections.
func (t *Table) Len() int { return len(t.conns) }

// Config returns the configuration in force, defaults filled in.
func (t *Table) Config() TableConfig { return t.cfg }

// Open starts tracking a connection. An open for a newer generation of a
// tracked fd ends the old connection first (its close event was lost); an
// open older than the tracked generation is stale and dropped. An open for a
// connection first seen through its data fills in what that data could not
// tell (tuple, role, comm) in place.
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
				t.adopt(e, &info)
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
		return
	case id.Gen < e.info.ID.Gen:
		t.stats.StaleEvents.Add(1)
		return
	case id.Gen > e.info.ID.Gen:
		t.end(e, e.lastActive, reasonReplaced, nil)
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
	c := chunk{off: offset, n: uint64(length), data: data, start: start, end: end, seq: seq, tid: tid}
	t.accept(s, &c)
	t.expire()
}

// lookup finds the connection data belongs to, making it up when its open
// event was never seen, or nil when the data is for an older generation.
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
	if opened && info.Role != RoleUnknown {
		// The kernel saw connect or accept: both streams start at offset 0.
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

// adopt fills in a connection made up from data with its late open event.
// Fields the data already set are kept: the handler may have used them.
func (t *Table) adopt(e *entry, info *Info) {
	e.opened = true
	if e.info.Tuple == (Tuple{}) {
		e.info.Tuple = info.Tuple
	}
	if e.info.Role == RoleUnknown {
		e.info.Role = info.Role
	}
	if e.info.Comm == "" {
		e.info.Comm = info.Comm
	}
	if e.info.TID == 0 {
		e.info.TID = info.TID
	}
	if info.OpenedAt < e.info.OpenedAt {
		e.info.OpenedAt = info.OpenedAt
	}
	if info.Role != RoleUnknown {
		for d := range e.streams {
			if !e.streams[d].anchored {
				e.streams[d].anchor(0)
			}
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
			t.skip(s, tail, s.lastEnd, ts, s.nextSeq, 0)
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

func slotOf(id ID) slot { return slot{pid: id.PID, fd: id.FD} }

// nopHandler stands in for connections nobody wants the bytes of.
type nopHandler struct{}

func (nopHandler) Segment(*Segment) {}
func (nopHandler) Close(int64)      {}
