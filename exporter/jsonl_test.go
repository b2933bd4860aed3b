package exporter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
)

// schemaKeys are the json keys of jsonlSpan, in order.
func schemaKeys() []string {
	var keys []string
	typ := reflect.TypeFor[jsonlSpan]()
	for i := range typ.NumField() {
		keys = append(keys, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	return keys
}

func TestJSONLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	cfg := pipelineConfig()
	cfg.Exporter = ExporterJSONL
	cfg.JSONLPath = path
	cfg.ResourceAttributes = map[string]string{"deployment.environment.name": "test"}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}

	server := httpSpan(procCheckout, trace.SpanKindServer, "GET /orders/{id}", 1)
	server.ParentSpanID = trace.SpanID{}
	server.StatusCode = codes.Ok
	client := httpSpan(procCurl, trace.SpanKindClient, "GET", 2)
	client.StatusCode = codes.Error
	client.StatusMessage = "connection reset"
	client.TraceState = "vendor=x"
	odd := correlate.Span{
		TraceID: traceID(7), SpanID: spanID(7), Name: "odd values",
		Attributes: []attribute.KeyValue{
			attribute.Float64("nan", math.NaN()),
			attribute.Float64("inf", math.Inf(-1)),
			attribute.Float64("pinf", math.Inf(1)),
			attribute.ByteSlice("bytes", []byte("hi")),
			attribute.Int64Slice("ints", []int64{1, 2}),
			attribute.Map("map", attribute.Bool("b", true)),
			{Key: "empty"},
		},
	}
	for _, s := range []correlate.Span{server, client, odd} {
		e.Submit(s)
	}
	if err := shutdown(t, e); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600: spans may carry URLs and queries", fi.Mode().Perm())
	}
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// Key order is part of the schema: check it on the raw line.
		if got := keyOrder(t, sc.Bytes()); !slices.Equal(got, schemaKeys()) {
			t.Errorf("keys = %v, want %v", got, schemaKeys())
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), data)
	}

	first := lines[0]
	want := map[string]any{
		"trace_id": "0102030405060708090a0b0c0d0e0f10", "span_id": "1112131415161718", "parent_span_id": "",
		"trace_state": "", "name": "GET /orders/{id}", "kind": "server",
		"start_time_unix_nano": 1773500966536000000.0, "end_time_unix_nano": 1773500966537500000.0,
		"duration_ns": 1500000.0, "status_code": "ok", "status_message": "",
		"service_name": "checkout", "process_pid": 4242.0,
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("server span %s = %#v, want %#v", k, first[k], v)
		}
	}
	attrs := first["attributes"].(map[string]any)
	if attrs["http.response.status_code"] != 200.0 || attrs["http.route"] != "/orders/{id}" || len(attrs) != 10 {
		t.Errorf("attributes = %v, want the 10 HTTP attributes with typed values", attrs)
	}
	res := first["resource"].(map[string]any)
	if res["service.name"] != "checkout" || res["deployment.environment.name"] != "test" || res["process.pid"] != 4242.0 {
		t.Errorf("resource = %v, want the process's attributes plus the configured one", res)
	}

	second := lines[1]
	if second["kind"] != "client" || second["status_code"] != "error" || second["status_message"] != "connection reset" ||
		second["parent_span_id"] != "4243444546474849" || second["trace_state"] != "vendor=x" || second["service_name"] != "curl" {
		t.Errorf("client span = %v", second)
	}

	third := lines[2]
	if third["process_pid"] != nil || third["service_name"] != "" || third["kind"] != "unspecified" {
		t.Errorf("span without a process = %v, want process_pid null and no service", third)
	}
	wantOdd := map[string]any{
		"nan": "NaN", "inf": "-Inf", "pinf": "+Inf", "bytes": "aGk=", "ints": []any{1.0, 2.0},
		"map": map[string]any{"b": true}, "empty": nil,
	}
	if got := third["attributes"]; !reflect.DeepEqual(got, wantOdd) {
		t.Errorf("odd attributes = %#v, want %#v", got, wantOdd)
	}
}

// keyOrder lists the top-level keys of one JSON object in order.
func keyOrder(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestJSONLDocMatchesSchema keeps JSONL.md, which the README includes, in
// step with the struct that writes the lines.
func TestJSONLDocMatchesSchema(t *testing.T) {
	doc, err := os.ReadFile("JSONL.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}
	if !slices.Equal(documented, schemaKeys()) {
		t.Errorf("JSONL.md documents %v,\nthe writer emits %v", documented, schemaKeys())
	}
}

func TestJSONLBadPath(t *testing.T) {
	cfg := pipelineConfig()
	cfg.Exporter = ExporterJSONL
	cfg.JSONLPath = filepath.Join(t.TempDir(), "no", "such", "dir", "x.jsonl")
	if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "open jsonl file: ") {
		t.Errorf("New = %v, want open jsonl file: ...", err)
	}
}
