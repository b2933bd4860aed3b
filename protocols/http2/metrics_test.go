package http2

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestRegisterMetrics: every counter of Stats is one described monotonic
// instrument that reads its own counter.
func TestRegisterMetrics(t *testing.T) {
	var s Stats
	// A distinct value per counter, so a counter wired to the wrong
	// instrument shows.
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		v.Field(i).Addr().Interface().(*atomic.Uint64).Store(uint64(i + 1))
	}
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	if err := s.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
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
				t.Errorf("%s: %T, want one described monotonic int64 sum", m.Name, m.Data)
				continue
			}
			got[m.Name] = sum.DataPoints[0].Value
		}
	}
	want := map[string]int64{
		"weft_http2_exchanges": 1, "weft_http2_partial_exchanges": 2, "weft_http2_unanswered": 3,
		"weft_http2_hpack_desync": 4, "weft_http2_hpack_resync": 5,
		"weft_http2_framing_lost": 6, "weft_http2_framing_resync": 7,
		"weft_http2_oversized_header_blocks": 8, "weft_http2_malformed": 9,
		"weft_http2_streams_dropped": 10, "weft_http2_orphan_responses": 11,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
