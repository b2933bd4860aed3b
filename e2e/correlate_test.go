package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The correlation tests run a call chain on this host, five processes in
// four runtimes, one request through all of them:
//
//	curl -> gosrv (Go net/http, GET /chain/{tok}?down=PORT)
//	     -> relay.py (python ThreadingHTTPServer, GET /relay/{tok})
//	     -> python -m http.server (GET /leaf-{tok}.txt)
//	and then gosrv -> PostgreSQL (SELECT, pgx, simple protocol)
//
// and require ONE trace in Jaeger with exactly this tree: each server span
// the child of the client span at the other end of its connection, each
// downstream call the child of the request it was made for.

// chain is one running call chain; every service name is unique to it.
type chain struct {
	tok                            string
	curlSvc, goSvc, relaySvc, leaf string
	goPort, relayPort, leafPort    int
	leafBody                       string
	pg                             *pgServer // nil: no PostgreSQL hop
	pgDB                           string
}

// startChain starts the chain's servers; withPG adds the PostgreSQL hop.
func startChain(t *testing.T, withPG bool) chain {
	t.Helper()
	c := chain{
		tok:      token(10),
		curlSvc:  uniqueName("e2e-chain-curl"),
		goSvc:    uniqueName("e2e-chain-go"),
		relaySvc: uniqueName("e2e-chain-relay"),
		leaf:     uniqueName("e2e-chain-leaf"),
	}
	dir := t.TempDir()
	c.leafBody = "leaf " + c.tok + "\n"
	writeFile(t, dir, "leaf-"+c.tok+".txt", []byte(c.leafBody))
	c.leafPort = startPythonServer(t, c.leaf, dir)
	c.relayPort = startRelay(t, c.relaySvc, fmt.Sprintf("http://127.0.0.1:%d", c.leafPort))
	c.goPort = startGoServer(t, c.goSvc)
	if withPG {
		c.pg = startPostgres(t)
		c.pgDB = c.pg.createDB(t)
	}
	return c
}

// startRelay runs testdata/pyrelay/relay.py as service svc, calling
// downstream, and returns its port.
func startRelay(t *testing.T, svc, downstream string) int {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("find python3: %v", err)
	}
	lines := make(chan string, 16)
	p := startTestProc(t, "relay", childEnv("OTEL_SERVICE_NAME="+svc, "WEFT_E2E_DOWNSTREAM="+downstream), lines,
		strings.TrimSpace(string(out)), "-u", filepath.Join(suite.root, "e2e", "testdata", "pyrelay", "relay.py"))
	l := waitLine(t, p, lines, 15*time.Second, func(l string) bool {
		_, err := strconv.Atoi(strings.TrimSpace(l))
		return err == nil
	})
	port, _ := strconv.Atoi(strings.TrimSpace(l))
	if err := waitUntil(5*time.Second, p, func() error { return tcpReady(fmt.Sprintf("127.0.0.1:%d", port)) }); err != nil {
		t.Fatalf("relay: %v", err)
	}
	return port
}

// run sends the chain's one request with curl (extra: curl options) and
// returns the window around it.
func (c chain) run(t *testing.T, extra ...string) (from, to time.Time) {
	t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%d/chain/%s?down=%d", c.goPort, c.tok, c.relayPort)
	if c.pg != nil {
		u += fmt.Sprintf("&pgport=%d&pgdb=%s", c.pg.port, c.pgDB)
	}
	res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+c.curlSvc), curlOp{url: u, args: extra})
	if res[0].status != 200 || string(res[0].body) != c.leafBody {
		t.Fatalf("chain answered %d %q, want 200 %q", res[0].status, res[0].body, c.leafBody)
	}
	return from, to
}

// tree is the chain's expected tree (see renderTree); rootSuffix is
// appended to the lines of roots with a remote parent.
func (c chain) tree(curlParent, goParent string) string {
	at := func(p string) string {
		if p == "" {
			return ""
		}
		return " ^" + p
	}
	relay, leafPath := "/relay/"+c.tok, "/leaf-"+c.tok+".txt"
	lines := []string{
		c.curlSvc + " client GET /chain/" + c.tok + at(curlParent),
	}
	goLines := []string{
		c.goSvc + " server GET /chain/" + c.tok + at(goParent),
		"  " + c.goSvc + " client GET " + relay,
		"    " + c.relaySvc + " server GET " + relay,
		"      " + c.relaySvc + " client GET " + leafPath,
		"        " + c.leaf + " server GET " + leafPath,
	}
	if c.pg != nil {
		goLines = append(goLines,
			"  "+c.goSvc+" client SELECT "+c.pgDB,
			"    "+postgresService+" server SELECT "+c.pgDB)
	}
	if goParent == "" {
		for _, l := range goLines {
			lines = append(lines, "  "+l)
		}
	} else {
		lines = append(append(lines, "--"), goLines...)
	}
	return strings.Join(lines, "\n")
}

// TestChainOneTrace: curl -> Go -> python -> python, and Go -> PostgreSQL,
// comes out as one trace with the exact tree, each client span naming the
// service it called; Jaeger's dependency graph and weft's service graph
// metrics have the four edges.
func TestChainOneTrace(t *testing.T) {
	s := needWeft(t)
	c := startChain(t, true)
	from, to := c.run(t)

	spans := waitTrace(t, c.curlSvc, 8)
	got, want := renderTree(spans), c.tree("", "")
	if got != want {
		t.Fatalf("trace tree:\n%s\nwant:\n%s\nspans:\n%s", got, want, spanList(spans))
	}
	t.Logf("trace %s:\n%s", spans[0].TraceID, got)
	peers := map[string]string{c.curlSvc: c.goSvc, c.goSvc: c.relaySvc, c.relaySvc: c.leaf}
	for _, sp := range spans {
		w := Want{Service: sp.Service, Kind: sp.str(tagKind), Name: sp.Name, From: from, To: to,
			Attrs: map[string]any{attrStatus: 200, attrMethod: "GET"}}
		if strings.HasPrefix(sp.Name, "SELECT ") {
			w.Attrs = map[string]any{attrDBSystem: "postgresql", attrDBNamespace: c.pgDB, attrDBOperation: "SELECT"}
		}
		if w.Kind == "client" {
			w.Attrs["service.peer.name"] = peers[sp.Service]
			if strings.HasPrefix(sp.Name, "SELECT ") {
				w.Attrs["service.peer.name"] = postgresService
			}
		}
		checkSpan(t, "chain span "+sp.Name, sp, w)
		if w.Kind == "server" {
			if _, ok := sp.Tags["service.peer.name"]; ok {
				t.Errorf("server span %s has service.peer.name", sp.Name)
			}
		}
	}

	edges := [][2]string{{c.curlSvc, c.goSvc}, {c.goSvc, c.relaySvc}, {c.relaySvc, c.leaf}, {c.goSvc, postgresService}}
	waitDependencies(t, edges)
	for _, e := range edges {
		labels := map[string]string{"client": e[0], "server": e[1], "connection_type": ""}
		if e[1] == postgresService {
			labels["connection_type"] = "database"
		}
		waitWeftMetric(t, s, "traces_service_graph_request_total", labels, 1)
		waitWeftMetric(t, s, "traces_service_graph_request_server_seconds_count", labels, 1)
		waitWeftMetric(t, s, "traces_service_graph_request_client_seconds_count", labels, 1)
	}
}

// TestChainTraceParent: the same chain, with a W3C traceparent on curl's
// request. gosrv's server span joins that trace under the parent it names
// (an explicit traceparent wins over the client span weft saw), everything
// below follows, and curl's span, a root otherwise, joins the trace beside
// it under the same parent.
func TestChainTraceParent(t *testing.T) {
	needWeft(t)
	c := startChain(t, false)
	traceID, parent := randomHex(16), randomHex(8)
	c.run(t, "-H", "traceparent: 00-"+traceID+"-"+parent+"-01", "-H", "tracestate: weft=e2e")

	spans := waitTrace(t, c.curlSvc, 6)
	got, want := renderTree(spans), c.tree(parent, parent)
	if got != want {
		t.Fatalf("trace tree:\n%s\nwant:\n%s\nspans:\n%s", got, want, spanList(spans))
	}
	t.Logf("trace %s:\n%s", spans[0].TraceID, got)
	for _, sp := range spans {
		if sp.TraceID != traceID {
			t.Errorf("%s %s: trace %s, want the traceparent's %s", sp.Service, sp.Name, sp.TraceID, traceID)
		}
	}
}

func randomHex(n int) string {
	for {
		b := make([]byte, n)
		rand.Read(b)
		if !bytes.Equal(b, make([]byte, n)) {
			return hex.EncodeToString(b)
		}
	}
}

// waitTrace waits until the traces holding spans of service hold want
// spans in all, then looks again after settleTime and requires exactly
// want, all in one trace.
func waitTrace(t *testing.T, service string, want int) []Span {
	t.Helper()
	jc := suite.jaeger.client
	ctx, cancel := context.WithTimeout(context.Background(), spanTimeout+settleTime+15*time.Second)
	defer cancel()
	var spans []Span
	err := poll(spanTimeout, 100*time.Millisecond, nil, func() error {
		var err error
		if spans, err = jc.Spans(ctx, service); err != nil {
			return err
		}
		if len(spans) < want {
			return fmt.Errorf("%d of %d spans", len(spans), want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("trace of %s: %v\nspans:\n%s", service, err, spanList(spans))
	}
	time.Sleep(settleTime) // the exporter's next flush windows: catch extra spans
	spans, err = jc.Spans(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	traces := map[string]bool{}
	for _, sp := range spans {
		traces[sp.TraceID] = true
	}
	if len(spans) != want || len(traces) != 1 {
		t.Fatalf("traces of %s: %d spans in %d traces, want %d in one:\n%s", service, len(spans), len(traces), want, spanList(spans))
	}
	return spans
}

// renderTree draws spans as "service kind name" lines, children indented
// under their parent, siblings and trees by start; a root whose parent is
// not among the spans ends with ^parent; trees are separated by "--".
func renderTree(spans []Span) string {
	sortSpans(spans, nil)
	byID := map[string]bool{}
	for _, s := range spans {
		byID[s.SpanID] = true
	}
	kids := map[string][]Span{}
	var roots []Span
	for _, s := range spans {
		if s.ParentID != "" && byID[s.ParentID] {
			kids[s.ParentID] = append(kids[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	var lines []string
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		l := strings.Repeat("  ", depth) + s.Service + " " + s.str(tagKind) + " " + s.Name
		if depth == 0 && s.ParentID != "" {
			l += " ^" + s.ParentID
		}
		lines = append(lines, l)
		for _, k := range kids[s.SpanID] {
			walk(k, depth+1)
		}
	}
	for i, r := range roots {
		if i > 0 {
			lines = append(lines, "--")
		}
		walk(r, 0)
	}
	return strings.Join(lines, "\n")
}

func spanList(spans []Span) string {
	var b strings.Builder
	for i, s := range spans {
		fmt.Fprintf(&b, "  [%d] %s\n", i, s)
	}
	return b.String()
}

// depLink is one edge of Jaeger's dependency graph.
type depLink struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

// waitDependencies waits until GET /api/dependencies lists every edge
// (client service, server service) with one call.
func waitDependencies(t *testing.T, edges [][2]string) {
	t.Helper()
	jc := suite.jaeger.client
	var links []depLink
	err := poll(spanTimeout, 200*time.Millisecond, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		now := time.Now()
		q := url.Values{
			"endTs":    {strconv.FormatInt(now.Add(time.Hour).UnixMilli(), 10)},
			"lookback": {strconv.FormatInt((7 * time.Hour).Milliseconds(), 10)},
		}
		var err error
		if links, err = getAPI[[]depLink](ctx, jc, "/api/dependencies", q); err != nil {
			return err
		}
		for _, e := range edges {
			if !slices.Contains(links, depLink{Parent: e[0], Child: e[1], CallCount: 1}) {
				return fmt.Errorf("edge %s -> %s (1 call) missing", e[0], e[1])
			}
		}
		return nil
	})
	if err != nil {
		var mine []string
		for _, l := range links {
			for _, e := range edges {
				if l.Parent == e[0] || l.Child == e[1] {
					mine = append(mine, fmt.Sprintf("%s -> %s (%d)", l.Parent, l.Child, l.CallCount))
					break
				}
			}
		}
		sort.Strings(mine)
		t.Fatalf("jaeger dependencies: %v\nedges of these services: %q", err, mine)
	}
}

// waitWeftMetric waits until weft's /metrics has the sample name{labels}
// (exactly those labels) with value want.
func waitWeftMetric(t *testing.T, s *suiteEnv, name string, labels map[string]string, want float64) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	var seen []string
	err := poll(spanTimeout, 200*time.Millisecond, s.weft.process, func() error {
		code, body, err := httpGetStatus(hc, s.weft.url("/metrics"))
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /metrics: %d %v", code, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			return err
		}
		family, sample := name, ""
		if i := strings.LastIndex(name, "_count"); i > 0 && i == len(name)-len("_count") {
			family, sample = name[:i], "count"
		}
		seen = seen[:0]
		f := fams[family]
		if f == nil {
			return fmt.Errorf("%s not on /metrics", family)
		}
		for _, m := range f.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			v := m.GetCounter().GetValue()
			if sample == "count" {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			if fmt.Sprint(got) == fmt.Sprint(labels) {
				if v == want {
					return nil
				}
				seen = append(seen, fmt.Sprintf("%v = %v", got, v))
			}
		}
		return fmt.Errorf("%s%v = %v not found", name, labels, want)
	})
	if err != nil {
		t.Fatalf("weft /metrics: %v (same labels: %q)", err, seen)
	}
}
