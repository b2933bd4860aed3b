// Package servicemap keeps a live map of who calls whom, drawn from the
// spans weft emits: a sink beside the exporter, fed every finished span.
//
// Nodes are services (a span's service.name), databases and peers weft
// only saw called; edges are requests from a client service to a server,
// one per protocol (http, grpc, postgresql, dns), decided the way the
// service graph metrics decide theirs (correlate.PairEdge and
// correlate.LoneEdge). Each edge keeps request and error counts and a
// small fixed-bucket latency histogram per slice of a sliding window, so
// rates and p50/p99 cover the last Window; memory is bounded by
// MaxNodes and MaxEdges, and spans beyond them are counted, not mapped.
//
// The map serves itself over HTTP (http.go): GET /map.json, the window's
// graph as JSON, and GET /map, a self-contained page that draws it.
//
// Add is called from one goroutine (the agent's event goroutine);
// Snapshot and the HTTP handlers from any. One mutex guards the map.
package servicemap
