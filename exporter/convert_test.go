package exporter

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
)

// goldenCases are the batches whose OTLP JSON is kept in testdata/.
func goldenCases() map[string]struct {
	resource map[string]string
	spans    []correlate.Span
} {
	server := httpSpan(procCheckout, trace.SpanKindServer, "GET /orders/{id}", 1)
	server.ParentSpanID = trace.SpanID{}
	server.StatusCode = codes.Ok
	server.StatusMessage = "dropped: only errors keep a message"
	server.TraceState = "weft=1,congo=t61rcWkgMzE"

	client := httpSpan(procCurl, trace.SpanKindClient, "GET", 1)
	client.SpanID = spanID(0x60)
	client.ParentSpanID = server.SpanID
	client.StatusCode = codes.Error
	client.StatusMessage = "connection reset"

	db := correlate.Span{
		TraceID: server.TraceID, SpanID: spanID(0x70), ParentSpanID: server.SpanID,
		Name: "SELECT orders", Kind: trace.SpanKindClient,
		Start: t0.Add(time.Millisecond), End: t0.Add(1200 * time.Microsecond),
		Attributes: []attribute.KeyValue{
			semconv.DBSystemNamePostgreSQL,
			semconv.DBQueryText("SELECT * FROM orders WHERE id = $1"),
		},
		Process: procCheckout,
	}

	types := correlate.Span{
		TraceID: traceID(0xa0), SpanID: spanID(0xb0),
		Name: "all attribute types", Kind: trace.SpanKindInternal,
		Start: t0, End: t0.Add(time.Second),
		Attributes: []attribute.KeyValue{
			attribute.Bool("bool", true),
			attribute.Int64("int64", math.MinInt64),
			attribute.Float64("float64", 0.25),
			attribute.String("string", "héllo \"world\""),
			attribute.BoolSlice("bool_slice", []bool{true, false}),
			attribute.Int64Slice("int64_slice", []int64{1, -2, math.MaxInt64}),
			attribute.Float64Slice("float64_slice", []float64{1.5, -0}),
			attribute.StringSlice("string_slice", []string{"a", ""}),
			attribute.ByteSlice("byte_slice", []byte{0xde, 0xad, 0xbe, 0xef}),
			attribute.Slice("slice", attribute.StringValue("x"), attribute.IntValue(7),
				attribute.SliceValue(attribute.BoolValue(false))),
			attribute.Map("map", attribute.String("z", "last"), attribute.Int("a", 1),
				attribute.Map("nested", attribute.Float64("f", 2))),
			{Key: "empty"},
			attribute.String("dup", "first"),
			attribute.String("dup", "second wins"),
			{Key: "", Value: attribute.StringValue("no key: skipped")},
		},
		Process: procCheckout,
	}

	var kinds []correlate.Span
	for i, k := range []trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindInternal, trace.SpanKindServer,
		trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKind(99)} {
		kinds = append(kinds, correlate.Span{
			TraceID: traceID(0xc0), SpanID: spanID(byte(0xd0 + i)), Name: k.String(), Kind: k,
			Start: t0, End: t0, // Process nil: only the configured resource
		})
	}
	kinds = append(kinds, correlate.Span{TraceID: traceID(0xc0), SpanID: spanID(0xe0), Name: "zero times"})

	return map[string]struct {
		resource map[string]string
		spans    []correlate.Span
	}{
		"http_two_processes": {
			resource: map[string]string{
				string(semconv.DeploymentEnvironmentNameKey): "test",
				string(semconv.ServiceNameKey):               "configured name loses to the process",
				string(semconv.HostNameKey):                  "configured host loses too",
			},
			spans: []correlate.Span{server, client, db},
		},
		"attribute_types": {spans: []correlate.Span{types}},
		"kinds_no_process": {
			resource: map[string]string{"k8s.cluster.name": "c1"},
			spans:    kinds,
		},
		"empty": {},
	}
}

func TestConvertGolden(t *testing.T) {
	for name, tc := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			td := newConverter("v1.2.3", tc.resource).convert(tc.spans)
			got := marshalGolden(t, td)
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -run TestConvertGolden -update to make it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the conversion; run with -update and review the diff.\ngot:\n%s", path, got)
			}
			// The golden file must stand for the same pdata, not just the same text.
			back, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(want)
			if err != nil {
				t.Fatalf("golden file does not parse: %v", err)
			}
			if back.SpanCount() != len(tc.spans) {
				t.Errorf("golden file has %d spans, want %d", back.SpanCount(), len(tc.spans))
			}
		})
	}
}

// marshalGolden is pdata's JSON, indented so that diffs are readable.
func marshalGolden(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	raw, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestConvertSemantics spells out, without golden files, the rules a reader
// of the golden files would otherwise have to infer.
func TestConvertSemantics(t *testing.T) {
	c := goldenCases()["http_two_processes"]
	td := newConverter("v1", c.resource).convert(c.spans)

	rss := td.ResourceSpans()
	if rss.Len() != 2 {
		t.Fatalf("%d resources, want one per process (2)", rss.Len())
	}
	res := rss.At(0).Resource().Attributes()
	if v, _ := res.Get("service.name"); v.Str() != "checkout" {
		t.Errorf("service.name = %q, want the process's own", v.Str())
	}
	if v, _ := res.Get("host.name"); v.Str() != "node-1" {
		t.Errorf("host.name = %q, want the process's own", v.Str())
	}
	if v, _ := res.Get("deployment.environment.name"); v.Str() != "test" {
		t.Errorf("deployment.environment.name = %q, want the configured one", v.Str())
	}
	if k, _ := res.Get("service.name"); k.Str() == "" || res.Len() != 5 {
		t.Errorf("resource has %d attributes, want 4 of the process + 1 configured", res.Len())
	}
	ss := rss.At(0).ScopeSpans()
	if ss.Len() != 1 || ss.At(0).Scope().Name() != ScopeName || ss.At(0).Scope().Version() != "v1" {
		t.Errorf("scope = %d scopes, first %q %q; want one %q v1", ss.Len(), ss.At(0).Scope().Name(), ss.At(0).Scope().Version(), ScopeName)
	}
	if n := ss.At(0).Spans().Len(); n != 2 {
		t.Errorf("checkout has %d spans, want the server and db spans (2)", n)
	}
	server := ss.At(0).Spans().At(0)
	if !server.ParentSpanID().IsEmpty() || server.Status().Code() != ptrace.StatusCodeOk || server.Status().Message() != "" {
		t.Errorf("server span parent %v status %v %q; want root, Ok, no message", server.ParentSpanID(), server.Status().Code(), server.Status().Message())
	}
	if got := server.EndTimestamp().AsTime().Sub(server.StartTimestamp().AsTime()); got != 1500*time.Microsecond {
		t.Errorf("duration = %v, want 1.5ms", got)
	}
	client := rss.At(1).ScopeSpans().At(0).Spans().At(0)
	if client.ParentSpanID() != server.SpanID() || client.Status().Message() != "connection reset" || client.Kind() != ptrace.SpanKindClient {
		t.Errorf("client span = parent %v kind %v message %q", client.ParentSpanID(), client.Kind(), client.Status().Message())
	}
}
