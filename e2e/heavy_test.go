package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

var attrResponseBodySize = string(semconv.HTTPResponseBodySizeKey)

// Numbers of TestHeavyTraffic, the issue's.
const (
	heavyIdleConns   = 10_000
	heavyChurnRate   = 2000 // new connections per second
	heavyChurnFor    = 30 * time.Second
	heavyBigResponse = 1 << 30
	heavyPaths       = 100_000
	// The suite's weft: the default --memory-limit, --max-span-names set
	// by startWeft.
	heavyMemoryCap = 512 << 20
	heavyNameCap   = suiteSpanNameCap
)

// rssWatch samples a process's resident set (VmRSS: anonymous and file
// pages) every 100 ms until stopped, keeping the peak.
type rssWatch struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if r, err := procStatus(pid, "VmRSS:"); err == nil {
				w.mu.Lock()
				w.peak = max(w.peak, r)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) Peak() int64 { w.mu.Lock(); defer w.mu.Unlock(); return w.peak }
func (w *rssWatch) Stop()       { close(w.stop); <-w.done }

// procStatus reads one kB field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// normalLoad is the traffic that must stay exact while the heavy phases
// run: batches of requests by loadgen (service loadSvc) to a Go server
// (service srvSvc), each with paths of its own.
type normalLoad struct {
	t              *testing.T
	srvSvc, cliSvc string
	port           int
	paths          []string
}

func (n *normalLoad) run(count int) {
	n.t.Helper()
	// Digits: the path segment is an id, templated into one span name.
	prefix := strconv.FormatInt(time.Now().UnixNano(), 10)
	runLoad(n.t, n.cliSvc, fmt.Sprintf("http://127.0.0.1:%d/items/{id}", n.port), prefix, count, 2)
	for i := range count {
		n.paths = append(n.paths, fmt.Sprintf("/items/%s-%d", prefix, i))
	}
}

// check waits for exactly one server and one client span per request,
// each named by the template and answered 200.
func (n *normalLoad) check() {
	n.t.Helper()
	for _, side := range []struct{ svc, kind string }{{n.srvSvc, "server"}, {n.cliSvc, "client"}} {
		spans := waitSpans(n.t, Query{Service: side.svc, Kind: side.kind, Paths: n.paths}, len(n.paths), spanTimeout)
		for _, s := range spans {
			if s.Name != "GET /items/{id}" || s.Tags[attrStatus].V != int64(200) {
				n.t.Errorf("%s span %s: name %q status %v, want GET /items/{id} and 200", side.kind, s.str(attrPath), s.Name, s.Tags[attrStatus].V)
			}
		}
	}
	n.paths = nil
}

// raiseNoFile lets this process (and the programs it starts) hold n
// files: the soft limit up to the hard one, and the hard one too when
// the kernel lets root raise it.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	old := lim
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if lim.Max < n || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
			t.Fatalf("raise RLIMIT_NOFILE to %d (hard limit %d): %v", n, lim.Max, err)
		}
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestHeavyTraffic: weft takes, one phase after the other, 10k idle
// connections, 2k new connections a second for 30 s, a 1 GiB response
// and 100k distinct URL paths, with normal requests made meanwhile. It
// stays up, its resident set stays under its memory cap (--memory-limit,
// default 512 MiB), the normal requests are exactly their spans, the big
// response is one span of the right size, and the 100k paths leave the
// service with at most --max-span-names (suiteSpanNameCap) operation names in Jaeger,
// the rest counted.
func TestHeavyTraffic(t *testing.T) {
	s := needWeft(t)
	raiseNoFile(t, heavyIdleConns+2000)
	pid := s.weft.process.cmd.Process.Pid
	rss := watchRSS(pid)
	defer rss.Stop()
	hc := &http.Client{Timeout: 5 * time.Second}
	srvSvc := uniqueName("e2e-heavy-srv")
	port := startGoServer(t, srvSvc)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	normal := &normalLoad{t: t, srvSvc: srvSvc, cliSvc: uniqueName("e2e-heavy-load"), port: port}
	before, err := weftCounters(hc, s.weft, "weft_")
	if err != nil {
		t.Fatal(err)
	}
	alive := func(phase string) {
		t.Helper()
		if !s.weft.running() {
			t.Fatalf("weft %s during %s", s.weft.describeExit(), phase)
		}
		t.Logf("%s: weft's peak VmRSS so far %d MiB", phase, rss.Peak()>>20)
	}

	// 10k idle connections, held while normal requests go on.
	began := time.Now()
	var idle []net.Conn
	for range heavyIdleConns {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(idle)+1, err)
		}
		idle = append(idle, c)
	}
	normal.run(200)
	for _, c := range idle {
		c.Close()
	}
	normal.check()
	alive(fmt.Sprintf("%d idle connections (%v)", len(idle), time.Since(began).Round(time.Millisecond)))

	// 2k new connections a second for 30 s: connect, then close with a
	// reset (no TIME_WAIT, so 60k ephemeral ports suffice), from 4
	// dialers paced by a ticker; normal requests meanwhile.
	began = time.Now()
	churned := churn(addr, heavyChurnRate, heavyChurnFor)
	batches := 0
	for ; batches < 60 && !closed(churned.done); batches++ {
		normal.run(20)
	}
	<-churned.done
	if got, want := churned.n, int(heavyChurnRate*heavyChurnFor/time.Second); got < want*9/10 {
		t.Errorf("made %d new connections in %v, want about %d", got, time.Since(began).Round(time.Millisecond), want)
	}
	normal.check()
	alive(fmt.Sprintf("%d new connections in %v (%d failed), %d normal batches", churned.n, time.Since(began).Round(time.Millisecond), churned.failed, batches))

	// A 1 GiB response to curl, which discards it: one span on each side,
	// with the size, while normal requests go on.
	began = time.Now()
	curlSvc := uniqueName("e2e-heavy-curl")
	bigPath := fmt.Sprintf("/bytes/%d", heavyBigResponse)
	big := make(chan error, 1)
	go func() { big <- curlDiscard(curlSvc, "http://"+addr+bigPath, heavyBigResponse) }()
	normal.run(100)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	normal.check()
	for _, side := range []struct{ svc, kind string }{{srvSvc, "server"}, {curlSvc, "client"}} {
		spans := waitSpans(t, Query{Service: side.svc, Kind: side.kind, Paths: []string{bigPath}}, 1, spanTimeout)
		sp := spans[0]
		if sp.Name != "GET /bytes/{id}" || sp.Tags[attrStatus].V != int64(200) || sp.Tags[attrResponseBodySize].V != int64(heavyBigResponse) {
			t.Errorf("1 GiB %s span: %s", side.kind, sp)
		}
	}
	alive(fmt.Sprintf("a 1 GiB response (%v)", time.Since(began).Round(time.Millisecond)))

	// 100k distinct paths (letters: names, not ids) to a server of their
	// own; normal requests start once the crawl is well under way, so
	// Jaeger (100k traces at most) still holds them when it ends.
	began = time.Now()
	crawlSvc, crawlCli := uniqueName("e2e-crawl-srv"), uniqueName("e2e-crawl-load")
	crawlPort := startGoServer(t, crawlSvc)
	crawled := make(chan error, 1)
	go func() {
		crawled <- runLoadgen(crawlCli, fmt.Sprintf("http://127.0.0.1:%d/items/{id}", crawlPort), "page", heavyPaths, 8, "-alpha")
	}()
	err = poll(3*time.Minute, 200*time.Millisecond, s.weft.process, func() error {
		m, err := weftCounters(hc, s.weft, "weft_correlate_capped_span_names")
		if err != nil {
			return err
		}
		if n := m["weft_correlate_capped_span_names_total"] - before["weft_correlate_capped_span_names_total"]; n < 20_000 {
			return fmt.Errorf("%v span names capped", n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("crawl: %v", err)
	}
	normal.run(200)
	if err := <-crawled; err != nil {
		t.Fatal(err)
	}
	crawlTime := time.Since(began)
	normal.check()
	// Jaeger's operations of each crawl service: the first 1000 names,
	// and the method alone for the rest, once those spans arrived.
	for _, svc := range []string{crawlSvc, crawlCli} {
		var ops []string
		err := poll(time.Minute, time.Second, s.weft.process, func() (err error) {
			ops, err = getAPI[[]string](context.Background(), suite.jaeger.client, "/api/services/"+url.PathEscape(svc)+"/operations", nil)
			if err == nil && (len(ops) < heavyNameCap || !slices.Contains(ops, "GET")) {
				err = fmt.Errorf("%d operations, GET among them: %v", len(ops), slices.Contains(ops, "GET"))
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if len(ops) > heavyNameCap+1 {
			t.Errorf("%s has %d operations in Jaeger after %d distinct paths, want at most %d+1", svc, len(ops), heavyPaths, heavyNameCap)
		}
		t.Logf("%s: %d operations, after %v", svc, len(ops), time.Since(began)-crawlTime)
	}
	alive(fmt.Sprintf("%d distinct paths (%v)", heavyPaths, crawlTime.Round(time.Millisecond)))

	after, err := weftCounters(hc, s.weft, "weft_")
	if err != nil {
		t.Fatal(err)
	}
	if n := after["weft_correlate_capped_span_names_total"] - before["weft_correlate_capped_span_names_total"]; n < 2*(heavyPaths-heavyNameCap)*9/10 {
		t.Errorf("%v span names capped, want about %d (both sides of %d requests beyond the cap)", n, 2*(heavyPaths-heavyNameCap), heavyPaths)
	}
	hwm, _ := procStatus(pid, "VmHWM:")
	if peak := rss.Peak(); peak > heavyMemoryCap {
		t.Errorf("weft's VmRSS peaked at %d MiB, over its %d MiB cap", peak>>20, heavyMemoryCap>>20)
	}
	var moved []string
	for _, k := range []string{"weft_memory_shed_events_total", "weft_correlate_capped_span_names_total", "weft_bpf_events_lost_total", "weft_exporter_spans_dropped_total", "weft_conn_evicted_connections_total", "weft_memory_live_heap_peak_bytes"} {
		moved = append(moved, fmt.Sprintf("%s %v -> %v", k, before[k], after[k]))
	}
	t.Logf("peak VmRSS %d MiB (VmHWM over weft's life %d MiB); %s", rss.Peak()>>20, hwm>>20, strings.Join(moved, "; "))
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// churned is what churn did, known once done is closed.
type churned struct {
	n, failed int
	done      chan struct{}
}

// churn opens rate new connections a second to addr for d, closing each
// at once with a reset.
func churn(addr string, rate int, d time.Duration) *churned {
	c := &churned{done: make(chan struct{})}
	const dialers = 4
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range dialers {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / time.Duration(rate/dialers/10)) // 10 a tick
			defer tick.Stop()
			for n := 0; n < rate/dialers*int(d/time.Second) && time.Now().Before(end.Add(5*time.Second)); {
				<-tick.C
				for range 10 {
					n++
					conn, err := net.DialTimeout("tcp", addr, time.Second)
					mu.Lock()
					if err != nil {
						c.failed++
					} else {
						c.n++
					}
					mu.Unlock()
					if err == nil {
						conn.(*net.TCPConn).SetLinger(0)
						conn.Close()
					}
				}
			}
		})
	}
	go func() { wg.Wait(); close(c.done) }()
	return c
}

// curlDiscard GETs u with curl as service svc, discarding the body, and
// checks it got 200 and size bytes.
func curlDiscard(svc, u string, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "110", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", u)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("curl %s: %v: %s", u, err, &out)
	}
	if got, want := strings.TrimSpace(out.String()), fmt.Sprintf("200 %d", size); got != want {
		return fmt.Errorf("curl %s: %q, want %q", u, got, want)
	}
	return nil
}

// runLoadgen is runLoad returning its error, for a goroutine, with extra
// flags.
func runLoadgen(svc, pattern, prefix string, n, c int, extra ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"-url", pattern, "-prefix", prefix, "-n", strconv.Itoa(n), "-c", strconv.Itoa(c)}, extra...)
	cmd := exec.CommandContext(ctx, suite.bin["loadgen"], args...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loadgen %s: %v\n%s", pattern, err, tail2(out.String(), 20))
	}
	return nil
}
