package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// flakyCollector is an OTLP/HTTP receiver that can refuse (503), hang, or
// take spans, counting by url.path prefix those it took.
type flakyCollector struct {
	mu    sync.Mutex
	mode  string // "503", "hang", "ok"
	paths map[string]int
	srv   *http.Server
	addr  string
	hung  chan struct{}
}

// startFlakyCollector listens on addr ("127.0.0.1:0" for any port).
func startFlakyCollector(t *testing.T, addr string) *flakyCollector {
	t.Helper()
	var ln net.Listener
	err := poll(10*time.Second, 100*time.Millisecond, nil, func() (err error) {
		ln, err = net.Listen("tcp", addr) // a port just freed may linger
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &flakyCollector{mode: "ok", paths: map[string]int{}, addr: ln.Addr().String(), hung: make(chan struct{})}
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 5 * time.Second}
	go c.srv.Serve(ln)
	t.Cleanup(func() { close(c.hung); c.srv.Close() })
	return c
}

func (c *flakyCollector) setMode(m string) { c.mu.Lock(); c.mode = m; c.mu.Unlock() }

func (c *flakyCollector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	mode := c.mode
	c.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch mode {
	case "503":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "collector overloaded", http.StatusServiceUnavailable)
		return
	case "hang":
		select {
		case <-c.hung:
		case <-r.Context().Done():
		}
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if v, ok := spans.At(k).Attributes().Get("url.path"); ok {
					c.paths[v.Str()]++
				}
			}
		}
	}
	c.mu.Unlock()
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

// spansWithPrefix counts the spans taken whose url.path starts with p.
func (c *flakyCollector) spansWithPrefix(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for path, k := range c.paths {
		if strings.HasPrefix(path, p) {
			n += k
		}
	}
	return n
}

// weftCounters reads weft's metrics whose names start with one of
// prefixes (summed over their labels) from /metrics.
func weftCounters(hc *http.Client, w *weftProc, prefixes ...string) (map[string]float64, error) {
	code, body, err := httpGetStatus(hc, w.url("/metrics"))
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		for _, m := range f.Metric {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[name] += v
		}
	}
	return out, nil
}

// anonRSS is a process's anonymous resident memory (heap, stacks, maps it
// wrote), without the file pages of its executable, which the kernel can
// drop and share.
func anonRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no RssAnon in /proc/%d/status", pid)
}

// outagePhase is how long each kind of outage lasts in TestBackendOutage:
// the 60 s in all.
const outagePhase = 20 * time.Second

// TestBackendOutage: the OTLP endpoint refuses connections (nothing
// listens), then answers 503, then hangs, 20 s each, then recovers, while
// traffic goes on. weft keeps running, its memory stays bounded by the
// queue, export resumes (the spans of requests made after recovery all
// arrive), and exported + dropped + queued = submitted.
func TestBackendOutage(t *testing.T) {
	s := needSuite(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	w, err := startWeftArgs(suiteWeftBin(t, s), t.TempDir(), childEnv("OTEL_BSP_SCHEDULE_DELAY=200", "OTEL_EXPORTER_OTLP_TIMEOUT=1000", "OTEL_BSP_EXPORT_TIMEOUT=2000"),
		"--exporter", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint", "http://"+addr, "--max-queue-size", "512", "--join-wait", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weft log:\n%s", tail(w.logPath, 30))
		}
		w.stop(syscall.SIGTERM, 5*time.Second)
	})
	port := startGoServer(t, uniqueName("e2e-outage-srv"))
	loadSvc := uniqueName("e2e-outage-load")
	load := func(prefix string, n int) {
		runLoad(t, loadSvc, fmt.Sprintf("http://127.0.0.1:%d/items/%s{id}", port, prefix), "r", n, 4)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	var peak int64
	watch := func() {
		if r, err := anonRSS(w.process.cmd.Process.Pid); err == nil && r > peak {
			peak = r
		}
	}
	// outage sends 50 requests every half second for outagePhase and
	// checks weft stays up.
	outage := func(kind string) {
		t.Helper()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(outagePhase)
		for i := 0; i < int(outagePhase/(500*time.Millisecond)) && time.Now().Before(end); i++ {
			load(kind+"-", 50)
			watch()
			<-tick.C
		}
		if !w.running() {
			t.Fatalf("weft %s while the backend %s", w.describeExit(), kind)
		}
	}
	rss := watchRSS(w.process.cmd.Process.Pid)
	defer rss.Stop()
	began := time.Now()
	outage("refused") // nothing listens: connection refused
	col := startFlakyCollector(t, addr)
	col.setMode("503")
	outage("503")
	col.setMode("hang")
	outage("hang")
	col.setMode("ok")
	t.Logf("outage over after %v", time.Since(began).Round(time.Second))
	load("up-", 50)
	if err := poll(30*time.Second, 200*time.Millisecond, w.process, func() error {
		if n := col.spansWithPrefix("/items/up-"); n < 100 {
			return fmt.Errorf("%d of 100 spans made after recovery arrived", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	watch()
	var last map[string]float64
	err = poll(20*time.Second, 200*time.Millisecond, w.process, func() error {
		m, err := weftCounters(hc, w, "weft_exporter_")
		if err != nil {
			return err
		}
		last = m
		sub, exp, drop, q := m["weft_exporter_spans_submitted_total"], m["weft_exporter_spans_exported_total"], m["weft_exporter_spans_dropped_total"], m["weft_exporter_queue_length"]
		if sub == 0 || exp+drop+q != sub || q != 0 {
			return fmt.Errorf("submitted %v != exported %v + dropped %v + queued %v", sub, exp, drop, q)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("exporter accounting: %v (%v)", err, last)
	}
	if last["weft_exporter_spans_dropped_total"] == 0 {
		t.Errorf("no span dropped: the outage did not overflow the queue of 512 (%v)", last)
	}
	// The queue holds 512 spans; the rest of weft's memory is what the
	// host's traffic needs, kept under its cap (--memory-limit, default).
	if r := rss.Peak(); r > heavyMemoryCap {
		t.Errorf("peak VmRSS %d MiB during the outage, over the %d MiB cap", r>>20, heavyMemoryCap>>20)
	}
	mem, _ := weftCounters(hc, w, "weft_memory_")
	t.Logf("%v from the outage's start: %v; %v; peak VmRSS %d MiB, anonymous %d MiB", time.Since(began).Round(time.Second), last, mem, rss.Peak()>>20, peak>>20)
}
