package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The concurrency tests drive a front service with several requests in
// flight and grade every request's trace in Jaeger:
//
//	loadgen -> front (GET /front/{id}) -> back (gosrv, GET /items/{id}.k)
//
// A request is whole when its trace holds exactly its own spans (loadgen's
// client span, the front's server span, the front's calls and the back's
// server spans), each with the right parent. A wrong parent is a front call
// for request X nested under request Y's server span (or anywhere but X's):
// it must never happen, at any concurrency, in any runtime. Fronts whose
// runtime weft covers must make at least 99% of requests whole at every
// concurrency; the others (where neither the kernel's cause nor a time
// rule decides) at concurrency 1.

// concurrencyRequests is how many requests each run sends.
const concurrencyRequests = 400

// concurrencyLevels are the runs of each front.
var concurrencyLevels = []int{1, 8, 64}

// frontKind is one front service.
type frontKind struct {
	name    string
	calls   int  // downstream calls per request
	covered bool // weft attributes its calls under concurrency
	// start runs the front, asking for service name svc, calling back at
	// backPort, and returns the URL pattern loadgen requests ({id}) and
	// the service name its spans carry.
	start func(t *testing.T, svc string, backPort int) (string, string)
}

var fronts = []frontKind{
	{name: "go-fanout", calls: 2, covered: true, start: startGoFront},
	{name: "node", calls: 2, covered: true, start: startNodeFront},
	{name: "nginx", calls: 1, covered: true, start: startNginxFront},
	{name: "java-executor", calls: 2, covered: true, start: startJavaFront},
	{name: "python-asyncio", calls: 2, covered: true, start: startAsyncioFront},
	// Debian's CPython: stripped, the runtime linked into the executable.
	{name: "python-asyncio-debian", calls: 2, covered: true, start: startDebianAsyncioFront},
}

// TestConcurrencyWholeTraces runs every front at every concurrency level.
// It writes the measured table to $WEFT_E2E_ACCURACY (JSON) when set.
func TestConcurrencyWholeTraces(t *testing.T) {
	needWeft(t)
	var mu sync.Mutex
	var table []accuracyRow
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			backSvc := uniqueName("e2e-back")
			backPort := startGoServer(t, backSvc)
			frontSvc := uniqueName("e2e-front-" + f.name)
			pattern, frontSvc := f.start(t, frontSvc, backPort)
			for _, c := range concurrencyLevels {
				loadSvc := uniqueName("e2e-load")
				prefix := fmt.Sprintf("c%d%s", c, token(4))
				runLoad(t, loadSvc, pattern, prefix, concurrencyRequests, c)
				g := gradeRun(t, frontSvc, loadSvc, backSvc, httpIDs(prefix, concurrencyRequests), f.calls)
				t.Logf("%s at concurrency %d: %v", f.name, c, g)
				mu.Lock()
				table = append(table, accuracyRow{Front: f.name, Concurrency: c, Requests: g.requests, Whole: g.whole, Wrong: g.wrong, Covered: f.covered})
				mu.Unlock()
				if g.wrong != 0 {
					t.Errorf("%s at concurrency %d: %d calls with a wrong parent:\n%s", f.name, c, g.wrong, strings.Join(g.examples, "\n"))
				}
				if (f.covered || c == 1) && g.pct() < 99 {
					t.Errorf("%s at concurrency %d: %v, want at least 99%% whole:\n%s", f.name, c, g, strings.Join(g.examples, "\n"))
				}
			}
		})
	}
	if path := os.Getenv("WEFT_E2E_ACCURACY"); path != "" {
		b, _ := json.MarshalIndent(table, "", "  ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

type accuracyRow struct {
	Front       string `json:"front"`
	Concurrency int    `json:"concurrency"`
	Requests    int    `json:"requests"`
	Whole       int    `json:"whole"`
	Wrong       int    `json:"wrong_parents"`
	Covered     bool   `json:"covered"`
}

// runLoad sends n requests at concurrency c with loadgen as service svc.
func runLoad(t *testing.T, svc, pattern, prefix string, n, c int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.bin["loadgen"], "-url", pattern, "-prefix", prefix, "-n", strconv.Itoa(n), "-c", strconv.Itoa(c))
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadgen %s at %d: %v\n%s", pattern, c, err, tail2(out.String(), 20))
	}
}

func tail2(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// grade is one run's result.
type grade struct {
	requests, whole, wrong int
	examples               []string // a few requests that were not whole, explained
}

func (g grade) pct() float64 { return 100 * float64(g.whole) / float64(g.requests) }

func (g grade) String() string {
	return fmt.Sprintf("%d/%d whole (%.1f%%), %d wrong parents", g.whole, g.requests, g.pct(), g.wrong)
}

// requestID returns the request id in path ("/front/<id>", "/fan/<id>",
// "/items/<id>.<k>") when it starts with prefix.
func requestID(path, prefix string) (string, bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 || !strings.HasPrefix(path[i+1:], prefix+"-") {
		return "", false
	}
	id := path[i+1:]
	if j := strings.IndexByte(id, '.'); j >= 0 {
		id = id[:j]
	}
	return id, true
}

// runIDs names a run's requests: ids lists them, of says which a span
// belongs to.
type runIDs struct {
	ids []string
	of  func(Span) (string, bool)
}

func httpIDs(prefix string, n int) runIDs {
	r := runIDs{of: func(s Span) (string, bool) { return requestID(s.str("url.path"), prefix) }}
	for i := range n {
		r.ids = append(r.ids, fmt.Sprintf("%s-%d", prefix, i))
	}
	return r
}

// gradeRun waits until Jaeger has every front span of the run, then grades
// each request's trace.
func gradeRun(t *testing.T, frontSvc, loadSvc, backSvc string, ids runIDs, calls int) grade {
	t.Helper()
	n := len(ids.ids)
	jc := suite.jaeger.client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var spans []Span
	count := func() (srv, cli int) {
		for _, s := range spans {
			if s.Service != frontSvc {
				continue
			}
			if _, ok := ids.of(s); !ok {
				continue
			}
			switch s.str(tagKind) {
			case "server":
				srv++
			case "client":
				cli++
			}
		}
		return
	}
	err := poll(spanTimeout+30*time.Second, 250*time.Millisecond, nil, func() error {
		var err error
		if spans, err = jc.Spans(ctx, frontSvc); err != nil {
			return err
		}
		if srv, cli := count(); srv < n || cli < n*calls {
			return fmt.Errorf("%d of %d front server spans, %d of %d front client spans", srv, n, cli, n*calls)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("spans of %s: %v", frontSvc, err)
	}
	time.Sleep(settleTime) // the spans the front's trees still wait for
	if spans, err = jc.Spans(ctx, frontSvc); err != nil {
		t.Fatal(err)
	}
	if srv, cli := count(); srv != n || cli != n*calls {
		t.Fatalf("%d front server spans, %d front client spans; want %d and %d", srv, cli, n, n*calls)
	}
	return gradeSpans(spans, frontSvc, loadSvc, backSvc, ids, calls)
}

// gradeSpans grades the traces of one run.
func gradeSpans(spans []Span, frontSvc, loadSvc, backSvc string, ids runIDs, calls int) grade {
	type key struct{ svc, kind, id string }
	byID := map[string]Span{}
	traces := map[string][]Span{}
	bySpan := map[key][]Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
		traces[s.TraceID] = append(traces[s.TraceID], s)
		if id, ok := ids.of(s); ok {
			k := key{s.Service, s.str(tagKind), id}
			bySpan[k] = append(bySpan[k], s)
		}
	}
	g := grade{requests: len(ids.ids)}
	note := func(format string, args ...any) {
		if len(g.examples) < 5 {
			g.examples = append(g.examples, fmt.Sprintf(format, args...))
		}
	}
	// Wrong parents: a front call under anything but its own request's
	// front server span.
	for k, list := range bySpan {
		if k.svc != frontSvc || k.kind != "client" {
			continue
		}
		for _, c := range list {
			if c.ParentID == "" {
				continue
			}
			p, ok := byID[c.ParentID]
			pid, _ := ids.of(p)
			if !ok || p.Service != frontSvc || p.str(tagKind) != "server" || pid != k.id {
				g.wrong++
				note("wrong parent: %s %s under %s %s %s", c.Name, c.str("url.path"), p.Service, p.str(tagKind), p.str("url.path"))
			}
		}
	}
	for _, id := range ids.ids {
		problem := wholeProblem(id, bySpan[key{loadSvc, "client", id}], bySpan[key{frontSvc, "server", id}],
			bySpan[key{frontSvc, "client", id}], bySpan[key{backSvc, "server", id}], traces, calls)
		if problem == "" {
			g.whole++
		} else {
			note("%s: %s", id, problem)
		}
	}
	return g
}

// wholeProblem says why request id's trace is not whole, or "".
func wholeProblem(id string, load, srv, cli, back []Span, traces map[string][]Span, calls int) string {
	if len(load) != 1 || len(srv) != 1 || len(cli) != calls || len(back) != calls {
		return fmt.Sprintf("%d load, %d front server, %d front client, %d back server spans", len(load), len(srv), len(cli), len(back))
	}
	root, s := load[0], srv[0]
	switch {
	case root.ParentID != "":
		return "the load client span has a parent"
	case s.ParentID != root.SpanID:
		return "the front server span is not the load client span's child"
	}
	calledBy := map[string]bool{}
	for _, c := range cli {
		if c.ParentID != s.SpanID {
			return fmt.Sprintf("front call %s %s is a root or elsewhere (parent %q)", c.Name, c.str("url.path"), c.ParentID)
		}
		calledBy[c.SpanID] = true
	}
	for _, b := range back {
		if !calledBy[b.ParentID] {
			return fmt.Sprintf("back span %s is not a front call's child", b.str("url.path"))
		}
	}
	if got := len(traces[root.TraceID]); got != 2+2*calls {
		var names []string
		for _, x := range traces[root.TraceID] {
			names = append(names, x.Service+" "+x.str(tagKind)+" "+x.str("url.path"))
		}
		sort.Strings(names)
		return fmt.Sprintf("its trace has %d spans, want %d: %s", got, 2+2*calls, strings.Join(names, "; "))
	}
	return ""
}

// frontsDir holds the non-Go fronts' sources.
func frontsDir() string { return filepath.Join(suite.root, "e2e", "testdata", "fronts") }

// startPortProc runs argv as service svc with env extra and returns the
// port it prints alone on a line.
func startPortProc(t *testing.T, name, svc string, extra []string, timeout time.Duration, argv ...string) int {
	t.Helper()
	lines := make(chan string, 16)
	p := startTestProc(t, name, childEnv(append([]string{"OTEL_SERVICE_NAME=" + svc}, extra...)...), lines, argv...)
	l := waitLine(t, p, lines, timeout, func(l string) bool {
		_, err := strconv.Atoi(strings.TrimSpace(l))
		return err == nil
	})
	port, _ := strconv.Atoi(strings.TrimSpace(l))
	if err := waitUntil(5*time.Second, p, func() error { return tcpReady(fmt.Sprintf("127.0.0.1:%d", port)) }); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return port
}

func startGoFront(t *testing.T, svc string, backPort int) (string, string) {
	port := startGoServer(t, svc)
	return fmt.Sprintf("http://127.0.0.1:%d/fan/{id}?down=%d", port, backPort), svc
}

func backEnv(backPort int) []string {
	return []string{fmt.Sprintf("WEFT_E2E_BACK=http://127.0.0.1:%d", backPort)}
}

func startNodeFront(t *testing.T, svc string, backPort int) (string, string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	port := startPortProc(t, "node-front", svc, backEnv(backPort), 15*time.Second, node, filepath.Join(frontsDir(), "front.js"))
	return fmt.Sprintf("http://127.0.0.1:%d/front/{id}", port), svc
}

// startAsyncioFront runs the asyncio front on the python3 in PATH (here
// pyenv's: CPython with DWARF, the runtime in a shared libpython).
func startAsyncioFront(t *testing.T, svc string, backPort int) (string, string) {
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("find python3: %v", err)
	}
	return startAsyncioFrontOn(t, strings.TrimSpace(string(out)), svc, backPort)
}

func startDebianAsyncioFront(t *testing.T, svc string, backPort int) (string, string) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("Debian's python3 is not installed (apt-get install python3): %v", err)
	}
	return startAsyncioFrontOn(t, python, svc, backPort)
}

func startAsyncioFrontOn(t *testing.T, python, svc string, backPort int) (string, string) {
	port := startPortProc(t, "asyncio-front", svc, backEnv(backPort), 15*time.Second,
		python, "-u", filepath.Join(frontsDir(), "front_asyncio.py"))
	return fmt.Sprintf("http://127.0.0.1:%d/front/{id}", port), svc
}

func startJavaFront(t *testing.T, svc string, backPort int) (string, string) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is not installed: %v", err)
	}
	// Source-file mode compiles Front.java in memory at start.
	port := startPortProc(t, "java-front", svc, backEnv(backPort), 60*time.Second, java, filepath.Join(frontsDir(), "Front.java"))
	return fmt.Sprintf("http://127.0.0.1:%d/front/{id}", port), svc
}

// nginxProxyConfig proxies /front/{id} to the back's /items/{id} over
// keep-alive upstream connections; %[1]s prefix, %[2]d port, %[3]d back.
const nginxProxyConfig = `daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
env OTEL_SERVICE_NAME;
events {
	worker_connections 512;
}
http {
	access_log off;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_timeout 60s;
	upstream back {
		server 127.0.0.1:%[3]d;
		keepalive 32;
	}
	server {
		listen 127.0.0.1:%[2]d;
		location /front/ {
			proxy_pass http://back/items/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

func startNginxFront(t *testing.T, svc string, backPort int) (string, string) {
	port := runNginx(t, "nginx-front", childEnv("OTEL_SERVICE_NAME="+svc), func(prefix string, port int) []byte {
		return fmt.Appendf(nil, nginxProxyConfig, prefix, port, backPort)
	})
	// A worker forked by the master: nginx overwrites the environment
	// block (its process title), so its spans carry the executable's name.
	return fmt.Sprintf("http://127.0.0.1:%d/front/{id}", port), "nginx"
}

// grpcLoadCalls is how many calls each gRPC run makes: one per Load
// method, so a method names a call.
const grpcLoadCalls = 128

// TestConcurrencyGRPC: grpcclient -> grpc-go front -> grpc-go back, one
// h2c connection each way, at every concurrency level. grpc-go writes
// every call's frames from one goroutine per connection (its loopy
// writer), several calls per write, so the write's own cause says
// nothing: weft's uprobes on grpc's (*Server).handleStream and
// (*http2Client).write tie each handler goroutine to its server stream and
// each client stream to the goroutine that sent it. At least 99% whole,
// never a wrong parent.
func TestConcurrencyGRPC(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	ids := runIDs{of: func(s Span) (string, bool) {
		m, ok := strings.CutPrefix(s.Name, "weft.e2e.Echo/Load")
		return m, ok && len(m) == 3
	}}
	for i := range grpcLoadCalls {
		ids.ids = append(ids.ids, fmt.Sprintf("%03d", i))
	}
	for _, c := range concurrencyLevels {
		t.Run(fmt.Sprintf("c=%d", c), func(t *testing.T) {
			backSvc, frontSvc, loadSvc := uniqueName("e2e-grpc-back"), uniqueName("e2e-grpc-front"), uniqueName("e2e-grpc-load")
			backPort := startPortServer(t, "grpcsrv", backSvc)
			frontPort := startPortProc(t, "grpcsrv-front", frontSvc, []string{fmt.Sprintf("WEFT_E2E_DOWN=127.0.0.1:%d", backPort)}, 10*time.Second, suite.bin["grpcsrv"])
			runGRPCClient(t, loadSvc, frontPort, "load", strconv.Itoa(grpcLoadCalls), strconv.Itoa(c))
			g := gradeRun(t, frontSvc, loadSvc, backSvc, ids, 1)
			t.Logf("grpc-go at concurrency %d: %v", c, g)
			if g.wrong != 0 {
				t.Errorf("grpc-go at concurrency %d: %d calls with a wrong parent:\n%s", c, g.wrong, strings.Join(g.examples, "\n"))
			}
			if g.pct() < 99 {
				t.Errorf("grpc-go at concurrency %d: %v, want at least 99%% whole:\n%s", c, g, strings.Join(g.examples, "\n"))
			}
		})
	}
}
