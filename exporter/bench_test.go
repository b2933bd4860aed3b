package exporter

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/procmeta"
)

// BenchmarkSpansToPdata converts a realistic full batch: 512 HTTP spans
// from 10 processes, 10 attributes each.
func BenchmarkSpansToPdata(b *testing.B) {
	const nSpans, nProcs = 512, 10
	procs := make([]*procmeta.Process, nProcs)
	for i := range procs {
		name := fmt.Sprintf("svc-%d", i)
		procs[i] = &procmeta.Process{
			PID: uint32(1000 + i), ServiceName: name, ExeName: name,
			Attributes: []attribute.KeyValue{
				semconv.ServiceName(name),
				semconv.ProcessPID(1000 + i),
				semconv.ProcessExecutableName(name),
				semconv.HostName("node-1"),
			},
		}
	}
	batch := make([]correlate.Span, nSpans)
	for i := range batch {
		kind := trace.SpanKindServer
		if i%2 == 1 {
			kind = trace.SpanKindClient
		}
		batch[i] = httpSpan(procs[i%nProcs], kind, "GET /orders/{id}", i)
	}
	conv := newConverter("v1", map[string]string{"deployment.environment.name": "bench"})

	b.ReportAllocs()
	for b.Loop() {
		td := conv.convert(batch)
		if td.SpanCount() != nSpans {
			b.Fatalf("converted %d spans, want %d", td.SpanCount(), nSpans)
		}
	}
	b.ReportMetric(float64(nSpans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}
