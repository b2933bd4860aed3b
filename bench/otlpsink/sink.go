// Package otlpsink is the OTLP/gRPC trace receiver weftbench exports to:
// it keeps nothing but counts (spans per server.port), so the benchmark
// pays weft's real export cost without a backend's.
package otlpsink

import (
	"context"
	"fmt"
	"net"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"google.golang.org/grpc"
)

// Sink counts the spans it is sent.
type Sink struct {
	ptraceotlp.UnimplementedGRPCServer
	srv  *grpc.Server
	ln   net.Listener
	mu   sync.Mutex
	port map[int64]int64 // spans by their server.port attribute
	all  int64
}

// Start listens on a free loopback port.
func Start() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlp sink: listen: %w", err)
	}
	s := &Sink{srv: grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20)), ln: ln, port: map[int64]int64{}}
	ptraceotlp.RegisterGRPCServer(s.srv, s)
	go s.srv.Serve(ln) // ends with Stop
	return s, nil
}

// Endpoint is the URL weft's --otlp-endpoint takes.
func (s *Sink) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Stop ends the server.
func (s *Sink) Stop() { s.srv.Stop() }

// Export counts the request's spans.
func (s *Sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	counts := map[int64]int64{}
	var n int64
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				n++
				if v, ok := spans.At(k).Attributes().Get(string(semconv.ServerPortKey)); ok {
					counts[v.Int()]++
				}
			}
		}
	}
	s.mu.Lock()
	s.all += n
	for p, c := range counts {
		s.port[p] += c
	}
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

// Spans returns how many spans with server.port = port arrived so far,
// and how many spans in all.
func (s *Sink) Spans(port int) (forPort, all int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port[int64(port)], s.all
}
