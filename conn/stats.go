package conn

import "sync/atomic"

// Stats counts what the table did. The table's goroutine writes them; any
// goroutine may read them (the metrics callback does), hence atomics.
type Stats struct {
	// Connections started: by an open event, or by data for a connection
	// whose open event was never seen. Kept apart so both stay monotonic.
	Opened         atomic.Uint64
	OpenedFromData atomic.Uint64

	// Connections ended, one counter per cause; their sum is every handler
	// Close.
	ClosedByClose  atomic.Uint64 // close event
	ClosedByExit   atomic.Uint64 // the process exited
	ClosedReplaced atomic.Uint64 // the fd was reused by a newer generation
	EvictedIdle    atomic.Uint64 // no event for IdleTimeout
	EvictedFull    atomic.Uint64 // table at MaxConns, least recently used
	ClosedAtFlush  atomic.Uint64 // Flush (shutdown)

	Segments              atomic.Uint64 // segments delivered, data and skips
	BytesDelivered        atomic.Uint64 // captured bytes delivered
	BytesSkippedTruncated atomic.Uint64 // moved by a syscall past its capture limit
	BytesSkippedLost      atomic.Uint64 // in gaps given up: lost events, or before a close's end

	ChunksHeld      atomic.Uint64 // chunks that arrived ahead of a gap
	DuplicateChunks atomic.Uint64 // chunks wholly behind the stream, dropped
	DuplicateBytes  atomic.Uint64 // bytes dropped or trimmed for being behind

	// Gaps given up, by why: the reorder window passed, the connection
	// closed, or a pending-buffer limit (per stream, or the table's total)
	// overflowed.
	GapsWindow             atomic.Uint64
	GapsClose              atomic.Uint64
	PendingOverflowsStream atomic.Uint64
	PendingOverflowsTable  atomic.Uint64

	// StaleEvents are events for an older generation of an fd than the one
	// in the table, repeated opens, and malformed chunks; all dropped.
	StaleEvents atomic.Uint64

	Live         atomic.Int64 // connections in the table
	PendingBytes atomic.Int64 // captured bytes held out of order, table-wide
}
