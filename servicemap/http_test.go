package servicemap

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJSONHandler: /map.json has the documented shape, field names
// included.
func TestJSONHandler(t *testing.T) {
	m, clk := newTestMap(Config{})
	clk.advance(10 * time.Second)
	for i := range 20 {
		addPair(m, "frontend", "orders", 10*time.Millisecond, i == 0)
	}
	mux := http.NewServeMux()
	m.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/map.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /map.json: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	want := map[string]any{
		"window_seconds": 60.0,
		"nodes": []any{
			map[string]any{"id": "frontend", "kind": "service", "requests_per_second": 0.0, "error_rate": 0.0},
			map[string]any{"id": "orders", "kind": "service", "requests_per_second": 2.0, "error_rate": 0.05},
		},
		"edges": []any{map[string]any{
			"source": "frontend", "target": "orders", "protocol": "http", "connection_type": "",
			"requests": 20.0, "requests_per_second": 2.0, "error_rate": 0.05, "p50_ms": 10.0, "p99_ms": 10.0,
		}},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("/map.json\n got %s\nwant %s", g, w)
	}

	// An empty map is empty lists, not nulls: the page iterates them.
	rec = httptest.NewRecorder()
	New(Config{}).JSONHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/map.json", nil))
	if body := strings.TrimSpace(rec.Body.String()); body != `{"window_seconds":60,"nodes":[],"edges":[]}` {
		t.Errorf("empty map: %s", body)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPage: /map is one self-contained file: nothing it loads comes from
// elsewhere, and its CSP admits exactly its own script and style.
func TestPage(t *testing.T) {
	mux := http.NewServeMux()
	New(Config{}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/map", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /map: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.Bytes()
	if !bytes.Equal(body, page) {
		t.Error("GET /map is not the embedded page")
	}
	// No src/href attributes, imports or url()s but the marker's own
	// fragment: the page loads nothing.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\s(src|href)\s*=`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)url\((?:[^#)]|$)`),
		regexp.MustCompile(`(?i)<(link|img|iframe|object|embed)\b`),
		regexp.MustCompile(`(?i)<script[^>]+src`),
	} {
		if loc := re.FindIndex(body); loc != nil {
			t.Errorf("page refers to a resource: %q", body[max(loc[0]-20, 0):min(loc[1]+40, len(body))])
		}
	}
	if n := bytes.Count(body, []byte("<script")); n != 1 {
		t.Errorf("%d script elements, want 1 inline", n)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "script-src 'sha256-", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	// The page asks for map.json beside it and polls every 2 s.
	for _, want := range []string{`fetch("map.json"`, "setTimeout(poll, 2000)", `"class": "node "`, `"data-id": n.id`, `"data-source": e.source`, `"data-target": e.target`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
}
