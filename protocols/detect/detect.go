package detect

import (
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/internal/selfmetrics"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/dns"
	"github.com/weftrace/weft/protocols/http1"
	"github.com/weftrace/weft/protocols/http2"
	"github.com/weftrace/weft/protocols/postgres"
)

// entry is one protocol detect can pick.
type entry struct {
	proto protocols.Protocol
	// match says whether a connection whose first captured bytes are b,
	// moving in direction d, speaks the protocol. It must be cheap and
	// must not keep b.
	match func(d conn.Direction, b []byte) bool
	// datagram is match for a UDP connection's first datagram; nil for
	// protocols that never run over UDP. A UDP connection is only offered
	// to entries that set it, a TCP one only to entries that set match.
	datagram func(d conn.Direction, b []byte) bool
	// parser makes the connection's parser.
	parser func(info *conn.Info, sink protocols.Sink, o *Options) conn.Handler
}

// registry is tried in order; the first match wins, so a protocol whose
// first bytes could be mistaken for another's goes before it. A new
// protocol (HTTP/2 preface, DNS over TCP, PostgreSQL startup) is one entry.
var registry = []entry{
	{
		proto: protocols.HTTP1,
		match: func(_ conn.Direction, b []byte) bool {
			req, resp := http1.LooksLikeHTTP1(b)
			return req || resp
		},
		parser: func(info *conn.Info, sink protocols.Sink, o *Options) conn.Handler {
			return http1.New(info, sink, o.HTTP1)
		},
	},
	{
		// The client preface, a server's first SETTINGS, or frames back
		// to back; before the entries whose late-join guesses could take
		// the preface ("P" is a PostgreSQL Parse message).
		proto: protocols.HTTP2,
		match: func(_ conn.Direction, b []byte) bool { return http2.LooksLikeHTTP2(b) },
		parser: func(info *conn.Info, sink protocols.Sink, o *Options) conn.Handler {
			return http2.New(info, sink, o.HTTP2)
		},
	},
	{
		// A startup packet, SSLRequest or CancelRequest; or, on a
		// connection joined late, well-formed messages of either side.
		proto: protocols.Postgres,
		match: func(_ conn.Direction, b []byte) bool {
			front, back := postgres.LooksLikePostgres(b)
			return front || back
		},
		parser: func(info *conn.Info, sink protocols.Sink, o *Options) conn.Handler {
			return postgres.New(info, sink, o.Postgres)
		},
	},
	{
		proto:    protocols.DNS,
		match:    func(_ conn.Direction, b []byte) bool { return dns.LooksLikeStream(b) },
		datagram: func(_ conn.Direction, b []byte) bool { return dns.LooksLikeDatagram(b) },
		parser: func(info *conn.Info, sink protocols.Sink, o *Options) conn.Handler {
			return dns.New(info, sink, o.DNS)
		},
	},
}

// matcher is e's test for a UDP or a TCP connection; nil when e's protocol
// does not run over it.
func (e *entry) matcher(udp bool) func(conn.Direction, []byte) bool {
	if udp {
		return e.datagram
	}
	return e.match
}

// Defaults for Options fields left zero.
const (
	DefaultMaxWaitBytes    = 1 << 20
	DefaultMaxWaitSegments = 16
)

// Options configure detection and the parsers it makes.
type Options struct {
	// HTTP1 is passed to every HTTP/1 parser.
	HTTP1 http1.Options
	// HTTP2 is passed to every HTTP/2 (and gRPC) parser.
	HTTP2 http2.Options
	// DNS is passed to every DNS parser.
	DNS dns.Options
	// Postgres is passed to every PostgreSQL parser.
	Postgres postgres.Options
	// MaxWaitBytes and MaxWaitSegments bound how long a connection whose
	// first segments were not captured waits for captured bytes before
	// it is ignored: without its start a stream is rarely worth parsing.
	MaxWaitBytes    uint64
	MaxWaitSegments int
	// Stats, shared by all connections, counts what detection decided;
	// nil gives the factory a private one.
	Stats *Stats
}

// Validate reports options that cannot work; zero values mean defaults.
func (o Options) Validate() error {
	var errs []error
	if o.MaxWaitSegments < 0 {
		errs = append(errs, fmt.Errorf("max wait segments %d is negative", o.MaxWaitSegments))
	}
	if err := o.HTTP1.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("http1: %w", err))
	}
	if err := o.HTTP2.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("http2: %w", err))
	}
	if err := o.DNS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("dns: %w", err))
	}
	if err := o.Postgres.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("postgres: %w", err))
	}
	return errors.Join(errs...)
}

// Stats counts detection decisions across connections.
type Stats struct {
	// Detected counts connections per protocol, indexed by Protocol.
	Detected [protocols.Postgres + 1]atomic.Uint64
	// Ignored counts connections whose first bytes matched nothing, or
	// that never showed captured bytes within the wait bounds (GaveUp).
	Ignored atomic.Uint64
	GaveUp  atomic.Uint64
	// IgnoredBytes counts stream bytes of ignored connections, and the
	// bytes of IgnoredDatagrams.
	IgnoredBytes atomic.Uint64
	// IgnoredDatagrams counts UDP datagrams that matched no protocol on
	// a socket not yet detected; the socket's next ones are still tried.
	IgnoredDatagrams atomic.Uint64
}

// RegisterMetrics exposes the counters as observable counters on m.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	detected := make([]selfmetrics.Series, len(registry))
	for i, e := range registry {
		detected[i] = selfmetrics.By("protocol", e.proto.String(), &s.Detected[e.proto])
	}
	return selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_detect_connections", Description: "Connections handed to a protocol parser, by protocol.", Series: detected},
		selfmetrics.Counter{Name: "weft_detect_ignored_connections", Description: "Connections ignored because their first bytes matched no protocol or never were captured.", Value: &s.Ignored},
		selfmetrics.Counter{Name: "weft_detect_gave_up_connections", Description: "Connections ignored because no captured bytes came within the wait bounds.", Value: &s.GaveUp},
		selfmetrics.Counter{Name: "weft_detect_ignored_bytes", Description: "Stream bytes of ignored connections, and bytes of ignored datagrams, dropped unparsed.", Value: &s.IgnoredBytes},
		selfmetrics.Counter{Name: "weft_detect_ignored_datagrams", Description: "UDP datagrams that matched no protocol, dropped unparsed; their socket's next datagrams are still tried.", Value: &s.IgnoredDatagrams},
	)
}

// New returns the factory of per-connection handlers that detect the
// protocol and then parse with it, sending exchanges to sink.
func New(sink protocols.Sink, opts Options) conn.HandlerFactory {
	if opts.MaxWaitBytes == 0 {
		opts.MaxWaitBytes = DefaultMaxWaitBytes
	}
	if opts.MaxWaitSegments <= 0 {
		opts.MaxWaitSegments = DefaultMaxWaitSegments
	}
	if opts.Stats == nil {
		opts.Stats = new(Stats)
	}
	if opts.HTTP1.Stats == nil {
		// One set of parser counters for the factory, not one per
		// connection.
		opts.HTTP1.Stats = new(http1.Stats)
	}
	if opts.HTTP2.Stats == nil {
		opts.HTTP2.Stats = new(http2.Stats)
	}
	if opts.DNS.Stats == nil {
		opts.DNS.Stats = new(dns.Stats)
	}
	if opts.Postgres.Stats == nil {
		opts.Postgres.Stats = new(postgres.Stats)
	}
	o := &opts
	return func(info *conn.Info) conn.Handler {
		return &handler{o: o, info: info, sink: sink}
	}
}

// flushBytes is how many ignored bytes a connection counts locally before
// adding them to the shared counter, to keep atomics off the per-segment
// path of busy ignored connections.
const flushBytes = 1 << 20

// handler decides a connection's protocol, then forwards to its parser.
type handler struct {
	o    *Options
	info *conn.Info
	sink protocols.Sink

	next    conn.Handler // the chosen parser
	ignored bool

	waitBytes uint64 // uncaptured bytes seen before any captured ones
	waitSegs  int
	unflushed uint64 // ignored bytes not yet in Stats
}

func (h *handler) Segment(s *conn.Segment) {
	switch {
	case h.next != nil:
		h.next.Segment(s)
	case h.ignored:
		h.drop(s.Len())
	case s.Data == nil:
		h.waitBytes += s.Skip
		h.waitSegs++
		if h.waitBytes > h.o.MaxWaitBytes || h.waitSegs > h.o.MaxWaitSegments {
			h.o.Stats.GaveUp.Add(1)
			h.ignore()
		}
	case len(s.Data) > 0:
		// A socket first seen through its data may lack Info.UDP.
		udp := h.info.UDP || s.Datagram
		for i := range registry {
			e := &registry[i]
			if m := e.matcher(udp); m != nil && m(s.Dir, s.Data) {
				h.o.Stats.Detected[e.proto].Add(1)
				h.next = e.parser(h.info, h.sink, h.o)
				h.next.Segment(s)
				return
			}
		}
		if udp {
			// Datagrams stand alone: one that matched nothing leaves the
			// next one a chance, always. A server's socket takes
			// datagrams from anyone, so giving up on it after some noise
			// would let any sender switch off its tracing; matching one
			// costs a look at its header.
			h.o.Stats.IgnoredDatagrams.Add(1)
			h.drop(s.Len())
			return
		}
		h.ignore()
		h.drop(s.Len())
	}
}

// ignore gives up on the connection; what it waited through counts as
// ignored too.
func (h *handler) ignore() {
	h.ignored = true
	h.o.Stats.Ignored.Add(1)
	h.drop(h.waitBytes)
}

func (h *handler) drop(n uint64) {
	h.unflushed += n
	if h.unflushed >= flushBytes {
		h.o.Stats.IgnoredBytes.Add(h.unflushed)
		h.unflushed = 0
	}
}

// Expire passes the periodic timer on to a parser that has timers (DNS
// queries time out).
func (h *handler) Expire(now int64) {
	if x, ok := h.next.(conn.Expirer); ok {
		x.Expire(now)
	}
}

func (h *handler) Close(ts int64) {
	if h.next != nil {
		h.next.Close(ts)
	}
	if h.unflushed > 0 {
		h.o.Stats.IgnoredBytes.Add(h.unflushed)
		h.unflushed = 0
	}
}
