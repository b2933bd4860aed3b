package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/weftrace/weft/servicemap"
)

// TestServiceMapRoutes: spans reach the service map beside the exporter,
// and the loopback server serves it on /map.json and /map, with its
// metrics on /metrics.
func TestServiceMapRoutes(t *testing.T) {
	p := newPipeline(t)
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.smap.RegisterMetrics(m.meter); err != nil {
		t.Fatal(err)
	}
	p.exchanges(3)
	p.corr.FlushAll()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := serveHTTP(addr, m, func() bool { return true }, p.smap, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return resp, string(b)
	}

	resp, body := get("/map.json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/map.json Content-Type %q", ct)
	}
	var snap servicemap.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("/map.json: %v\n%s", err, body)
	}
	if len(snap.Edges) != 1 || snap.Edges[0].Source != "curl" || snap.Edges[0].Target != "srv" ||
		snap.Edges[0].Requests != 3 || snap.Edges[0].Protocol != "http" || snap.Edges[0].ConnectionType != "" {
		t.Errorf("/map.json edges %+v, want curl -> srv, http, 3 requests seen from both ends", snap.Edges)
	}
	if len(snap.Nodes) != 2 {
		t.Errorf("/map.json nodes %+v, want curl and srv", snap.Nodes)
	}

	resp, body = get("/map")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<svg") {
		t.Errorf("/map: %s, %.80q", ct, body)
	}
	if _, body = get("/metrics"); !strings.Contains(body, "weft_servicemap_edges 1") ||
		!strings.Contains(body, `weft_servicemap_spans_dropped_total{reason="edge_limit"} 0`) {
		t.Errorf("/metrics lacks the service map's gauges and counters:\n%s", body)
	}
}
