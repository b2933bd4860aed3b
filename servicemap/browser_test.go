package servicemap

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// browserMap is what the browser test serves as /map.json: a chain from
// outside through two services to a database, a resolver, a call back to
// an earlier column, a service calling itself, and a name that would be
// markup if the page wrote it as HTML.
var browserMap = Snapshot{
	WindowSeconds: 60,
	Nodes: []NodeStats{
		{ID: "127.0.0.53", Kind: KindExternal},
		{ID: "<b>evil</b>", Kind: KindExternal},
		{ID: "frontend", Kind: KindService, RequestsPerSecond: 12.5, ErrorRate: 0.02},
		{ID: "orders", Kind: KindService, RequestsPerSecond: 8, ErrorRate: 0.1},
		{ID: "shop", Kind: KindDatabase, RequestsPerSecond: 20},
		{ID: "user", Kind: KindExternal},
	},
	Edges: []EdgeStats{
		{Source: "frontend", Target: "127.0.0.53", Protocol: "dns", ConnectionType: "virtual_node", Requests: 60, RequestsPerSecond: 1, P50Ms: 0.4, P99Ms: 2},
		{Source: "frontend", Target: "orders", Protocol: "grpc", Requests: 480, RequestsPerSecond: 8, ErrorRate: 0.1, P50Ms: 12, P99Ms: 180},
		{Source: "orders", Target: "<b>evil</b>", Protocol: "http", ConnectionType: "virtual_node", Requests: 6, RequestsPerSecond: 0.1, P50Ms: 30, P99Ms: 31},
		{Source: "orders", Target: "frontend", Protocol: "http", Requests: 6, RequestsPerSecond: 0.1, P50Ms: 3, P99Ms: 4},
		{Source: "orders", Target: "orders", Protocol: "http", Requests: 6, RequestsPerSecond: 0.1, P50Ms: 1, P99Ms: 1},
		{Source: "orders", Target: "shop", Protocol: "postgresql", ConnectionType: "database", Requests: 1200, RequestsPerSecond: 20, P50Ms: 1.5, P99Ms: 9.5},
		{Source: "user", Target: "frontend", Protocol: "http", ConnectionType: "virtual_node", Requests: 750, RequestsPerSecond: 12.5, ErrorRate: 0.02, P50Ms: 20, P99Ms: 450},
	},
}

// TestBrowser loads /map in headless Chromium against a fixed map.json
// and checks the DOM the page drew, then saves a screenshot. It installs
// chromium when root and it is missing, and skips only when it still
// cannot be found.
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	body, err := json.Marshal(browserMap)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /map", PageHandler())
	mux.HandleFunc("GET /map.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/map"
	artifacts := artifactDir(t)

	dom := runChromium(t, chromium, "--dump-dom", url)
	if err := os.WriteFile(filepath.Join(artifacts, "servicemap-dom.html"), dom, 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatalf("parse the dumped DOM: %v", err)
	}
	nodes := map[string]string{}    // data-id -> class
	edges := map[[2]string]string{} // -> label
	protos := map[[2]string]string{}
	scripts := 0
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "script" {
			scripts++
		}
		if n.Data == "b" {
			t.Errorf("a service name became markup: <b> in the DOM")
		}
		if n.Data != "g" {
			continue
		}
		classes := strings.Fields(attr(n, "class"))
		switch {
		case slices.Contains(classes, "node"):
			nodes[attr(n, "data-id")] = attr(n, "class")
		case slices.Contains(classes, "edge"):
			k := [2]string{attr(n, "data-source"), attr(n, "data-target")}
			edges[k], protos[k] = textOf(n, "label"), textOf(n, "proto")
		}
	}
	if len(nodes) == 0 {
		t.Fatalf("no nodes drawn; status %q; DOM:\n%s", statusText(doc), dom)
	}
	for _, n := range browserMap.Nodes {
		if c, ok := nodes[n.ID]; !ok {
			t.Errorf("node %q not drawn", n.ID)
		} else if c != "node "+n.Kind {
			t.Errorf("node %q class %q, want %q", n.ID, c, "node "+n.Kind)
		}
	}
	if len(nodes) != len(browserMap.Nodes) {
		t.Errorf("%d nodes drawn, want %d: %v", len(nodes), len(browserMap.Nodes), nodes)
	}
	wantLabels := map[[2]string]string{
		{"user", "frontend"}:   "12.5/s · 2.0% err · p99 450ms",
		{"frontend", "orders"}: "8.00/s · 10% err · p99 180ms",
		{"orders", "shop"}:     "20.0/s · 0% err · p99 9.5ms",
	}
	for _, e := range browserMap.Edges {
		k := [2]string{e.Source, e.Target}
		l, ok := edges[k]
		switch {
		case !ok:
			t.Errorf("edge %s -> %s not drawn", e.Source, e.Target)
		case wantLabels[k] != "" && l != wantLabels[k]:
			t.Errorf("edge %s -> %s label %q, want %q", e.Source, e.Target, l, wantLabels[k])
		case !strings.Contains(l, "/s") || !strings.Contains(l, "err") || !strings.Contains(l, "p99"):
			t.Errorf("edge %s -> %s label %q lacks rate, error rate or p99", e.Source, e.Target, l)
		}
		if p := protos[k]; ok && p != e.Protocol {
			t.Errorf("edge %s -> %s protocol %q, want %q", e.Source, e.Target, p, e.Protocol)
		}
	}
	if len(edges) != len(browserMap.Edges) {
		t.Errorf("%d edges drawn, want %d", len(edges), len(browserMap.Edges))
	}
	if scripts != 1 {
		t.Errorf("%d script elements in the DOM, want the page's one", scripts)
	}
	if s := statusText(doc); !strings.Contains(s, "6 nodes, 7 edges") {
		t.Errorf("status %q", s)
	}

	shot := filepath.Join(artifacts, "servicemap.png")
	runChromium(t, chromium, "--window-size=1200,800", "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	b := img.Bounds()
	if b.Dx() != 1200 || b.Dy() != 800 {
		t.Errorf("screenshot is %v, want 1200x800", b)
	}
	// Not blank: the page drew more than its background.
	colors := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colors) < 10 {
		t.Errorf("screenshot has %d colours: blank?", len(colors))
	}
	t.Logf("screenshot: %s", shot)
}

// findChromium returns chromium's path, installing the Debian package
// when root and it is missing; it skips the test only when there is still
// none.
func findChromium(t *testing.T) string {
	t.Helper()
	look := func() string {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := look(); p != "" {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skip("chromium not found and not root: apt-get install -y chromium to run the browser test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	for _, args := range [][]string{{"install", "-y", "chromium"}, {"update"}, {"install", "-y", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err == nil && args[0] == "install" {
			break
		}
	}
	if p := look(); p != "" {
		return p
	}
	t.Skipf("chromium not found after apt-get install -y chromium:\n%s", tail(out.String(), 2000))
	return ""
}

// runChromium runs headless chromium on url with args, after the page has
// had 5 s of virtual time to fetch and draw, and returns its stdout.
func runChromium(t *testing.T, chromium string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", chromium, strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return stdout.Bytes()
}

// artifactDir is $WEFT_TEST_ARTIFACTS when set, else a temporary
// directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WEFT_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text of g's <text class=class> element.
func textOf(g *html.Node, class string) string {
	for n := range g.Descendants() {
		if n.Type == html.ElementNode && n.Data == "text" && attr(n, "class") == class {
			return text(n)
		}
	}
	return ""
}

func statusText(doc *html.Node) string {
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && attr(n, "id") == "status" {
			return text(n)
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
