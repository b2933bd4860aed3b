package correlate

import (
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
	// Join bounds how long and how many spans wait to be joined and
	// nested (join.go).
	Join JoinConfig
	// HostID names this host (its host name) in the derived span and trace
	// ids (ids.go), so two hosts never derive the same ones.
	HostID string
	// PeerNames, when set, names the service behind a client span's
	// remote address when no process on this host is known there
	// (peers.go); k8smeta.Resolver names Kubernetes Services and pods.
	PeerNames PeerNamer
	// KeepQueryLiterals puts statement text in db.query.text as sent;
	// by default its literals are replaced by ?, since they may carry
	// anything (semconv collects the text by default only sanitised).
	KeepQueryLiterals bool
	// MaxSpanNames bounds the distinct span names of each service
	// (names.go); zero means DefaultMaxSpanNames, negative no bound.
	MaxSpanNames int
}

// Correlator converts exchanges into spans, joins and nests them (join.go)
// and hands them to its output function as whole trees. Add, Flush,
// FlushAll and ObserveAccept must be called from one goroutine; Stats and
// the metrics may be read from any.
type Correlator struct {
	clock func(int64) time.Time
	procs ProcessLookup
	out   func(Span)
	known map[string]attribute.KeyValue // method -> http.request.method

	keepLiterals bool // Config.KeepQueryLiterals

	spans        [3]atomic.Uint64 // by kindIndex
	joined       atomic.Uint64    // server spans that joined a traceparent's trace
	badParent    atomic.Uint64    // traceparent headers that did not parse
	unconverted  [256]atomic.Uint64
	unconvertedN atomic.Uint64

	names     *nameCap
	join      *joiner
	joinStats joinStats
	graph     *serviceGraph
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
	// CappedNames counts spans given their protocol's generic name because
	// their service already had Config.MaxSpanNames distinct names.
	CappedNames uint64
}

// New makes a correlator that calls out once per span, on the goroutine
// that called Add, Flush or FlushAll. procs may be nil (spans then carry no
// Process). It panics when cfg.Clock is nil, a wiring mistake no span could
// survive.
func New(cfg Config, procs ProcessLookup, out func(Span)) *Correlator {
	if cfg.Clock == nil {
		panic("correlate: Config.Clock is nil")
	}
	if out == nil {
		panic("correlate: output function is nil")
	}
	c := &Correlator{
		clock: cfg.Clock,
		procs: procs,
		out:   out,
		known: knownMethods(cfg.KnownHTTPMethods),
		graph: newServiceGraph(),
		names: newNameCap(maxSpanNames(cfg.MaxSpanNames)),

		keepLiterals: cfg.KeepQueryLiterals,
	}
	c.join = newJoiner(cfg.Join, hostSeed(cfg.HostID), out, procs, &c.joinStats, c.graph)
	c.join.peers.names = cfg.PeerNames
	return c
}

// Add converts one exchange into a span and passes it to the join stage,
// which emits it with its tree. The Exchange and its HTTP struct are not
// retained (parsers reuse them), but the span keeps their strings (path,
// host, user agent): parsers must not build those over reused buffers with
// unsafe. A converter that sets the span's TraceID names its remote parent
// (a traceparent); ids are otherwise derived in the join stage.
func (c *Correlator) Add(ex *protocols.Exchange) {
	var s Span
	switch ex.Protocol {
	case protocols.HTTP1, protocols.HTTP2:
		if ex.HTTP == nil {
			c.drop(ex.Protocol)
			return
		}
		c.httpSpan(ex, &s)
	case protocols.DNS:
		if ex.DNS == nil {
			c.drop(ex.Protocol)
			return
		}
		c.dnsSpan(ex, &s)
	case protocols.Postgres:
		if ex.Postgres == nil {
			c.drop(ex.Protocol)
			return
		}
		c.postgresSpan(ex, &s)
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
	if c.procs != nil && ex.Conn != nil {
		s.Process = c.procs.Lookup(ex.Conn.ID.PID, ex.Conn.Comm)
	}
	s.Name = c.names.name(serviceName(&s), s.Name, ex)
	c.spans[kindIndex(s.Kind)].Add(1)
	c.join.add(ex, &s)
}

func (c *Correlator) drop(p protocols.Protocol) {
	c.unconverted[p].Add(1)
	c.unconvertedN.Add(1)
}

func maxSpanNames(n int) int {
	if n == 0 {
		return DefaultMaxSpanNames
	}
	return n
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
		CappedNames:         c.names.capped.Load(),
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
