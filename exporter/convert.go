package exporter

import (
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/procmeta"
)

// ScopeName is the instrumentation scope of every span weft exports.
const ScopeName = "github.com/weftrace/weft"

// converter turns one batch of spans into pdata. It keeps what is the same
// for every batch, and scratch space reused by the one goroutine that
// converts, so a batch costs the pdata it builds and little else.
type converter struct {
	scopeVersion string
	// resource holds the configured resource attributes sorted by key, so
	// output is the same from run to run.
	resource []attribute.KeyValue

	index map[*procmeta.Process]int
	procs []*procmeta.Process
	count []int
	spans []ptrace.SpanSlice
}

func newConverter(scopeVersion string, resource map[string]string) *converter {
	c := &converter{scopeVersion: scopeVersion, index: make(map[*procmeta.Process]int)}
	for _, k := range slices.Sorted(maps.Keys(resource)) {
		c.resource = append(c.resource, attribute.String(k, resource[k]))
	}
	return c
}

// convert builds the pdata for a batch: one ResourceSpans per process, in
// order of first appearance, each with one ScopeSpans. Spans without a
// process share one resource made of the configured attributes alone.
func (c *converter) convert(batch []correlate.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	if len(batch) == 0 {
		return td
	}
	clear(c.index)
	c.procs, c.count, c.spans = c.procs[:0], c.count[:0], c.spans[:0]
	for i := range batch {
		p := batch[i].Process
		j, ok := c.index[p]
		if !ok {
			j = len(c.procs)
			c.index[p] = j
			c.procs = append(c.procs, p)
			c.count = append(c.count, 0)
		}
		c.count[j]++
	}

	rss := td.ResourceSpans()
	rss.EnsureCapacity(len(c.procs))
	for j, p := range c.procs {
		rs := rss.AppendEmpty()
		c.fillResource(rs.Resource().Attributes(), p)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(ScopeName)
		ss.Scope().SetVersion(c.scopeVersion)
		spans := ss.Spans()
		spans.EnsureCapacity(c.count[j])
		c.spans = append(c.spans, spans)
	}
	for i := range batch {
		s := &batch[i]
		fillSpan(c.spans[c.index[s.Process]].AppendEmpty(), s)
	}
	clear(c.procs) // drop references to processes until the next batch
	return td
}

// fillResource puts the process's attributes first, then the configured ones
// the process does not already have: the process wins on conflict.
func (c *converter) fillResource(m pcommon.Map, p *procmeta.Process) {
	var own []attribute.KeyValue
	if p != nil {
		own = p.Attributes
	}
	m.EnsureCapacity(len(own) + len(c.resource))
	putAttributes(m, own)
	for _, kv := range c.resource {
		if _, ok := m.Get(string(kv.Key)); !ok {
			m.PutStr(string(kv.Key), kv.Value.AsString())
		}
	}
}

func fillSpan(dst ptrace.Span, s *correlate.Span) {
	dst.SetTraceID(pcommon.TraceID(s.TraceID))
	dst.SetSpanID(pcommon.SpanID(s.SpanID))
	dst.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
	if s.TraceState != "" {
		dst.TraceState().FromRaw(s.TraceState)
	}
	dst.SetName(s.Name)
	dst.SetKind(spanKind(s.Kind))
	dst.SetStartTimestamp(timestamp(s.Start))
	dst.SetEndTimestamp(timestamp(s.End))
	st := dst.Status()
	switch s.StatusCode {
	case codes.Error:
		st.SetCode(ptrace.StatusCodeError)
		// The API keeps a description only for errors; so do we.
		st.SetMessage(s.StatusMessage)
	case codes.Ok:
		st.SetCode(ptrace.StatusCodeOk)
	}
	putAttributes(dst.Attributes(), s.Attributes)
}

func spanKind(k trace.SpanKind) ptrace.SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return ptrace.SpanKindInternal
	case trace.SpanKindServer:
		return ptrace.SpanKindServer
	case trace.SpanKindClient:
		return ptrace.SpanKindClient
	case trace.SpanKindProducer:
		return ptrace.SpanKindProducer
	case trace.SpanKindConsumer:
		return ptrace.SpanKindConsumer
	default:
		return ptrace.SpanKindUnspecified
	}
}

// timestamp maps the zero time to OTLP's "unknown" 0 rather than to a date
// before 1970.
func timestamp(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}

// putAttributes copies attributes into m; a later duplicate key wins and
// attributes without a key are skipped, as the OTel SDK does.
func putAttributes(m pcommon.Map, attrs []attribute.KeyValue) {
	if len(attrs) == 0 {
		return
	}
	m.EnsureCapacity(m.Len() + len(attrs))
	for _, kv := range attrs {
		if !kv.Valid() {
			continue
		}
		setValue(m.PutEmpty(string(kv.Key)), kv.Value)
	}
}

// setValue converts one attribute value of any type, nested ones included.
func setValue(dst pcommon.Value, v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		dst.SetBool(v.AsBool())
	case attribute.INT64:
		dst.SetInt(v.AsInt64())
	case attribute.FLOAT64:
		dst.SetDouble(v.AsFloat64())
	case attribute.STRING:
		dst.SetStr(v.AsString())
	case attribute.BOOLSLICE:
		setSlice(dst, v.AsBoolSlice(), pcommon.Value.SetBool)
	case attribute.INT64SLICE:
		setSlice(dst, v.AsInt64Slice(), pcommon.Value.SetInt)
	case attribute.FLOAT64SLICE:
		setSlice(dst, v.AsFloat64Slice(), pcommon.Value.SetDouble)
	case attribute.STRINGSLICE:
		setSlice(dst, v.AsStringSlice(), pcommon.Value.SetStr)
	case attribute.BYTESLICE:
		dst.SetEmptyBytes().FromRaw(v.AsByteSlice())
	case attribute.SLICE:
		setSlice(dst, v.AsSlice(), setValue)
	case attribute.MAP:
		putAttributes(dst.SetEmptyMap(), v.AsMap())
	default:
		// EMPTY: dst is already an empty value.
	}
}

// setSlice makes dst a slice value holding vs, each element set by set.
func setSlice[T any](dst pcommon.Value, vs []T, set func(pcommon.Value, T)) {
	s := dst.SetEmptySlice()
	s.EnsureCapacity(len(vs))
	for _, e := range vs {
		set(s.AppendEmpty(), e)
	}
}
