package main

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServiceGraphMetricNames: the service graph reaches /metrics under
// Tempo's names and labels exactly, through the Prometheus exporter's
// suffixing (_total for counters, _seconds for the unit "s").
func TestServiceGraphMetricNames(t *testing.T) {
	p := newPipeline(t)
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.corr.RegisterMetrics(m.meter); err != nil {
		t.Fatal(err)
	}
	p.exchanges(3)
	p.corr.FlushAll()

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("/metrics: %v\n%s", err, rec.Body)
	}
	want := map[string]string{
		"traces_service_graph_request_total":             "COUNTER",
		"traces_service_graph_request_server_seconds":    "HISTOGRAM",
		"traces_service_graph_request_client_seconds":    "HISTOGRAM",
		"weft_correlate_unattributed_client_spans_total": "COUNTER",
	}
	for name, typ := range want {
		f, ok := families[name]
		if !ok {
			t.Errorf("%s missing from /metrics:\n%s", name, rec.Body)
			continue
		}
		if f.GetType().String() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
	}
	f := families["traces_service_graph_request_total"]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("traces_service_graph_request_total: %v", f)
	}
	labels := map[string]string{}
	for _, l := range f.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if len(labels) != 3 || labels["client"] != "curl" || labels["server"] != "srv" || labels["connection_type"] != "" {
		t.Errorf("labels %v, want client=curl server=srv connection_type=\"\"", labels)
	}
	if v := f.Metric[0].GetCounter().GetValue(); v != 3 {
		t.Errorf("requests %v, want 3", v)
	}
	if h := families["traces_service_graph_request_server_seconds"]; h != nil {
		if n := h.Metric[0].GetHistogram().GetSampleCount(); n != 3 {
			t.Errorf("server histogram count %d, want 3", n)
		}
		if b := h.Metric[0].GetHistogram().GetBucket(); len(b) != 9 || b[0].GetUpperBound() != 0.1 || b[7].GetUpperBound() != 12.8 {
			t.Errorf("buckets %v, want Tempo's 0.1 .. 12.8 and +Inf", b)
		}
	}
	if _, ok := families["traces_service_graph_request_failed_total"]; ok {
		t.Errorf("failed requests counted for 200s:\n%s", rec.Body)
	}
}
