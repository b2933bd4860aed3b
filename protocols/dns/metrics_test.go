package dns

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
	want := map[string]int64{}
	for i, c := range []struct {
		name string
		add  func(uint64) uint64
	}{
		{"weft_dns_exchanges", s.Exchanges.Add},
		{"weft_dns_timeouts", s.TimedOut.Add},
		{"weft_dns_retransmits", s.Retransmits.Add},
		{"weft_dns_malformed", s.Malformed.Add},
		{"weft_dns_orphan_responses", s.Orphans.Add},
		{"weft_dns_pending_overflows", s.Overflows.Add},
		{"weft_dns_desyncs", s.Desyncs.Add},
		{"weft_dns_partial_responses", s.Partial.Add},
		{"weft_dns_multicast_queries", s.Multicast.Add},
		{"weft_dns_no_responses", s.NoResponse.Add},
	} {
		c.add(uint64(i + 1))
		want[c.name] = int64(i + 1)
	}
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || m.Description == "" {
				t.Errorf("%s: %T (description %q), want one described monotonic int64 sum", m.Name, m.Data, m.Description)
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
