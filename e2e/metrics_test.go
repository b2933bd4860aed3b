package e2e

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

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
