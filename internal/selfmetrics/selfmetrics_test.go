package selfmetrics

import (
	"context"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// point is one collected data point, flattened for comparison.
type point struct {
	kind, desc, unit string // kind: "counter" or "gauge"
	value            int64
}

func collect(t *testing.T, register func(*sdkmetric.MeterProvider) error) map[string]point {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	if err := register(provider); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]point{} // name or name{key=value}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var kind string
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: not a cumulative monotonic counter", m.Name)
				}
				kind, points = "counter", d.DataPoints
			case metricdata.Gauge[int64]:
				kind, points = "gauge", d.DataPoints
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			for _, p := range points {
				key := m.Name
				if p.Attributes.Len() > 1 {
					t.Errorf("%s: %d attributes, want at most one", m.Name, p.Attributes.Len())
				}
				if p.Attributes.Len() == 1 {
					kv, _ := p.Attributes.Get(0)
					key += "{" + string(kv.Key) + "=" + kv.Value.AsString() + "}"
				}
				if _, dup := got[key]; dup {
					t.Errorf("%s observed twice", key)
				}
				got[key] = point{kind, m.Description, m.Unit, p.Value}
			}
		}
	}
	return got
}

func TestRegister(t *testing.T) {
	var plain, idle, full, live atomic.Uint64
	plain.Store(3)
	idle.Store(5)
	full.Store(7)
	live.Store(2)
	got := collect(t, func(p *sdkmetric.MeterProvider) error {
		m := p.Meter("test")
		if err := RegisterCounters(m,
			Counter{Name: "weft_test_plain", Description: "Plain.", Value: &plain},
			Counter{Name: "weft_test_evicted", Description: "By reason.", Unit: "{connection}", Series: []Series{
				By("reason", "idle", &idle),
				By("reason", "table_full", &full),
			}},
		); err != nil {
			return err
		}
		return RegisterGauges(m, Gauge{Name: "weft_test_live", Description: "Live.", Unit: "By",
			Value: func() int64 { return int64(live.Load()) }})
	})
	// Values are read at collection, not at registration.
	want := map[string]point{
		"weft_test_plain":                      {"counter", "Plain.", "", 3},
		"weft_test_evicted{reason=idle}":       {"counter", "By reason.", "{connection}", 5},
		"weft_test_evicted{reason=table_full}": {"counter", "By reason.", "{connection}", 7},
		"weft_test_live":                       {"gauge", "Live.", "By", 2},
	}
	if len(got) != len(want) {
		t.Errorf("got %d points, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing", k)
		} else if g != w {
			t.Errorf("%s = %+v, want %+v", k, g, w)
		}
	}
}

func TestRegisterCountersRejects(t *testing.T) {
	var v atomic.Uint64
	for name, c := range map[string]Counter{
		"no value":     {Name: "weft_test_none"},
		"both":         {Name: "weft_test_both", Value: &v, Series: []Series{By("k", "v", &v)}},
		"series nil":   {Name: "weft_test_nil", Series: []Series{{Attrs: attribute.NewSet(attribute.String("k", "v"))}}},
		"invalid name": {Name: "", Value: &v},
	} {
		provider := sdkmetric.NewMeterProvider()
		if err := RegisterCounters(provider.Meter("test"), c); err == nil {
			t.Errorf("%s: no error", name)
		}
		_ = provider.Shutdown(context.Background())
	}
	if err := RegisterGauges(sdkmetric.NewMeterProvider().Meter("test"), Gauge{Name: "weft_test_g"}); err == nil {
		t.Error("gauge without value: no error")
	}
}
