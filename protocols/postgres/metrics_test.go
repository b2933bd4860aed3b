package postgres

import (
	"context"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestRegisterMetrics(t *testing.T) {
	var s Stats
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	if err := s.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i, c := range []struct {
		name string
		v    *atomic.Uint64
	}{
		{"weft_postgres_exchanges", &s.Exchanges},
		{"weft_postgres_malformed", &s.Malformed},
		{"weft_postgres_desyncs", &s.Desyncs},
		{"weft_postgres_pending_overflows", &s.Overflows},
		{"weft_postgres_unanswered", &s.Unanswered},
		{"weft_postgres_orphan_messages", &s.Orphans},
		{"weft_postgres_unknown_outcomes", &s.Unknown},
		{"weft_postgres_skipped_after_error", &s.Skipped},
		{"weft_postgres_statements_evicted", &s.Evicted},
		{"weft_postgres_unprepared_executions", &s.Unprepared},
		{"weft_postgres_encrypted_connections", &s.Encrypted},
	} {
		c.v.Add(uint64(i + 1))
		want[c.name] = int64(i + 1)
	}
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Description == "" {
				t.Errorf("%s has no description", m.Name)
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 {
				t.Errorf("%s: %T, want one monotonic int64 sum", m.Name, m.Data)
				continue
			}
			got[m.Name] = sum.DataPoints[0].Value
		}
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %d, want %d", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d instruments, want %d: %v", len(got), len(want), got)
	}
}
