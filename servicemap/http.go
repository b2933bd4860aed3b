package servicemap

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// page is GET /map: one file, no resource from anywhere else. It fetches
// map.json (beside it) every 2 s and draws the graph in inline SVG, nodes
// in columns by call depth. Each node is a <g class="node" data-id>, each
// edge a <g class="edge" data-source data-target> labelled with its rate,
// error rate and p99.
//
//go:embed map.html
var page []byte

// pageCSP lets the page run only its own inline script and style, and
// fetch only from where it came from.
var pageCSP = "default-src 'none'; script-src " + inlineHash("script") + "; style-src " + inlineHash("style") +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash is the CSP source of the page's one inline <tag> element.
func inlineHash(tag string) string {
	_, rest, ok := bytes.Cut(page, []byte("<"+tag+">"))
	body, _, ok2 := bytes.Cut(rest, []byte("</"+tag+">"))
	if !ok || !ok2 {
		panic("servicemap: map.html has no <" + tag + "> element")
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// PageHandler serves the service map page.
func PageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		w.Write(page)
	})
}

// JSONHandler serves m's Snapshot as JSON.
func (m *Map) JSONHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(m.Snapshot())
		if err != nil {
			http.Error(w, "encode service map: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(append(body, '\n'))
	})
}

// Register serves GET /map and GET /map.json on mux.
func (m *Map) Register(mux *http.ServeMux) {
	mux.Handle("GET /map", PageHandler())
	mux.Handle("GET /map.json", m.JSONHandler())
}
