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

func slotOf(id ID) slot { return slot{pid: id.PID, fd: id.FD} }

// nopHandler stands in for connections nobody wants the bytes of.
type nopHandler struct{}

func (nopHandler) Segment(*Segment) {}
func (nopHandler) Close(int64)      {}
