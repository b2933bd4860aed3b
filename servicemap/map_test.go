package servicemap

import (
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/procmeta"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable clock for Config.Clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestMap(cfg Config) (*Map, *clock) {
	c := &clock{t: t0}
	cfg.Clock = c.now
	return New(cfg), c
}

var nextID byte

func ids() (trace.TraceID, trace.SpanID) {
	nextID++
	return trace.TraceID{1, nextID}, trace.SpanID{2, nextID}
}

// span is a span of service svc taking d; fail makes its status Error.
func span(kind trace.SpanKind, svc string, d time.Duration, fail bool, attrs ...attribute.KeyValue) correlate.Span {
	tid, sid := ids()
	s := correlate.Span{
		TraceID: tid, SpanID: sid, Kind: kind, Name: "GET /",
		Start: t0, End: t0.Add(d), Attributes: attrs,
		Process: &procmeta.Process{ServiceName: svc},
	}
	if fail {
		s.StatusCode = codes.Error
	}
	return s
}

// pair is a client span and the server span matched with it, in the
// order the correlator emits them.
func pair(client, server string, d time.Duration, fail bool, attrs ...attribute.KeyValue) (correlate.Span, correlate.Span) {
	c := span(trace.SpanKindClient, client, d, fail, append(attrs, semconv.ServicePeerName(server))...)
	s := span(trace.SpanKindServer, server, d-time.Millisecond, fail, attrs...)
	s.TraceID, s.ParentSpanID = c.TraceID, c.SpanID
	return c, s
}

func addPair(m *Map, client, server string, d time.Duration, fail bool, attrs ...attribute.KeyValue) {
	c, s := pair(client, server, d, fail, attrs...)
	m.Add(c)
	m.Add(s)
}

func findEdge(t *testing.T, snap Snapshot, source, target string) EdgeStats {
	t.Helper()
	for _, e := range snap.Edges {
		if e.Source == source && e.Target == target {
			return e
		}
	}
	t.Fatalf("no edge %s -> %s in %+v", source, target, snap.Edges)
	return EdgeStats{}
}

func nodeKinds(snap Snapshot) map[string]string {
	k := map[string]string{}
	for _, n := range snap.Nodes {
		k[n.ID] = n.Kind
	}
	return k
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

// TestEdges: edges are decided as the service graph decides them, and
// nodes take their kind from how they were seen.
func TestEdges(t *testing.T) {
	m, _ := newTestMap(Config{})
	httpAttrs := []attribute.KeyValue{semconv.HTTPRequestMethodGet}

	// curl -> gosrv (root server span of gosrv seen: both ends).
	root := span(trace.SpanKindServer, "gosrv", 20*time.Millisecond, false, httpAttrs...)
	m.Add(root)                                                // user -> gosrv
	addPair(m, "gosrv", "pyrelay", 10*time.Millisecond, false) // pair, http
	m.Add(span(trace.SpanKindClient, "gosrv", 5*time.Millisecond, false,
		semconv.DBSystemNamePostgreSQL, semconv.DBNamespace("orders"))) // lone database call
	m.Add(span(trace.SpanKindClient, "pyrelay", 5*time.Millisecond, false,
		semconv.RPCSystemNameGRPC, semconv.ServerAddress("api.example.com"))) // lone gRPC, external peer
	m.Add(span(trace.SpanKindClient, "gosrv", time.Millisecond, false,
		semconv.DNSQuestionName("example.com"), semconv.ServerAddress("127.0.0.53"))) // DNS: on the map, not in the graph
	m.Add(span(trace.SpanKindClient, "gosrv", time.Millisecond, false)) // names no peer: no edge
	child := span(trace.SpanKindServer, "pyrelay", time.Millisecond, false)
	child.ParentSpanID = trace.SpanID{9} // not a root, no client seen: no edge
	m.Add(child)

	snap := m.Snapshot()
	type want struct{ proto, connType string }
	wants := map[[2]string]want{
		{"user", "gosrv"}:              {"http", "virtual_node"},
		{"gosrv", "pyrelay"}:           {"http", ""},
		{"gosrv", "orders"}:            {"postgresql", "database"},
		{"pyrelay", "api.example.com"}: {"grpc", "virtual_node"},
		{"gosrv", "127.0.0.53"}:        {"dns", "virtual_node"},
	}
	if len(snap.Edges) != len(wants) {
		t.Errorf("edges %+v, want %d", snap.Edges, len(wants))
	}
	for k, w := range wants {
		e := findEdge(t, snap, k[0], k[1])
		if e.Protocol != w.proto || e.ConnectionType != w.connType || e.Requests != 1 {
			t.Errorf("%s -> %s: %+v, want protocol %q, connection_type %q, 1 request", k[0], k[1], e, w.proto, w.connType)
		}
	}
	wantKinds := map[string]string{
		"user": KindExternal, "gosrv": KindService, "pyrelay": KindService,
		"orders": KindDatabase, "api.example.com": KindExternal, "127.0.0.53": KindExternal,
	}
	if got := nodeKinds(snap); len(got) != len(wantKinds) {
		t.Errorf("nodes %v, want %v", got, wantKinds)
	} else {
		for id, k := range wantKinds {
			if got[id] != k {
				t.Errorf("node %s kind %q, want %q", id, got[id], k)
			}
		}
	}
	// The pair's latency is the client's view.
	if e := findEdge(t, snap, "gosrv", "pyrelay"); e.P50Ms != 10 || e.P99Ms != 10 {
		t.Errorf("gosrv -> pyrelay latency p50 %v p99 %v, want 10 ms (the client span's)", e.P50Ms, e.P99Ms)
	}
}

// TestPairedDatabase: a database call seen from both ends goes to the
// server process's service, as in the service graph, and that node is a
// database.
func TestPairedDatabase(t *testing.T) {
	m, _ := newTestMap(Config{})
	addPair(m, "app", "postgres", 3*time.Millisecond, false, semconv.DBSystemNamePostgreSQL, semconv.DBNamespace("orders"))
	snap := m.Snapshot()
	if e := findEdge(t, snap, "app", "postgres"); e.ConnectionType != "database" || e.Protocol != "postgresql" {
		t.Errorf("edge %+v, want a postgresql database edge", e)
	}
	if k := nodeKinds(snap); k["postgres"] != KindDatabase || k["app"] != KindService || len(k) != 2 {
		t.Errorf("nodes %v", k)
	}
}

// TestHeldClientFlushed: a client span last in is counted when the map is
// read, as a lone span.
func TestHeldClientFlushed(t *testing.T) {
	m, _ := newTestMap(Config{})
	c, _ := pair("a", "b", time.Millisecond, false)
	m.Add(c)
	snap := m.Snapshot()
	if e := findEdge(t, snap, "a", "b"); e.ConnectionType != "virtual_node" || e.Requests != 1 {
		t.Errorf("edge %+v, want one virtual_node request", e)
	}
	if snap2 := m.Snapshot(); findEdge(t, snap2, "a", "b").Requests != 1 {
		t.Errorf("held span counted twice")
	}
}

// TestWindowRates: rates are requests per second of the window so far,
// slices leave the window as it slides, and idle edges leave the map.
func TestWindowRates(t *testing.T) {
	m, clk := newTestMap(Config{Window: 60 * time.Second, Buckets: 10})
	// 10 s in: 50 requests, 5 failed.
	clk.advance(10 * time.Second)
	for i := range 50 {
		addPair(m, "a", "b", time.Millisecond, i%10 == 0)
	}
	e := findEdge(t, m.Snapshot(), "a", "b")
	if e.Requests != 50 || !near(e.RequestsPerSecond, 5) || !near(e.ErrorRate, 0.1) {
		t.Errorf("after 10 s: %+v, want 50 requests, 5 req/s, error rate 0.1", e)
	}
	// 60 s in: 30 more, none failed; the window is [6 s, 60 s]: the
	// current slice and nine whole ones before.
	clk.advance(50 * time.Second)
	for range 30 {
		addPair(m, "a", "b", time.Millisecond, false)
	}
	e = findEdge(t, m.Snapshot(), "a", "b")
	if e.Requests != 80 || !near(e.RequestsPerSecond, 80.0/54) || !near(e.ErrorRate, 5.0/80) {
		t.Errorf("after 60 s: %+v, want 80 requests, %.3f req/s, error rate %.3f", e, 80.0/54, 5.0/80)
	}
	// 72 s in: the window is [18 s, 72 s]; the slice of 6-12 s (the
	// first 50) has left it.
	clk.advance(12 * time.Second)
	snap := m.Snapshot()
	e = findEdge(t, snap, "a", "b")
	if e.Requests != 30 || !near(e.RequestsPerSecond, 30.0/54) || e.ErrorRate != 0 {
		t.Errorf("after 72 s: %+v, want 30 requests, %.3f req/s, no errors", e, 30.0/54)
	}
	if n := nodeKinds(snap); n["a"] != KindService || n["b"] != KindService {
		t.Errorf("nodes %v", n)
	}
	// 125 s in: nothing for a whole window; the edge and its nodes are gone.
	clk.advance(53 * time.Second)
	snap = m.Snapshot()
	if len(snap.Edges) != 0 || len(snap.Nodes) != 0 || m.numEdges.Load() != 0 || m.numNodes.Load() != 0 {
		t.Errorf("after an idle window: %+v (gauges %d edges %d nodes), want empty", snap, m.numEdges.Load(), m.numNodes.Load())
	}
	if snap.WindowSeconds != 60 {
		t.Errorf("window_seconds %v, want 60", snap.WindowSeconds)
	}
}

// TestNodeRates: a node's rate and error rate are those of the requests
// it served, over all its incoming edges.
func TestNodeRates(t *testing.T) {
	m, clk := newTestMap(Config{})
	clk.advance(10 * time.Second)
	for i := range 20 {
		addPair(m, "a", "c", time.Millisecond, i < 2)
		addPair(m, "b", "c", time.Millisecond, false)
	}
	for _, n := range m.Snapshot().Nodes {
		switch n.ID {
		case "c":
			if !near(n.RequestsPerSecond, 4) || !near(n.ErrorRate, 0.05) {
				t.Errorf("c: %+v, want 4 req/s, error rate 0.05", n)
			}
		case "a", "b":
			if n.RequestsPerSecond != 0 {
				t.Errorf("%s serves nothing: %+v", n.ID, n)
			}
		}
	}
}

// TestQuantiles: p50 and p99 from the fixed buckets, interpolated and
// clamped to what was seen.
func TestQuantiles(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		lat      []time.Duration
		p50, p99 float64 // ms
	}{
		{"all the same", rep(100, 3*ms), 3, 3},
		// 90 at 1 ms, 10 at 100 ms: the median is in (0.5 ms, 1 ms],
		// clamped below by the fastest (1 ms); p99 in (50, 100].
		{"bimodal", append(rep(90, ms), rep(10, 100*ms)...), 1, 95},
		// Uniform 1..100 ms: the 50th request is the last of (20, 50],
		// the 99th near the top of (50, 100].
		{"uniform", uniform(100, ms), 50, 99},
		{"beyond the last bucket", rep(10, 90*time.Second), 90_000, 90_000},
		{"one", rep(1, 7*ms), 7, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s slice
			for _, d := range tc.lat {
				s.add(false, d)
			}
			if got := ms2(s.quantile(0.5)); !near(got, tc.p50) {
				t.Errorf("p50 %v ms, want %v", got, tc.p50)
			}
			if got := ms2(s.quantile(0.99)); !near(got, tc.p99) {
				t.Errorf("p99 %v ms, want %v", got, tc.p99)
			}
		})
	}
	var empty slice
	if empty.quantile(0.99) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

// TestQuantilesMerge: the window's quantile is that of its slices' merged
// histograms.
func TestQuantilesMerge(t *testing.T) {
	w := make(window, 4)
	for i := range 100 {
		w.add(int64(i%4), 3, false, time.Duration(i+1)*time.Millisecond)
	}
	s := w.sum(3)
	if s.requests != 100 || s.min != time.Millisecond || s.max != 100*time.Millisecond {
		t.Fatalf("sum %+v", s)
	}
	if got := ms2(s.quantile(0.99)); !near(got, 99) {
		t.Errorf("p99 %v ms, want 99", got)
	}
	// An epoch the window has left is not counted.
	w.add(0, 4, false, time.Second) // epoch 0 is outside (0, 4]
	if s := w.sum(4); s.requests != 75 {
		t.Errorf("after sliding: %d requests, want 75", s.requests)
	}
}

func rep(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func uniform(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func ms2(d time.Duration) float64 { return float64(d) / 1e6 }

// TestBounds: beyond MaxEdges and MaxNodes spans are dropped and counted;
// known edges keep counting.
func TestBounds(t *testing.T) {
	m, _ := newTestMap(Config{MaxEdges: 3, MaxNodes: 4})
	addPair(m, "a", "b", time.Millisecond, false) // nodes a b
	addPair(m, "a", "c", time.Millisecond, false) // nodes a b c
	addPair(m, "b", "c", time.Millisecond, false) // 3 edges
	addPair(m, "c", "a", time.Millisecond, false) // 4th edge: dropped
	addPair(m, "a", "b", time.Millisecond, false) // known: counted
	if got := m.dropped[reasonEdgeLimit].Load(); got != 1 {
		t.Errorf("edge_limit drops %d, want 1", got)
	}
	snap := m.Snapshot()
	if len(snap.Edges) != 3 || findEdge(t, snap, "a", "b").Requests != 2 {
		t.Errorf("edges %+v, want 3 with a -> b twice", snap.Edges)
	}

	m, _ = newTestMap(Config{MaxEdges: 10, MaxNodes: 3})
	addPair(m, "a", "b", time.Millisecond, false)
	addPair(m, "c", "d", time.Millisecond, false) // two new nodes: 4 > 3
	addPair(m, "b", "c", time.Millisecond, false) // one new node: fits
	addPair(m, "c", "c", time.Millisecond, false) // a loop on a known node
	addPair(m, "e", "e", time.Millisecond, false) // a loop needs one node: 4 > 3
	if got := m.dropped[reasonNodeLimit].Load(); got != 2 {
		t.Errorf("node_limit drops %d, want 2", got)
	}
	if snap := m.Snapshot(); len(snap.Nodes) != 3 || len(snap.Edges) != 3 {
		t.Errorf("map %+v, want 3 nodes and 3 edges", snap)
	}
	if m.numNodes.Load() != 3 || m.numEdges.Load() != 3 {
		t.Errorf("gauges: %d nodes %d edges", m.numNodes.Load(), m.numEdges.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	for _, c := range []Config{{Window: -1}, {Buckets: -1}, {MaxNodes: -1}, {MaxEdges: -1}, {Window: time.Millisecond, Buckets: 10}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestConcurrentReads: spans come from one goroutine while others read
// (run with -race).
func TestConcurrentReads(t *testing.T) {
	m := New(Config{})
	done := make(chan struct{})
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					return
				default:
					_ = m.Snapshot()
				}
			}
		}()
	}
	for i := range 2000 {
		addPair(m, "a", string(rune('b'+i%5)), time.Millisecond, i%7 == 0)
	}
	close(done)
	var n uint64
	for _, e := range m.Snapshot().Edges {
		n += e.Requests
	}
	if n != 2000 {
		t.Errorf("%d requests on the map, want 2000", n)
	}
}

// BenchmarkAdd: a client span and its server span onto a known edge.
func BenchmarkAdd(b *testing.B) {
	m := New(Config{})
	c, s := pair("frontend", "orders", 3*time.Millisecond, false, semconv.HTTPRequestMethodGet)
	b.ReportAllocs()
	for b.Loop() {
		m.Add(c)
		m.Add(s)
	}
}
