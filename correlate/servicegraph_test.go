package correlate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/procmeta"
)

// collectMetrics registers c's metrics on a manual reader and returns a
// collect function: "name{k=v,...}" -> value (sums, gauges) or sample
// count (histograms, as name:count).
func collectMetrics(t *testing.T, c *Correlator) func() map[string]float64 {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	if err := c.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	return func() map[string]float64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		label := func(name string, kvs []string) string {
			sort.Strings(kvs)
			return name + "{" + strings.Join(kvs, ",") + "}"
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						got[label(m.Name, attrStrings(dp.Attributes.ToSlice()))] = float64(dp.Value)
					}
				case metricdata.Gauge[int64]:
					for _, dp := range d.DataPoints {
						got[label(m.Name, attrStrings(dp.Attributes.ToSlice()))] = float64(dp.Value)
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						got[label(m.Name+":count", attrStrings(dp.Attributes.ToSlice()))] = float64(dp.Count)
						got[label(m.Name+":sum", attrStrings(dp.Attributes.ToSlice()))] = dp.Sum
					}
				default:
					t.Fatalf("%s: unexpected %T", m.Name, m.Data)
				}
			}
		}
		return got
	}
}

func wantMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok || fmt.Sprintf("%.6g", g) != fmt.Sprintf("%.6g", v) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func edge(name, client, server, ct string) string {
	return name + "{client=" + client + ",connection_type=" + ct + ",server=" + server + "}"
}

func TestServiceGraph(t *testing.T) {
	c, _ := newJoinTest(t)
	collect := collectMetrics(t, c)
	exs := chain("")
	exs[2].HTTP.Status = 503 // pyrelay fails; gosrv's call sees it too
	exs[3].HTTP.Status = 503
	addAll(c, exs...)

	// A client span whose server end is off this host, and a server span
	// whose client is: neither pairs.
	ext := dial(gosrv, 50200, tproc{999, "remote"}, "192.0.2.10:443")
	c.Add(ext.cli(1, "/ext", side{start: 20, end: 25}))
	in := dial(tproc{998, "elsewhere"}, 50201, pyleaf, "127.0.0.1:9100")
	c.Add(in.srv(1, "/in", side{start: 20, end: 21}))

	c.Flush(ms(25) + int64(testWait)) // emitted, not yet expired
	if got := collect(); got[edge(graphRequests, "curl", "gosrv", "")] != 0 {
		t.Errorf("edges counted before their spans expired: %v", got)
	}
	c.Flush(ms(25) + 2*int64(testWait))
	got := collect()
	wantMetrics(t, got, map[string]float64{
		edge(graphRequests, "curl", "gosrv", ""):                    1,
		edge(graphRequests, "gosrv", "pyrelay", ""):                 1,
		edge(graphRequests, "pyrelay", "pyleaf", ""):                1,
		edge(graphFailed, "gosrv", "pyrelay", ""):                   1,
		edge(graphServerDur+":count", "curl", "gosrv", ""):          1,
		edge(graphClientDur+":count", "curl", "gosrv", ""):          1,
		edge(graphServerDur+":sum", "curl", "gosrv", ""):            0.008, // 1 ms .. 9 ms
		edge(graphClientDur+":sum", "curl", "gosrv", ""):            0.010,
		edge(graphRequests, "gosrv", "192.0.2.10", connTypeVirtual): 1,
		edge(graphRequests, virtualUser, "pyleaf", connTypeVirtual): 1,
		"weft_correlate_pairs{when=in_time}":                        3,
	})
	for k := range got {
		if strings.HasPrefix(k, graphFailed) && k != edge(graphFailed, "gosrv", "pyrelay", "") {
			t.Errorf("unexpected failure edge %s", k)
		}
		if strings.Contains(k, "client=user") && !strings.Contains(k, "server=pyleaf") {
			t.Errorf("root server spans of a pair counted as from user: %s", k)
		}
	}
	if n := len(c.graph.edges); n != 5 {
		t.Errorf("%d edges, want 5", n)
	}
}

func TestServiceGraphEdgeLimit(t *testing.T) {
	c, _ := newJoinTest(t)
	collect := collectMetrics(t, c)
	for i := range maxEdges + 3 {
		cn := dial(tproc{uint32(10000 + i), fmt.Sprintf("client-%d", i)}, 50300, gosrv, "127.0.0.1:8080")
		addAll(c, cn.srv(uint32(i), "/e", side{start: 1, end: 2}), cn.cli(uint32(i), "/e", side{start: 0, end: 3}))
	}
	c.FlushAll()
	if st := c.JoinStats(); st.DroppedEdges != 3 || len(c.graph.edges) != maxEdges {
		t.Errorf("dropped %d, %d edges; want 3 and %d", st.DroppedEdges, len(c.graph.edges), maxEdges)
	}
	if got := collect()["weft_correlate_service_graph_dropped_edges{}"]; got != 3 {
		t.Errorf("dropped edges metric %v, want 3", got)
	}
}

func TestJoinMetrics(t *testing.T) {
	c, _ := newJoinTest(t)
	collect := collectMetrics(t, c)
	addAll(c, overlapping([2]uint32{201, 202}, [2]uint32{201, 202}, false)...)
	if got := collect()["weft_correlate_join_held_spans{}"]; got != 4 {
		t.Errorf("held %v, want 4", got)
	}
	c.FlushAll() // the chain's gosrv request would overlap these
	addAll(c, chain("")...)
	c.FlushAll()
	wantMetrics(t, collect(), map[string]float64{
		"weft_correlate_join_held_spans{}":                          0,
		"weft_correlate_unattributed_client_spans{}":                2,
		"weft_correlate_nested_client_spans{rule=single_in_flight}": 2,
		"weft_correlate_nested_client_spans{rule=thread}":           0,
		"weft_correlate_pairs{when=in_time}":                        3,
		"weft_correlate_pairs{when=late}":                           0,
		"weft_correlate_join_evicted_spans{}":                       0,
		"weft_correlate_spans{kind=server}":                         5,
		"weft_correlate_spans{kind=client}":                         5,
	})
}

// TestLoneEdge: a finished span's edge when its other end was not seen,
// as the service map decides it.
func TestLoneEdge(t *testing.T) {
	proc := &procmeta.Process{ServiceName: "app"}
	for _, tc := range []struct {
		name   string
		kind   trace.SpanKind
		parent bool
		attrs  []attribute.KeyValue
		want   Edge
		ok     bool
	}{
		{"database namespace", trace.SpanKindClient, false, []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.DBNamespace("shop"), semconv.ServicePeerName("postgres")}, Edge{"app", "shop", "database"}, true},
		{"database system", trace.SpanKindClient, false, []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}, Edge{"app", "postgresql", "database"}, true},
		{"peer service", trace.SpanKindClient, true, []attribute.KeyValue{semconv.ServerAddress("10.0.0.1"), semconv.ServicePeerName("orders")}, Edge{"app", "orders", "virtual_node"}, true},
		{"server address", trace.SpanKindClient, false, []attribute.KeyValue{semconv.ServerAddress("api.example.com")}, Edge{"app", "api.example.com", "virtual_node"}, true},
		{"no peer", trace.SpanKindClient, false, nil, Edge{}, false},
		{"root server", trace.SpanKindServer, false, nil, Edge{"user", "app", "virtual_node"}, true},
		{"server with a parent", trace.SpanKindServer, true, nil, Edge{}, false},
		{"internal", trace.SpanKindInternal, false, nil, Edge{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Span{Kind: tc.kind, Attributes: tc.attrs, Process: proc}
			if tc.parent {
				s.ParentSpanID = trace.SpanID{1}
			}
			e, ok := LoneEdge(&s)
			if ok != tc.ok || (ok && e != tc.want) {
				t.Errorf("LoneEdge = %+v, %v; want %+v, %v", e, ok, tc.want, tc.ok)
			}
		})
	}
	client := Span{Kind: trace.SpanKindClient, Attributes: []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}, Process: proc}
	server := Span{Kind: trace.SpanKindServer, Process: &procmeta.Process{ServiceName: "postgres"}}
	if e := PairEdge(&client, &server); e != (Edge{"app", "postgres", "database"}) {
		t.Errorf("PairEdge = %+v", e)
	}
}
