package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsEndpoint: weft's --http-addr serves Prometheus text with weft_
// metrics on /metrics, and 200 on /healthz and /readyz.
func TestMetricsEndpoint(t *testing.T) {
	s := needWeft(t)
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/readyz"} {
		code, body, err := httpGetStatus(hc, s.weft.url(path))
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %q %v, want 200", path, code, body, err)
		}
	}
	code, body, err := httpGetStatus(hc, s.weft.url("/metrics"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v, want 200; body:\n%s", code, err, firstLines(body, 20))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics: not Prometheus text: %v; body:\n%s", err, firstLines(body, 20))
	}
	var weft []string
	for name := range families {
		if strings.HasPrefix(name, "weft_") {
			weft = append(weft, name)
		}
	}
	sort.Strings(weft)
	if len(weft) == 0 {
		t.Fatalf("GET /metrics: no weft_ metric among %d families; body:\n%s", len(families), firstLines(body, 40))
	}
	t.Logf("weft metrics: %s", strings.Join(weft, " "))
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// TestMetricsMapEntries: /metrics has the fill of every kernel hash map,
// weft_bpf_map_entries{map} and weft_bpf_map_max_entries{map}; while the
// test holds a connection to a traced server open, conns is not empty
// (counts are at most 10 s old, so the test polls).
func TestMetricsMapEntries(t *testing.T) {
	s := needWeft(t)
	port := startGoServer(t, uniqueName("e2e-gosrv"))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Read(make([]byte, 512))
	hc := &http.Client{Timeout: 5 * time.Second}
	gauge := func(families map[string]*dto.MetricFamily, name, m string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "map" && l.GetValue() == m {
					return mt.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	var last string
	err = poll(25*time.Second, 500*time.Millisecond, s.weft.process, func() error {
		code, body, err := httpGetStatus(hc, s.weft.url("/metrics"))
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /metrics: %d %v", code, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			return err
		}
		for _, m := range []string{"conns", "procs_seen", "go_procs", "go_cause", "fd_cause", "ssl_fds"} {
			n, ok1 := gauge(families, "weft_bpf_map_entries", m)
			capacity, ok2 := gauge(families, "weft_bpf_map_max_entries", m)
			if !ok1 || !ok2 || capacity <= 0 || n > capacity {
				return fmt.Errorf("map %s: entries %v (%v), max %v (%v)", m, n, ok1, capacity, ok2)
			}
		}
		n, _ := gauge(families, "weft_bpf_map_entries", "conns")
		capacity, _ := gauge(families, "weft_bpf_map_max_entries", "conns")
		last = fmt.Sprintf("conns: %v of %v", n, capacity)
		if capacity != 65536 {
			return fmt.Errorf("conns max entries %v, want the C side's 65536", capacity)
		}
		if n == 0 {
			return errors.New("conns has no entry while a connection is open")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(last)
}
