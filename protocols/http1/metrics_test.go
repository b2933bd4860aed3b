package http1

import (
	"context"
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
	s.Exchanges.Add(5)
	s.Malformed.Add(2)
	s.Desyncs.Add(3)
	s.Overflows.Add(4)
	s.Unanswered.Add(6)
	s.Orphans.Add(7)
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
	want := map[string]int64{
		"weft_http1_exchanges": 5, "weft_http1_malformed": 2, "weft_http1_desyncs": 3,
		"weft_http1_pending_overflows": 4, "weft_http1_unanswered": 6, "weft_http1_orphan_responses": 7,
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
