package correlate

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/procmeta"
)

// Span is one finished span, ready for an exporter. It is a plain value: the
// exporter owns converting it to OTLP.
type Span struct {
	TraceID      trace.TraceID
	SpanID       trace.SpanID
	ParentSpanID trace.SpanID // zero for a root span
	TraceState   string

	Name          string
	Kind          trace.SpanKind
	Start, End    time.Time
	StatusCode    codes.Code
	StatusMessage string
	Attributes    []attribute.KeyValue

	// Process is the traced process the span belongs to; the exporter makes
	// the OTLP resource from it.
	Process *procmeta.Process
}
