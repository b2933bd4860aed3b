package exporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// jsonlSpan is one line of the jsonl exporter. The schema is flat and
// stable so jq, DuckDB or a test can read it without knowing OTLP; every
// key is always present. JSONL.md documents it: change both together.
type jsonlSpan struct {
	TraceID           string         `json:"trace_id"`
	SpanID            string         `json:"span_id"`
	ParentSpanID      string         `json:"parent_span_id"`
	TraceState        string         `json:"trace_state"`
	Name              string         `json:"name"`
	Kind              string         `json:"kind"`
	StartTimeUnixNano uint64         `json:"start_time_unix_nano"`
	EndTimeUnixNano   uint64         `json:"end_time_unix_nano"`
	DurationNS        int64          `json:"duration_ns"`
	StatusCode        string         `json:"status_code"`
	StatusMessage     string         `json:"status_message"`
	ServiceName       string         `json:"service_name"`
	ProcessPID        *int64         `json:"process_pid"`
	Attributes        map[string]any `json:"attributes"`
	Resource          map[string]any `json:"resource"`
}

// jsonlSender writes one JSON object per span per line.
type jsonlSender struct {
	w      *bufio.Writer
	enc    *json.Encoder
	closer io.Closer // the file, or nil for standard output
}

func newJSONLSender(w io.Writer, closer io.Closer) *jsonlSender {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonlSender{w: bw, enc: enc, closer: closer}
}

func (s *jsonlSender) Export(_ context.Context, td ptrace.Traces) error {
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes()
		resource := jsonMap(res)
		var service string
		if v, ok := res.Get(string(semconv.ServiceNameKey)); ok {
			service = v.AsString()
		}
		var pid *int64
		if v, ok := res.Get(string(semconv.ProcessPIDKey)); ok && v.Type() == pcommon.ValueTypeInt {
			p := v.Int()
			pid = &p
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				line := jsonlSpan{
					TraceID:           sp.TraceID().String(),
					SpanID:            sp.SpanID().String(),
					ParentSpanID:      sp.ParentSpanID().String(),
					TraceState:        sp.TraceState().AsRaw(),
					Name:              sp.Name(),
					Kind:              jsonlKind(sp.Kind()),
					StartTimeUnixNano: uint64(sp.StartTimestamp()),
					EndTimeUnixNano:   uint64(sp.EndTimestamp()),
					DurationNS:        int64(sp.EndTimestamp()) - int64(sp.StartTimestamp()),
					StatusCode:        jsonlStatus(sp.Status().Code()),
					StatusMessage:     sp.Status().Message(),
					ServiceName:       service,
					ProcessPID:        pid,
					Attributes:        jsonMap(sp.Attributes()),
					Resource:          resource,
				}
				if err := s.enc.Encode(&line); err != nil {
					return fmt.Errorf("write jsonl: %w", err)
				}
			}
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}

func jsonlKind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	default:
		return "unspecified"
	}
}

func jsonlStatus(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	default:
		return "unset"
	}
}

// jsonMap turns attributes into plain JSON values; never nil, so an empty
// set is {} rather than null.
func jsonMap(m pcommon.Map) map[string]any {
	out := make(map[string]any, m.Len())
	for k, v := range m.All() {
		out[k] = jsonValue(v)
	}
	return out
}

// jsonValue maps one value to what encoding/json writes: numbers stay
// numbers, bytes become base64, and the floats JSON cannot hold become the
// strings "NaN", "+Inf" and "-Inf".
func jsonValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "+Inf"
		case math.IsInf(f, -1):
			return "-Inf"
		}
		return f
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeBytes:
		return v.Bytes().AsRaw()
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]any, 0, s.Len())
		for _, e := range s.All() {
			out = append(out, jsonValue(e))
		}
		return out
	case pcommon.ValueTypeMap:
		return jsonMap(v.Map())
	default:
		return nil
	}
}

func (s *jsonlSender) Shutdown(context.Context) error {
	err := s.w.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("close jsonl: %w", err)
	}
	return nil
}
