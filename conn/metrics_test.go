package conn

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestRegisterMetrics(t *testing.T) {
	tab, _ := newTestTable(TableConfig{})
	id := ID{PID: 1, FD: 1, Gen: 1}
	tab.Open(Info{ID: id, Role: RoleClient})
	tab.Data(id, Egress, 0, 10, []byte("abcd"), 1, 1, 0, 1) // 6 truncated
	send(tab, id, Egress, 12, "xy", 2)                      // held, 2 pending
	send(tab, ID{PID: 2, FD: 1, Gen: 1}, Ingress, 0, "q", 3)

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	if err := tab.Stats().RegisterMetrics(provider.Meter("conn")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{} // name or name{key=value}
	sums := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: not a cumulative monotonic counter", m.Name)
				}
				sums[m.Name] = true
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			for _, p := range points {
				key := m.Name
				if kv, ok := firstAttr(p.Attributes); ok {
					key += "{" + string(kv.Key) + "=" + kv.Value.AsString() + "}"
				}
				got[key] = p.Value
			}
		}
	}
	want := map[string]int64{
		"weft_conn_opened{source=open}":             1,
		"weft_conn_opened{source=data}":             1,
		"weft_conn_bytes_skipped{reason=truncated}": 6,
		"weft_conn_bytes_skipped{reason=lost}":      0,
		"weft_conn_bytes_delivered":                 5,
		"weft_conn_segments":                        3,
		"weft_conn_chunks_held":                     1,
		"weft_conn_closed{reason=table_full}":       0,
		"weft_conn_gaps_skipped{reason=window}":     0,
		"weft_conn_live":                            2,
		"weft_conn_pending_bytes":                   2,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: got %d (present %v), want %d", k, g, ok, v)
		}
	}
	if sums["weft_conn_live"] || !sums["weft_conn_closed"] {
		t.Error("live should be a gauge and closed a counter")
	}
}

func firstAttr(s attribute.Set) (attribute.KeyValue, bool) {
	if s.Len() == 0 {
		return attribute.KeyValue{}, false
	}
	kv, _ := s.Get(0)
	return kv, true
}
