package servicemap

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
)

// Kinds of node.
const (
	KindService  = "service"  // a traced process: it has spans of its own
	KindDatabase = "database" // called as a database
	KindExternal = "external" // only named by its callers, and "user"
)

// Protocols of an edge.
const (
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"
	ProtocolDNS  = "dns"
	// A database call's protocol is its db.system.name: "postgresql".
)

// Why a span was not mapped (weft_servicemap_spans_dropped{reason}).
const (
	reasonEdgeLimit = iota // MaxEdges edges already
	reasonNodeLimit        // MaxNodes nodes already
	numReasons
)

var reasonNames = [numReasons]string{"edge_limit", "node_limit"}

// Map is the live service map. Add is called from one goroutine; the rest
// from any.
type Map struct {
	cfg   Config
	width int64 // ns per slice
	start time.Time

	mu    sync.Mutex
	nodes map[string]*node
	edges map[edgeKey]*edge
	swept int64 // epoch of the last sweep
	// held is the last client span, waiting for the next span: a client
	// span matched with its server end on this host is emitted right
	// before that server span, its child, in the same tree.
	held    heldSpan
	hasHeld bool

	dropped            [numReasons]atomic.Uint64
	numNodes, numEdges atomic.Int64
}

type edgeKey struct{ client, server, protocol string }

type edge struct {
	connType string // the latest request's, Tempo's connection_type
	w        window
}

type node struct {
	edges    int // edges it is an end of
	service  bool
	database bool
}

type heldSpan struct {
	span     correlate.Span
	at       int64 // arrival, ns since start
	lone     correlate.Edge
	loneOK   bool
	protocol string
}

// New returns an empty map.
func New(cfg Config) *Map {
	cfg = cfg.withDefaults()
	return &Map{
		cfg:   cfg,
		width: max(int64(cfg.Window)/int64(cfg.Buckets), 1),
		start: cfg.Clock(),
		nodes: make(map[string]*node),
		edges: make(map[edgeKey]*edge),
	}
}

// now is the clock's reading in ns since the map was made (monotonic when
// the clock is time.Now).
func (m *Map) now() int64 { return max(int64(m.cfg.Clock().Sub(m.start)), 0) }

// Add counts span s, the correlator's output: a client span towards the
// server it called (its server span, when that is the next span added),
// a root server span from "user". Other spans only end a held client
// span's wait.
func (m *Map) Add(s correlate.Span) {
	at := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(at / m.width)
	if m.hasHeld {
		h := &m.held
		m.hasHeld = false
		if s.Kind == trace.SpanKindServer && s.ParentSpanID == h.span.SpanID && s.TraceID == h.span.TraceID {
			m.record(correlate.PairEdge(&h.span, &s), h.protocol, h.at, at, failed(&h.span) || failed(&s), duration(&h.span))
			m.held = heldSpan{}
			return
		}
		m.recordHeld(at)
	}
	if s.Kind == trace.SpanKindClient {
		m.held = heldSpan{span: s, at: at, protocol: protocol(&s)}
		m.held.lone, m.held.loneOK = correlate.LoneEdge(&s)
		m.hasHeld = true
		return
	}
	if e, ok := correlate.LoneEdge(&s); ok {
		m.record(e, protocol(&s), at, at, failed(&s), duration(&s))
	}
}

// recordHeld counts the held client span as one whose server end was not
// seen. Its attributes are not read here: the exporter may hold the span
// too, and this may run on another goroutine than Add.
func (m *Map) recordHeld(now int64) {
	h := &m.held
	if h.loneOK {
		m.record(h.lone, h.protocol, h.at, now, failed(&h.span), duration(&h.span))
	}
	m.held, m.hasHeld = heldSpan{}, false
}

// record counts one request on edge e, arrived at at (ns since start).
func (m *Map) record(e correlate.Edge, proto string, at, now int64, fail bool, d time.Duration) {
	k := edgeKey{e.Client, e.Server, proto}
	ed := m.edges[k]
	if ed == nil {
		if len(m.edges) >= m.cfg.MaxEdges {
			m.dropped[reasonEdgeLimit].Add(1)
			return
		}
		need := 0
		for _, id := range []string{e.Client, e.Server} {
			if m.nodes[id] == nil {
				need++
			}
		}
		if e.Client == e.Server && need == 2 {
			need = 1
		}
		if len(m.nodes)+need > m.cfg.MaxNodes {
			m.dropped[reasonNodeLimit].Add(1)
			return
		}
		ed = &edge{w: make(window, m.cfg.Buckets)}
		m.edges[k] = ed
		m.node(e.Client).edges++
		m.node(e.Server).edges++
		m.numEdges.Store(int64(len(m.edges)))
		m.numNodes.Store(int64(len(m.nodes)))
	}
	ed.connType = e.ConnectionType
	if e.Client != correlate.UserClient {
		m.nodes[e.Client].service = true
	}
	switch e.ConnectionType {
	case correlate.ConnectionTypeDatabase:
		m.nodes[e.Server].database = true
	case correlate.ConnectionTypeVirtualNode:
		if e.Client == correlate.UserClient {
			m.nodes[e.Server].service = true // a root server span is its own
		}
	default: // both ends seen
		m.nodes[e.Server].service = true
	}
	ed.w.add(at/m.width, now/m.width, fail, d)
}

func (m *Map) node(id string) *node {
	n := m.nodes[id]
	if n == nil {
		n = &node{}
		m.nodes[id] = n
	}
	return n
}

// sweep drops the edges with no request in the window ending at epoch
// cur, and the nodes left without edges; once per slice.
func (m *Map) sweep(cur int64) {
	if cur == m.swept {
		return
	}
	m.swept = cur
	for k, e := range m.edges {
		if s := e.w.sum(cur); s.requests > 0 {
			continue
		}
		delete(m.edges, k)
		for _, id := range []string{k.client, k.server} {
			if n := m.nodes[id]; n != nil {
				if n.edges--; n.edges <= 0 {
					delete(m.nodes, id)
				}
			}
		}
	}
	m.numEdges.Store(int64(len(m.edges)))
	m.numNodes.Store(int64(len(m.nodes)))
}

// Snapshot is the map over its window, as /map.json serves it.
type Snapshot struct {
	WindowSeconds float64     `json:"window_seconds"`
	Nodes         []NodeStats `json:"nodes"`
	Edges         []EdgeStats `json:"edges"`
}

// NodeStats is one node and the requests it served in the window.
type NodeStats struct {
	ID                string  `json:"id"`
	Kind              string  `json:"kind"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorRate         float64 `json:"error_rate"`
}

// EdgeStats is one edge's requests in the window. ErrorRate is a fraction
// (0..1); latencies are the client's view when the client span was seen,
// else the server's.
type EdgeStats struct {
	Source            string  `json:"source"`
	Target            string  `json:"target"`
	Protocol          string  `json:"protocol"`
	ConnectionType    string  `json:"connection_type"`
	Requests          uint64  `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorRate         float64 `json:"error_rate"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
}

// Snapshot returns the map over the window ending now, nodes sorted by id
// and edges by source, target and protocol.
func (m *Map) Snapshot() Snapshot {
	now := m.now()
	cur := now / m.width
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hasHeld {
		m.recordHeld(now)
	}
	m.sweep(cur)
	// Rates are per second of the window so far: it starts at the map's
	// start, and its oldest slice is whole.
	from := max((cur-int64(m.cfg.Buckets)+1)*m.width, 0)
	secs := max(float64(now-from)/1e9, 1)

	snap := Snapshot{WindowSeconds: m.cfg.Window.Seconds(), Nodes: []NodeStats{}, Edges: []EdgeStats{}}
	served := make(map[string]*[2]uint64, len(m.nodes)) // requests, errors
	for k, e := range m.edges {
		s := e.w.sum(cur)
		if s.requests == 0 {
			continue
		}
		snap.Edges = append(snap.Edges, EdgeStats{
			Source: k.client, Target: k.server, Protocol: k.protocol, ConnectionType: e.connType,
			Requests:          uint64(s.requests),
			RequestsPerSecond: round(float64(s.requests) / secs),
			ErrorRate:         round(float64(s.errors) / float64(s.requests)),
			P50Ms:             round(ms(s.quantile(0.5))),
			P99Ms:             round(ms(s.quantile(0.99))),
		})
		c := served[k.server]
		if c == nil {
			c = new([2]uint64)
			served[k.server] = c
		}
		c[0] += uint64(s.requests)
		c[1] += uint64(s.errors)
	}
	for id, n := range m.nodes {
		ns := NodeStats{ID: id, Kind: n.kind(id)}
		if c := served[id]; c != nil && c[0] > 0 {
			ns.RequestsPerSecond = round(float64(c[0]) / secs)
			ns.ErrorRate = round(float64(c[1]) / float64(c[0]))
		}
		snap.Nodes = append(snap.Nodes, ns)
	}
	slices.SortFunc(snap.Nodes, func(a, b NodeStats) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(snap.Edges, func(a, b EdgeStats) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target), cmp.Compare(a.Protocol, b.Protocol))
	})
	return snap
}

func (n *node) kind(id string) string {
	switch {
	case n.database:
		return KindDatabase
	case n.service && id != correlate.UserClient:
		return KindService
	}
	return KindExternal
}

// protocol names the protocol of span s by the attributes its conversion
// set: rpc.system.name for gRPC, db.system.name for databases, a DNS
// question, else HTTP.
func protocol(s *correlate.Span) string {
	p := ProtocolHTTP
	for _, kv := range s.Attributes {
		switch kv.Key {
		case semconv.RPCSystemNameKey:
			return kv.Value.AsString()
		case semconv.DBSystemNameKey:
			return kv.Value.AsString()
		case semconv.DNSQuestionNameKey:
			p = ProtocolDNS
		}
	}
	return p
}

func failed(s *correlate.Span) bool { return s.StatusCode == codes.Error }

func duration(s *correlate.Span) time.Duration { return max(s.End.Sub(s.Start), 0) }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// round keeps three decimals: the JSON stays readable.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }
