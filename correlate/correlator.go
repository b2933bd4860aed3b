package correlate

import (
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/procmeta"
	"github.com/weftrace/weft/protocols"
)

// ProcessLookup resolves the process a span belongs to. *procmeta.Cache is
// one; it must return quickly and be safe for concurrent use.
type ProcessLookup interface {
	Lookup(pid uint32, comm string) *procmeta.Process
}

var _ ProcessLookup = (*procmeta.Cache)(nil)

// Config says how spans are made.
type Config struct {
	// Clock converts a kernel monotonic timestamp (ns) to wall time.
	// Required: the correlator does no I/O and cannot read the clocks.
	Clock func(mono int64) time.Time
	// KnownHTTPMethods replaces the HTTP methods semconv calls known (the
	// RFC 9110 methods, PATCH and QUERY); any other method is reported as
	// _OTHER. Semconv requires this override, read from
	// OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS; nil means the default.
	KnownHTTPMethods []string
}

// Correlator converts exchanges into spans and hands them to its output
// function. Add is safe for concurrent use: it holds no state between
// exchanges but atomic counters.
type Correlator struct {
	clock func(int64) time.Time
	procs ProcessLookup
	out   func(Span)
	known map[string]attribute.KeyValue // method -> http.request.method

	spans        [3]atomic.Uint64 // by kindIndex
	joined       atomic.Uint64    // server spans that joined a traceparent's trace
	badParent    atomic.Uint64    // traceparent headers that did not parse
	unconverted  [256]atomic.Uint64
	unconvertedN atomic.Uint64
}

// Stats is a snapshot of what the correlator did.
type Stats struct {
	// Spans made, by kind. Unspecified spans come from exchanges whose
	// role nobody could infer.
	ServerSpans, ClientSpans, UnspecifiedSpans uint64
	// JoinedTraces counts server spans whose trace and parent came from a
	// traceparent header; InvalidTraceParents counts headers ignored as
	// malformed.
	JoinedTraces, InvalidTraceParents uint64
	// Unconverted counts exchanges dropped because no converter knows
	// their protocol (or an HTTP exchange came without its HTTP part).
	Unconverted uint64
}

// New makes a correlator that calls out once per span, on the goroutine
// that called Add. procs may be nil (spans then carry no Process). It
// panics when cfg.Clock is nil, a wiring mistake no span could survive.
func New(cfg Config, procs ProcessLookup, out func(Span)) *Correlator {
	if cfg.Clock == nil {
		panic("correlate: Config.Clock is nil")
	}
	if out == nil {
		panic("correlate: output function is nil")
	}
	return &Correlator{
		clock: cfg.Clock,
		procs: procs,
		out:   out,
		known: knownMethods(cfg.KnownHTTPMethods),
	}
}

// Add converts one exchange into a span and emits it. The Exchange and its
// HTTP struct are not retained (parsers reuse them), but the span keeps
// their strings (path, host, user agent): parsers must not build those over
// reused buffers with unsafe.
func (c *Correlator) Add(ex *protocols.Exchange) {
	var s Span
	switch ex.Protocol {
	case protocols.HTTP1, protocols.HTTP2:
		if ex.HTTP == nil {
			c.drop(ex.Protocol)
			return
		}
		c.httpSpan(ex, &s)
	// One case per protocol; each converter lives in its own file
	// (http.go, dns.go, postgres.go).
	default:
		c.drop(ex.Protocol)
		return
	}
	s.Start = c.clock(ex.Start)
	s.End = c.clock(ex.End)
	if s.End.Before(s.Start) {
		s.End = s.Start
	}
	if !s.TraceID.IsValid() {
		s.TraceID = newTraceID()
	}
	s.SpanID = newSpanID()
	if c.procs != nil && ex.Conn != nil {
		s.Process = c.procs.Lookup(ex.Conn.ID.PID, ex.Conn.Comm)
	}
	c.spans[kindIndex(s.Kind)].Add(1)
	c.out(s)
}

func (c *Correlator) drop(p protocols.Protocol) {
	c.unconverted[p].Add(1)
	c.unconvertedN.Add(1)
}

// Stats returns a snapshot of the counters.
func (c *Correlator) Stats() Stats {
	return Stats{
		ServerSpans:         c.spans[kindIndex(trace.SpanKindServer)].Load(),
		ClientSpans:         c.spans[kindIndex(trace.SpanKindClient)].Load(),
		UnspecifiedSpans:    c.spans[kindIndex(trace.SpanKindUnspecified)].Load(),
		JoinedTraces:        c.joined.Load(),
		InvalidTraceParents: c.badParent.Load(),
		Unconverted:         c.unconvertedN.Load(),
	}
}

// spanKinds are the kinds the correlator makes, in kindIndex order.
var spanKinds = [3]trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindServer, trace.SpanKindClient}

func kindIndex(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindServer:
		return 1
	case trace.SpanKindClient:
		return 2
	}
	return 0
}

// Ids come from math/rand/v2's top-level generator: ChaCha8 per OS thread,
// seeded by the runtime from the kernel's entropy, lock-free and safe for
// concurrent use. Ids need to be unpredictable enough not to collide, not
// secret. Zero ids are invalid and drawn again.

func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
