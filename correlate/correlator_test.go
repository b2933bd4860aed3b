package correlate

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/procmeta"
	"github.com/weftrace/weft/protocols"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// epoch is where the test clock puts monotonic zero.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testClock(mono int64) time.Time { return epoch.Add(time.Duration(mono)) }

// fakeProcs is a ProcessLookup that records what it was asked.
type fakeProcs struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeProcs) Lookup(pid uint32, comm string) *procmeta.Process {
	f.mu.Lock()
	f.calls = append(f.calls, comm)
	f.mu.Unlock()
	return &procmeta.Process{PID: pid, ServiceName: comm}
}

// collector gathers emitted spans.
type collector struct {
	mu    sync.Mutex
	spans []Span
}

func (c *collector) add(s Span) { c.mu.Lock(); c.spans = append(c.spans, s); c.mu.Unlock() }

func newTest(t *testing.T, cfg Config) (*Correlator, *collector) {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = testClock
	}
	col := &collector{}
	return New(cfg, &fakeProcs{}, col.add), col
}

// addOne converts ex and returns its only span. The join stage is flushed,
// so each call stands alone.
func addOne(t *testing.T, c *Correlator, col *collector, ex *protocols.Exchange) Span {
	t.Helper()
	before := len(col.spans)
	c.Add(ex)
	c.FlushAll()
	if len(col.spans) != before+1 {
		t.Fatalf("Add emitted %d spans, want 1", len(col.spans)-before)
	}
	return col.spans[before]
}

var (
	serverLocal  = netip.MustParseAddrPort("10.0.0.5:8080")
	serverRemote = netip.MustParseAddrPort("10.0.0.9:51234")
)

// exchange is an HTTP/1.1 exchange seen from role, on a connection from
// 10.0.0.9:51234 to 10.0.0.5:8080.
func exchange(role conn.Role, h protocols.HTTP) *protocols.Exchange {
	tuple := conn.Tuple{Local: serverLocal, Remote: serverRemote}
	if role == conn.RoleClient {
		tuple = conn.Tuple{Local: serverRemote, Remote: serverLocal}
	}
	if h.Version == "" {
		h.Version = "1.1"
	}
	return &protocols.Exchange{
		Conn: &conn.Info{
			ID:    conn.ID{PID: 4321, FD: 7, Gen: 1},
			Tuple: tuple,
			Role:  role,
			Comm:  "app",
		},
		Role:     role,
		Protocol: protocols.HTTP1,
		Start:    int64(1 * time.Millisecond),
		End:      int64(3 * time.Millisecond),
		HTTP:     &h,
	}
}

func attrStrings(kvs []attribute.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key) + "=" + kv.Value.String()
	}
	return out
}

func TestFullServerExchange(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := exchange(conn.RoleServer, protocols.HTTP{
		Method:      "GET",
		Path:        "/items/42",
		Status:      200,
		Host:        "shop.example:8080",
		UserAgent:   "curl/8.5.0",
		TraceParent: validTP,
		TraceState:  "congo=t61rcWkgMzE",
	})
	s := addOne(t, c, col, ex)

	if s.Name != "GET /items/{id}" || s.Kind != trace.SpanKindServer {
		t.Errorf("name %q kind %v", s.Name, s.Kind)
	}
	if s.TraceID.String() != validTraceID || s.ParentSpanID.String() != validParentID ||
		s.TraceState != "congo=t61rcWkgMzE" || !s.SpanID.IsValid() {
		t.Errorf("context: trace %s parent %s state %q span %s", s.TraceID, s.ParentSpanID, s.TraceState, s.SpanID)
	}
	if !s.Start.Equal(epoch.Add(time.Millisecond)) || !s.End.Equal(epoch.Add(3*time.Millisecond)) {
		t.Errorf("start %v end %v", s.Start, s.End)
	}
	if s.StatusCode != codes.Unset || s.StatusMessage != "" {
		t.Errorf("status %v %q", s.StatusCode, s.StatusMessage)
	}
	if s.Process == nil || s.Process.PID != 4321 || s.Process.ServiceName != "app" {
		t.Errorf("process = %+v", s.Process)
	}
	want := []string{
		"http.request.method=GET",
		"url.path=/items/42",
		"url.scheme=http",
		"http.response.status_code=200",
		"server.address=shop.example",
		"server.port=8080",
		"client.address=10.0.0.9",
		"network.peer.address=10.0.0.9",
		"network.peer.port=51234",
		"network.protocol.version=1.1",
		"user_agent.original=curl/8.5.0",
	}
	if got := attrStrings(s.Attributes); !slices.Equal(got, want) {
		t.Errorf("attributes\n got %q\nwant %q", got, want)
	}
	if st := c.Stats(); st.ServerSpans != 1 || st.JoinedTraces != 1 || st.ClientSpans != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAttributesPerKind(t *testing.T) {
	tests := []struct {
		name string
		ex   *protocols.Exchange
		want []string
	}{
		{
			name: "client with Host",
			ex:   exchange(conn.RoleClient, protocols.HTTP{Method: "POST", Path: "/orders", Status: 201, Host: "orders.internal"}),
			want: []string{
				"http.request.method=POST", "url.path=/orders", "url.scheme=http",
				"http.response.status_code=201",
				"server.address=orders.internal", "server.port=80",
				"network.peer.address=10.0.0.5", "network.peer.port=8080",
				"network.protocol.version=1.1",
			},
		},
		{
			name: "client without Host",
			ex:   exchange(conn.RoleClient, protocols.HTTP{Method: "GET", Path: "/", Status: 204, Version: "1.0"}),
			want: []string{
				"http.request.method=GET", "url.path=/", "url.scheme=http",
				"http.response.status_code=204",
				"server.address=10.0.0.5", "server.port=8080",
				"network.peer.address=10.0.0.5", "network.peer.port=8080",
				"network.protocol.version=1.0",
			},
		},
		{
			name: "server without Host",
			ex:   exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/health", Status: 200}),
			want: []string{
				"http.request.method=GET", "url.path=/health", "url.scheme=http",
				"http.response.status_code=200",
				"server.address=10.0.0.5", "server.port=8080",
				"client.address=10.0.0.9",
				"network.peer.address=10.0.0.9", "network.peer.port=51234",
				"network.protocol.version=1.1",
			},
		},
		{
			name: "server with malformed Host",
			ex:   exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200, Host: "evil host:99999"}),
			want: []string{
				"http.request.method=GET", "url.path=/", "url.scheme=http",
				"http.response.status_code=200",
				"server.address=10.0.0.5", "server.port=8080",
				"client.address=10.0.0.9",
				"network.peer.address=10.0.0.9", "network.peer.port=51234",
				"network.protocol.version=1.1",
			},
		},
		{
			name: "unknown role",
			ex:   exchange(conn.RoleUnknown, protocols.HTTP{Method: "GET", Path: "/x", Status: 200, Host: "[::1]:9000"}),
			want: []string{
				"http.request.method=GET", "url.path=/x", "url.scheme=http",
				"http.response.status_code=200",
				"server.address=::1", "server.port=9000",
				"network.peer.address=10.0.0.9", "network.peer.port=51234",
				"network.protocol.version=1.1",
			},
		},
		{
			name: "unknown method, no response",
			ex:   exchange(conn.RoleClient, protocols.HTTP{Method: "PROPFIND", Path: "/dav/1", Host: "dav:81"}),
			want: []string{
				"http.request.method=_OTHER", "http.request.method_original=PROPFIND",
				"url.path=/dav/1", "url.scheme=http",
				"server.address=dav", "server.port=81",
				"network.peer.address=10.0.0.5", "network.peer.port=8080",
				"network.protocol.version=1.1",
				"error.type=no_response",
			},
		},
		{
			name: "CONNECT has no path",
			ex:   exchange(conn.RoleClient, protocols.HTTP{Method: "CONNECT", Host: "example.com:443", Status: 200}),
			want: []string{
				"http.request.method=CONNECT", "url.scheme=http",
				"http.response.status_code=200",
				"server.address=example.com", "server.port=443",
				"network.peer.address=10.0.0.5", "network.peer.port=8080",
				"network.protocol.version=1.1",
			},
		},
	}
	c, col := newTest(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := addOne(t, c, col, tt.ex)
			if got := attrStrings(s.Attributes); !slices.Equal(got, tt.want) {
				t.Errorf("attributes\n got %q\nwant %q", got, tt.want)
			}
			if len(s.Attributes) > maxHTTPAttrs {
				t.Errorf("%d attributes, over maxHTTPAttrs", len(s.Attributes))
			}
		})
	}
}

func TestMaximalAttributesFitPreallocation(t *testing.T) {
	c, col := newTest(t, Config{})
	// Every optional attribute at once: unknown method, status, Host,
	// client.address, version, user agent, error.type, body sizes.
	s := addOne(t, c, col, exchange(conn.RoleServer, protocols.HTTP{
		Method: "BREW", Path: "/pot", Status: 503, Host: "h", UserAgent: "ua",
		RequestBodySize: 10, ResponseBodySize: 1 << 30,
	}))
	if len(s.Attributes) != maxHTTPAttrs || cap(s.Attributes) != maxHTTPAttrs {
		t.Errorf("len %d cap %d, want both %d: %q", len(s.Attributes), cap(s.Attributes), maxHTTPAttrs, attrStrings(s.Attributes))
	}
}

func TestIPv4MappedAddressesUnmapped(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	ex.Conn.Tuple = conn.Tuple{
		Local:  netip.MustParseAddrPort("[::ffff:10.0.0.5]:8080"),
		Remote: netip.MustParseAddrPort("[::ffff:10.0.0.9]:5000"),
	}
	got := attrStrings(addOne(t, c, col, ex).Attributes)
	for _, want := range []string{"server.address=10.0.0.5", "client.address=10.0.0.9", "network.peer.address=10.0.0.9"} {
		if !slices.Contains(got, want) {
			t.Errorf("attributes %q lack %s", got, want)
		}
	}
}

func TestNaming(t *testing.T) {
	tests := []struct {
		method, path, want string
		cfg                Config
	}{
		{method: "GET", path: "/items/42", want: "GET /items/{id}"},
		{method: "QUERY", path: "/search", want: "QUERY /search"},
		{method: "get", path: "/items", want: "HTTP /items"}, // methods are case-sensitive
		{method: "PURGE", path: "/cache/abc", want: "HTTP /cache/abc"},
		{method: "", path: "/x", want: "HTTP /x"},
		{method: "OPTIONS", path: "*", want: "OPTIONS"},
		{method: "GET", path: "", want: "GET"},
		{method: "GET", path: "http://proxy.example/a/7?q=1", want: "GET /a/{id}"},
		{method: "PURGE", path: "/cache", want: "PURGE /cache", cfg: Config{KnownHTTPMethods: []string{"GET", "PURGE"}}},
		{method: "POST", path: "/cache", want: "HTTP /cache", cfg: Config{KnownHTTPMethods: []string{"GET", "PURGE"}}},
	}
	for _, tt := range tests {
		c, col := newTest(t, tt.cfg)
		s := addOne(t, c, col, exchange(conn.RoleServer, protocols.HTTP{Method: tt.method, Path: tt.path, Status: 200}))
		if s.Name != tt.want {
			t.Errorf("%s %s: name %q, want %q", tt.method, tt.path, s.Name, tt.want)
		}
		wantMethod := tt.method
		if strings.HasPrefix(tt.want, "HTTP") {
			wantMethod = "_OTHER"
		}
		if got := attrStrings(s.Attributes)[0]; got != "http.request.method="+wantMethod {
			t.Errorf("%s %s: first attribute %s, want method %s", tt.method, tt.path, got, wantMethod)
		}
	}
}

func TestStatusRules(t *testing.T) {
	tests := []struct {
		kind    conn.Role
		status  int
		code    codes.Code
		errType string
	}{
		{conn.RoleServer, 200, codes.Unset, ""},
		{conn.RoleServer, 101, codes.Unset, ""},
		{conn.RoleServer, 304, codes.Unset, ""},
		{conn.RoleServer, 404, codes.Unset, ""},
		{conn.RoleServer, 499, codes.Unset, ""},
		{conn.RoleServer, 500, codes.Error, "500"},
		{conn.RoleServer, 599, codes.Error, "599"},
		{conn.RoleServer, 0, codes.Error, ErrorTypeNoResponse},
		{conn.RoleServer, 600, codes.Error, "600"},
		{conn.RoleServer, 99, codes.Error, "99"},
		{conn.RoleClient, 200, codes.Unset, ""},
		{conn.RoleClient, 399, codes.Unset, ""},
		{conn.RoleClient, 400, codes.Error, "400"},
		{conn.RoleClient, 404, codes.Error, "404"},
		{conn.RoleClient, 503, codes.Error, "503"},
		{conn.RoleClient, 0, codes.Error, ErrorTypeNoResponse},
		{conn.RoleUnknown, 404, codes.Unset, ""},
		{conn.RoleUnknown, 502, codes.Error, "502"},
	}
	c, col := newTest(t, Config{})
	for _, tt := range tests {
		s := addOne(t, c, col, exchange(tt.kind, protocols.HTTP{Method: "GET", Path: "/", Status: tt.status}))
		errType := ""
		for _, kv := range s.Attributes {
			if kv.Key == "error.type" {
				errType = kv.Value.AsString()
			}
		}
		if s.StatusCode != tt.code || errType != tt.errType || s.StatusMessage != "" {
			t.Errorf("%v %d: status %v %q, error.type %q; want %v, error.type %q",
				tt.kind, tt.status, s.StatusCode, s.StatusMessage, errType, tt.code, tt.errType)
		}
	}
}

func TestTraceContext(t *testing.T) {
	c, col := newTest(t, Config{})
	base := protocols.HTTP{Method: "GET", Path: "/", Status: 200, TraceParent: validTP, TraceState: "a=b"}

	server := addOne(t, c, col, exchange(conn.RoleServer, base))
	if server.TraceID.String() != validTraceID || server.ParentSpanID.String() != validParentID || server.TraceState != "a=b" {
		t.Errorf("server did not join: %s %s %q", server.TraceID, server.ParentSpanID, server.TraceState)
	}
	if server.SpanID.String() == validParentID {
		t.Errorf("server reused the parent's span id")
	}

	// A client span is the caller's own; it starts its own trace for now.
	client := addOne(t, c, col, exchange(conn.RoleClient, base))
	if client.TraceID.String() == validTraceID || client.ParentSpanID.IsValid() || client.TraceState != "" {
		t.Errorf("client joined: %s %s %q", client.TraceID, client.ParentSpanID, client.TraceState)
	}

	bad := base
	bad.TraceParent = "00-" + validTraceID + "-" + validParentID // no flags
	root := addOne(t, c, col, exchange(conn.RoleServer, bad))
	if !root.TraceID.IsValid() || root.TraceID.String() == validTraceID || root.ParentSpanID.IsValid() || root.TraceState != "" {
		t.Errorf("invalid traceparent used: %s %s %q", root.TraceID, root.ParentSpanID, root.TraceState)
	}
	if st := c.Stats(); st.JoinedTraces != 1 || st.InvalidTraceParents != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestIDsDerivedAndValid(t *testing.T) {
	c, col := newTest(t, Config{})
	traces := map[trace.TraceID]bool{}
	spans := map[trace.SpanID]bool{}
	const n = 1000
	for i := range n {
		ex := exchange(conn.RoleClient, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
		ex.RequestSeq = uint32(i) * 100
		ex.Start, ex.End = int64(i)*1000, int64(i)*1000+500
		s := addOne(t, c, col, ex)
		if !s.TraceID.IsValid() || !s.SpanID.IsValid() || s.ParentSpanID.IsValid() {
			t.Fatalf("ids %s %s %s", s.TraceID, s.SpanID, s.ParentSpanID)
		}
		traces[s.TraceID], spans[s.SpanID] = true, true
		// The same exchange converted again gets the same ids.
		if again := addOne(t, c, col, ex); again.SpanID != s.SpanID || again.TraceID != s.TraceID {
			t.Fatalf("exchange %d converted twice: ids %s/%s then %s/%s", i, s.TraceID, s.SpanID, again.TraceID, again.SpanID)
		}
	}
	if len(traces) != n || len(spans) != n {
		t.Errorf("%d distinct trace ids and %d span ids in %d spans", len(traces), len(spans), n)
	}
}

func TestTimes(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := exchange(conn.RoleClient, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	ex.Start, ex.End = 5000, 4000 // a clock step or a parser's slip
	s := addOne(t, c, col, ex)
	if !s.Start.Equal(epoch.Add(5000)) || !s.End.Equal(s.Start) {
		t.Errorf("start %v end %v, want end clamped to start", s.Start, s.End)
	}
}

func TestHTTP2Version(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := exchange(conn.RoleClient, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	ex.Protocol, ex.HTTP.Version = protocols.HTTP2, ""
	got := attrStrings(addOne(t, c, col, ex).Attributes)
	if !slices.Contains(got, "network.protocol.version=2") {
		t.Errorf("attributes %q lack network.protocol.version=2", got)
	}
}

func TestUnconverted(t *testing.T) {
	c, col := newTest(t, Config{})
	c.Add(&protocols.Exchange{Protocol: protocols.DNS})
	c.Add(&protocols.Exchange{Protocol: protocols.Postgres})
	c.Add(&protocols.Exchange{Protocol: protocols.HTTP1}) // no HTTP part
	if len(col.spans) != 0 {
		t.Errorf("emitted %d spans", len(col.spans))
	}
	if st := c.Stats(); st.Unconverted != 3 || st.ServerSpans+st.ClientSpans+st.UnspecifiedSpans != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNilConnAndProcs(t *testing.T) {
	col := &collector{}
	c := New(Config{Clock: testClock}, nil, col.add)
	ex := exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	ex.Conn = nil
	s := addOne(t, c, col, ex)
	if s.Process != nil {
		t.Errorf("process = %+v, want nil", s.Process)
	}
	for _, kv := range s.Attributes {
		switch kv.Key {
		case "server.address", "client.address", "network.peer.address":
			t.Errorf("address attribute %s without a connection", kv.Key)
		}
	}
}

func TestNewRequiresClock(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with a nil Clock did not panic")
		}
	}()
	New(Config{}, nil, func(Span) {})
}

func TestRegisterMetrics(t *testing.T) {
	c, col := newTest(t, Config{})
	addOne(t, c, col, exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200, TraceParent: validTP}))
	addOne(t, c, col, exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200, TraceParent: "junk"}))
	addOne(t, c, col, exchange(conn.RoleClient, protocols.HTTP{Method: "GET", Path: "/", Status: 200}))
	c.Add(&protocols.Exchange{Protocol: protocols.DNS})
	c.Add(&protocols.Exchange{Protocol: protocols.DNS})
	c.Add(&protocols.Exchange{Protocol: protocols.Unknown})
	c.Add(&protocols.Exchange{Protocol: protocols.Protocol(99)}) // also named "unknown"

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	if err := c.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "weft_correlate_join_held_spans" {
				continue // a gauge, checked in TestJoinMetrics
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Errorf("%s is %T, want a monotonic sum", m.Name, m.Data)
				continue
			}
			for _, dp := range sum.DataPoints {
				name := m.Name
				for _, kv := range dp.Attributes.ToSlice() {
					name += "{" + string(kv.Key) + "=" + kv.Value.AsString() + "}"
				}
				got[name] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"weft_correlate_spans{kind=server}":                      2,
		"weft_correlate_spans{kind=client}":                      1,
		"weft_correlate_spans{kind=unspecified}":                 0,
		"weft_correlate_traceparents{result=joined}":             1,
		"weft_correlate_traceparents{result=invalid}":            1,
		"weft_correlate_unconverted_exchanges{protocol=dns}":     2,
		"weft_correlate_unconverted_exchanges{protocol=unknown}": 2,
		// The join stage's, zero here (TestJoinMetrics counts them).
		"weft_correlate_pairs{when=in_time}":                                  0,
		"weft_correlate_pairs{when=late}":                                     0,
		"weft_correlate_nested_client_spans{rule=thread}":                     0,
		"weft_correlate_nested_client_spans{rule=single_in_flight}":           0,
		"weft_correlate_nested_client_spans{rule=cause}":                      0,
		"weft_correlate_stream_causes{result=observed}":                       0,
		"weft_correlate_stream_causes{result=dropped}":                        0,
		"weft_correlate_unattributed_client_spans":                            0,
		"weft_correlate_cause_undecided_client_spans{reason=ambiguous}":       0,
		"weft_correlate_cause_undecided_client_spans{reason=no_exchange}":     0,
		"weft_correlate_cause_undecided_client_spans{reason=outside_request}": 0,
		"weft_correlate_cause_undecided_client_spans{reason=root_chain}":      0,
		"weft_correlate_join_evicted_spans":                                   0,
		"weft_correlate_service_graph_dropped_edges":                          0,
		"weft_correlate_capped_span_names":                                    0, // TestSpanNamesCappedPerService
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
}

// BenchmarkExchangeToSpan measures one server exchange with a traceparent
// and a templated path: the common, fullest case.
func BenchmarkExchangeToSpan(b *testing.B) {
	proc := &procmeta.Process{PID: 4321, ServiceName: "app"}
	var sink Span
	c := New(Config{Clock: testClock}, lookupFunc(func(uint32, string) *procmeta.Process { return proc }),
		func(s Span) { sink = s })
	ex := exchange(conn.RoleServer, protocols.HTTP{
		Method: "GET", Path: "/api/v1/items/42", Status: 200, Host: "shop.example:8080",
		UserAgent: "curl/8.5.0", TraceParent: validTP,
	})
	b.ReportAllocs()
	for b.Loop() {
		c.Add(ex)
	}
	c.FlushAll()
	if sink.Name != "GET /api/v1/items/{id}" {
		b.Fatalf("name %q", sink.Name)
	}
}

type lookupFunc func(uint32, string) *procmeta.Process

func (f lookupFunc) Lookup(pid uint32, comm string) *procmeta.Process { return f(pid, comm) }
