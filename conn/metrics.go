package conn

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// counters lists what RegisterMetrics exports; adding a Stats counter means
// adding a line here.
func (s *Stats) counters() []selfmetrics.Counter {
	by := selfmetrics.By
	return []selfmetrics.Counter{
		{Name: "weft_conn_opened", Description: "Connections started, by what first showed them.", Unit: "{connection}", Series: []selfmetrics.Series{
			by("source", "open", &s.Opened),
			by("source", "data", &s.OpenedFromData),
		}},
		{Name: "weft_conn_closed", Description: "Connections ended, by why.", Unit: "{connection}", Series: []selfmetrics.Series{
			by("reason", "close", &s.ClosedByClose),
			by("reason", "process_exit", &s.ClosedByExit),
			by("reason", "replaced", &s.ClosedReplaced),
			by("reason", "idle", &s.EvictedIdle),
			by("reason", "table_full", &s.EvictedFull),
			by("reason", "shutdown", &s.ClosedAtFlush),
		}},
		{Name: "weft_conn_segments", Description: "Segments delivered to protocol handlers, data and skips.", Unit: "{segment}", Value: &s.Segments},
		{Name: "weft_conn_bytes_delivered", Description: "Captured bytes delivered to protocol handlers.", Unit: "By", Value: &s.BytesDelivered},
		{Name: "weft_conn_bytes_skipped", Description: "Stream bytes delivered as skips: past the per-syscall capture limit (truncated) or in gaps given up (lost).", Unit: "By", Series: []selfmetrics.Series{
			by("reason", "truncated", &s.BytesSkippedTruncated),
			by("reason", "lost", &s.BytesSkippedLost),
		}},
		{Name: "weft_conn_chunks_held", Description: "Data chunks that arrived ahead of a gap and were held.", Unit: "{chunk}", Value: &s.ChunksHeld},
		{Name: "weft_conn_duplicate_chunks", Description: "Data chunks wholly behind their stream, dropped.", Unit: "{chunk}", Value: &s.DuplicateChunks},
		{Name: "weft_conn_duplicate_bytes", Description: "Bytes dropped or trimmed for being behind their stream.", Unit: "By", Value: &s.DuplicateBytes},
		{Name: "weft_conn_gaps_skipped", Description: "Gaps given up: the reorder window passed, the connection closed, or a pending-buffer limit overflowed (stream_limit, table_limit).", Unit: "{gap}", Series: []selfmetrics.Series{
			by("reason", "window", &s.GapsWindow),
			by("reason", "close", &s.GapsClose),
			by("reason", "stream_limit", &s.PendingOverflowsStream),
			by("reason", "table_limit", &s.PendingOverflowsTable),
		}},
		{Name: "weft_conn_stale_events", Description: "Events dropped for an older fd generation, a repeated open, or a malformed chunk.", Unit: "{event}", Value: &s.StaleEvents},
	}
}

// RegisterMetrics exports the counters and the live-connection and
// pending-byte gauges through m, read when the meter's reader collects.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	if err := selfmetrics.RegisterCounters(m, s.counters()...); err != nil {
		return err
	}
	return selfmetrics.RegisterGauges(m,
		selfmetrics.Gauge{Name: "weft_conn_live", Description: "Connections in the table.", Unit: "{connection}", Value: s.Live.Load},
		selfmetrics.Gauge{Name: "weft_conn_pending_bytes", Description: "Captured bytes held out of order, waiting for a gap to fill.", Unit: "By", Value: s.PendingBytes.Load},
	)
}
