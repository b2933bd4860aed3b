package conn

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// series is one observed value of an instrument: a counter and the
// attribute that tells it apart from its siblings.
type series struct {
	v    *atomic.Uint64
	opts []metric.ObserveOption
}

// counterDef is one observable counter: several series share a name when
// they differ only by reason.
type counterDef struct {
	name, desc, unit string
	series           []series
}

func by(key, value string, v *atomic.Uint64) series {
	return series{v: v, opts: []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))}}
}

func plain(v *atomic.Uint64) series { return series{v: v} }

// counters lists what RegisterMetrics exports; adding a Stats counter means
// adding a line here.
func (s *Stats) counters() []counterDef {
	return []counterDef{
		{"weft_conn_opened", "Connections started, by what first showed them.", "{connection}", []series{
			by("source", "open", &s.Opened),
			by("source", "data", &s.OpenedFromData),
		}},
		{"weft_conn_closed", "Connections ended, by why.", "{connection}", []series{
			by("reason", "close", &s.ClosedByClose),
			by("reason", "process_exit", &s.ClosedByExit),
			by("reason", "replaced", &s.ClosedReplaced),
			by("reason", "idle", &s.EvictedIdle),
			by("reason", "table_full", &s.EvictedFull),
			by("reason", "shutdown", &s.ClosedAtFlush),
		}},
		{"weft_conn_segments", "Segments delivered to protocol handlers, data and skips.", "{segment}", []series{plain(&s.Segments)}},
		{"weft_conn_bytes_delivered", "Captured bytes delivered to protocol handlers.", "By", []series{plain(&s.BytesDelivered)}},
		{"weft_conn_bytes_skipped", "Stream bytes delivered as skips: past the per-syscall capture limit (truncated) or in gaps given up (lost).", "By", []series{
			by("reason", "truncated", &s.BytesSkippedTruncated),
			by("reason", "lost", &s.BytesSkippedLost),
		}},
		{"weft_conn_chunks_held", "Data chunks that arrived ahead of a gap and were held.", "{chunk}", []series{plain(&s.ChunksHeld)}},
		{"weft_conn_duplicate_chunks", "Data chunks wholly behind their stream, dropped.", "{chunk}", []series{plain(&s.DuplicateChunks)}},
		{"weft_conn_duplicate_bytes", "Bytes dropped or trimmed for being behind their stream.", "By", []series{plain(&s.DuplicateBytes)}},
		{"weft_conn_gaps_skipped", "Gaps given up: the reorder window passed, the connection closed, or a pending-buffer limit overflowed (stream_limit, table_limit).", "{gap}", []series{
			by("reason", "window", &s.GapsWindow),
			by("reason", "close", &s.GapsClose),
			by("reason", "stream_limit", &s.PendingOverflowsStream),
			by("reason", "table_limit", &s.PendingOverflowsTable),
		}},
		{"weft_conn_stale_events", "Events dropped for an older fd generation, a repeated open, or a malformed chunk.", "{event}", []series{plain(&s.StaleEvents)}},
	}
}

// RegisterMetrics exports the counters and the live-connection and
// pending-byte gauges through m, read when the meter's reader collects.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	defs := s.counters()
	insts := make([]metric.Int64ObservableCounter, len(defs))
	observables := make([]metric.Observable, 0, len(defs)+2)
	for i, d := range defs {
		c, err := m.Int64ObservableCounter(d.name, metric.WithDescription(d.desc), metric.WithUnit(d.unit))
		if err != nil {
			return fmt.Errorf("register %s: %w", d.name, err)
		}
		insts[i] = c
		observables = append(observables, c)
	}
	live, err := m.Int64ObservableGauge("weft_conn_live", metric.WithDescription("Connections in the table."), metric.WithUnit("{connection}"))
	if err != nil {
		return fmt.Errorf("register weft_conn_live: %w", err)
	}
	pending, err := m.Int64ObservableGauge("weft_conn_pending_bytes", metric.WithDescription("Captured bytes held out of order, waiting for a gap to fill."), metric.WithUnit("By"))
	if err != nil {
		return fmt.Errorf("register weft_conn_pending_bytes: %w", err)
	}
	observables = append(observables, live, pending)

	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i, d := range defs {
			for _, sr := range d.series {
				o.ObserveInt64(insts[i], int64(sr.v.Load()), sr.opts...)
			}
		}
		o.ObserveInt64(live, s.Live.Load())
		o.ObserveInt64(pending, s.PendingBytes.Load())
		return nil
	}, observables...)
	if err != nil {
		return fmt.Errorf("register conn metrics callback: %w", err)
	}
	return nil
}
