package exporter

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestRegisterMetrics(t *testing.T) {
	cfg := pipelineConfig()
	cfg.MaxQueueSize = 2
	cfg.MaxExportBatchSize = 1
	f := &fakeSender{
		block:   make(chan struct{}),
		entered: make(chan struct{}, 16),
		errs:    []error{Retryable(errors.New("unavailable"), 0)},
	}
	e := newPipeline(t, cfg, f)

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	if err := e.RegisterMetrics(provider.Meter("weft")); err != nil {
		t.Fatal(err)
	}

	e.Submit(namedSpan("0"))
	<-f.entered // span 0 is being sent; the queue holds 2 of the next 3
	for i := 1; i <= 3; i++ {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	got := collect(t, reader)
	for name, want := range map[string]int64{
		"weft_exporter_spans_submitted":            4,
		"weft_exporter_spans_dropped{queue_full}":  1,
		"weft_exporter_spans_dropped{send_failed}": 0,
		"weft_exporter_queue_length":               2,
		"weft_exporter_queue_capacity":             2,
		"weft_exporter_spans_exported":             0,
		"weft_exporter_batches":                    1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %d (present %v), want %d", name, v, ok, want)
		}
	}

	close(f.block)
	if err := shutdown(t, e); err != nil {
		t.Fatal(err)
	}
	got = collect(t, reader)
	for name, want := range map[string]int64{
		"weft_exporter_spans_exported":          3,
		"weft_exporter_retries":                 1,
		"weft_exporter_export_errors":           1,
		"weft_exporter_queue_length":            0,
		"weft_exporter_spans_dropped{shutdown}": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("after shutdown %s = %d (present %v), want %d", name, v, ok, want)
		}
	}
}

// collect reads every int64 data point as name or name{reason}.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", m.Name)
				}
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			default:
				t.Errorf("%s has data %T", m.Name, m.Data)
			}
			for _, p := range points {
				name := m.Name
				if v, ok := p.Attributes.Value(attribute.Key("reason")); ok {
					name += "{" + v.AsString() + "}"
				}
				out[name] = p.Value
			}
		}
	}
	return out
}
