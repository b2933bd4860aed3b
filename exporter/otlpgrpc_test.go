package exporter

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftrace/weft/correlate"
)

// otlpGRPCServer is a real OTLP/gRPC trace receiver on loopback that keeps
// what it is sent and answers with scripted errors first.
type otlpGRPCServer struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string

	mu    sync.Mutex
	got   []ptrace.Traces
	md    []metadata.MD
	calls int
	errs  []error
}

func startGRPCServer(t *testing.T, opts ...grpc.ServerOption) *otlpGRPCServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpGRPCServer{addr: lis.Addr().String()}
	srv := grpc.NewServer(opts...)
	ptraceotlp.RegisterGRPCServer(srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return s
}

func (s *otlpGRPCServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return ptraceotlp.NewExportResponse(), err
	}
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	s.got = append(s.got, td)
	md, _ := metadata.FromIncomingContext(ctx)
	s.md = append(s.md, md)
	return ptraceotlp.NewExportResponse(), nil
}

func (s *otlpGRPCServer) received() ([]ptrace.Traces, []metadata.MD, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got), slices.Clone(s.md), s.calls
}

// twoProcessBatch is an exchange seen from both ends: a curl client span
// and the checkout server span.
// sendTwoProcessBatch exports twoProcessBatch through an exporter made
// from cfg and shuts it down, failing the test if either step fails; it
// returns the exporter for its stats.
func sendTwoProcessBatch(t *testing.T, cfg Config) *Exporter {
	t.Helper()
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range twoProcessBatch() {
		e.Submit(s)
	}
	if err := shutdown(t, e); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return e
}

func twoProcessBatch() []correlate.Span {
	server := httpSpan(procCheckout, trace.SpanKindServer, "GET /orders/{id}", 1)
	client := httpSpan(procCurl, trace.SpanKindClient, "GET", 2)
	return []correlate.Span{server, client}
}

// checkTwoProcessTraces asserts what any OTLP backend should receive for
// twoProcessBatch with deployment.environment.name=test configured.
func checkTwoProcessTraces(t *testing.T, got []ptrace.Traces) {
	t.Helper()
	services := map[string]ptrace.ResourceSpans{}
	for _, td := range got {
		for _, rs := range td.ResourceSpans().All() {
			v, _ := rs.Resource().Attributes().Get("service.name")
			services[v.Str()] = rs
		}
	}
	if len(services) != 2 {
		t.Fatalf("received resources for %d services, want checkout and curl", len(services))
	}
	for svc, wantPID := range map[string]int64{"checkout": 4242, "curl": 777} {
		rs, ok := services[svc]
		if !ok {
			t.Errorf("no resource for %s", svc)
			continue
		}
		res := rs.Resource().Attributes()
		if v, _ := res.Get("process.pid"); v.Int() != wantPID {
			t.Errorf("%s: process.pid = %d, want %d", svc, v.Int(), wantPID)
		}
		if v, _ := res.Get("deployment.environment.name"); v.Str() != "test" {
			t.Errorf("%s: deployment.environment.name = %q, want the configured test", svc, v.Str())
		}
		spans := rs.ScopeSpans().At(0).Spans()
		if spans.Len() != 1 {
			t.Errorf("%s: %d spans, want 1", svc, spans.Len())
			continue
		}
		attrs := spans.At(0).Attributes()
		if v, _ := attrs.Get("http.request.method"); v.Str() != "GET" {
			t.Errorf("%s: http.request.method = %q, want GET", svc, v.Str())
		}
		if v, _ := attrs.Get("http.response.status_code"); v.Int() != 200 {
			t.Errorf("%s: http.response.status_code = %d, want 200", svc, v.Int())
		}
		if attrs.Len() != 10 {
			t.Errorf("%s: %d attributes, want 10", svc, attrs.Len())
		}
	}
}

func otlpConfig(protocol, endpoint string) Config {
	c := pipelineConfig()
	c.Exporter = ExporterOTLP
	c.Protocol = protocol
	c.Endpoint = endpoint
	c.ResourceAttributes = map[string]string{"deployment.environment.name": "test"}
	return c
}

func TestOTLPGRPCEndToEnd(t *testing.T) {
	srv := startGRPCServer(t)
	cfg := otlpConfig(ProtocolGRPC, "http://"+srv.addr)
	cfg.Headers = map[string]string{"Authorization": "Bearer t0ken"}
	cfg.Compression = CompressionGzip
	e := sendTwoProcessBatch(t, cfg)
	got, md, _ := srv.received()
	checkTwoProcessTraces(t, got)
	if len(md) == 0 || !slices.Equal(md[0].Get("authorization"), []string{"Bearer t0ken"}) {
		t.Errorf("metadata = %v, want authorization: Bearer t0ken", md)
	}
	if ua := md[0].Get("user-agent"); len(ua) == 0 || !strings.HasPrefix(ua[0], "weft/") {
		t.Errorf("user-agent = %v, want weft/...", ua)
	}
	if st := e.Stats(); st.SpansExported != 2 {
		t.Errorf("stats = %+v, want 2 exported", st)
	}
}

func TestOTLPGRPCHostPortInsecure(t *testing.T) {
	srv := startGRPCServer(t)
	cfg := otlpConfig(ProtocolGRPC, srv.addr) // no scheme: TLS unless insecure
	cfg.Insecure = true
	sendTwoProcessBatch(t, cfg)
	got, _, _ := srv.received()
	checkTwoProcessTraces(t, got)
}

func TestOTLPGRPCTLSWithCAFile(t *testing.T) {
	pki := newTestPKI(t)
	srv := startGRPCServer(t, grpc.Creds(credentials.NewTLS(pki.serverTLS)))
	cfg := otlpConfig(ProtocolGRPC, "https://"+srv.addr)
	cfg.Certificate = pki.caFile
	sendTwoProcessBatch(t, cfg)
	got, _, _ := srv.received()
	checkTwoProcessTraces(t, got)
}

// TestOTLPGRPCMutualTLS: the same over gRPC.
func TestOTLPGRPCMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := startGRPCServer(t, grpc.Creds(credentials.NewTLS(pki.mutualTLS)))
	cfg := otlpConfig(ProtocolGRPC, "https://"+srv.addr)
	cfg.Certificate = pki.caFile
	anonymous, err := newGRPCSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Shutdown(context.Background())
	if err := anonymous.Export(context.Background(), ptrace.NewTraces()); err == nil {
		t.Error("Export without a client certificate succeeded; the server requires one")
	}
	cfg.ClientCertificate, cfg.ClientKey = pki.clientCert, pki.clientKey
	sendTwoProcessBatch(t, cfg)
	got, _, _ := srv.received()
	checkTwoProcessTraces(t, got)
}

func TestOTLPGRPCRetriesUnavailable(t *testing.T) {
	srv := startGRPCServer(t)
	srv.errs = []error{status.Error(codes.Unavailable, "collector restarting")}
	e, err := New(otlpConfig(ProtocolGRPC, "http://"+srv.addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range twoProcessBatch() {
		e.Submit(s)
	}
	if err := shutdown(t, e); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got, _, calls := srv.received()
	if calls != 2 {
		t.Errorf("server saw %d calls, want 2 (one refused, one retried)", calls)
	}
	checkTwoProcessTraces(t, got)
	if st := e.Stats(); st.Retries != 1 || st.SpansExported != 2 {
		t.Errorf("stats = %+v, want 1 retry and 2 exported", st)
	}
}

func TestOTLPGRPCNoRetryOnInvalidArgument(t *testing.T) {
	srv := startGRPCServer(t)
	srv.errs = []error{status.Error(codes.InvalidArgument, "bad span")}
	e, err := New(otlpConfig(ProtocolGRPC, "http://"+srv.addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range twoProcessBatch() {
		e.Submit(s)
	}
	err = shutdown(t, e)
	if err == nil || !strings.Contains(err.Error(), "2 spans not sent") {
		t.Errorf("shutdown = %v, want 2 spans not sent", err)
	}
	if _, _, calls := srv.received(); calls != 1 {
		t.Errorf("server saw %d calls, want 1", calls)
	}
	if st := e.Stats(); st.Retries != 0 || st.SpansDroppedSendFailed != 2 {
		t.Errorf("stats = %+v, want no retry and 2 dropped", st)
	}
}

func TestGRPCErrorClassification(t *testing.T) {
	withRetryInfo := func(c codes.Code, d time.Duration) error {
		st, err := status.New(c, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	tests := []struct {
		err       error
		retryable bool
		after     time.Duration
	}{
		{status.Error(codes.Unavailable, ""), true, 0},
		{status.Error(codes.DeadlineExceeded, ""), true, 0},
		{status.Error(codes.Aborted, ""), true, 0},
		{status.Error(codes.OutOfRange, ""), true, 0},
		{status.Error(codes.DataLoss, ""), true, 0},
		{status.Error(codes.Canceled, ""), true, 0},
		{status.Error(codes.ResourceExhausted, ""), false, 0},
		{withRetryInfo(codes.ResourceExhausted, 3*time.Second), true, 3 * time.Second},
		{withRetryInfo(codes.Unavailable, time.Second), true, time.Second},
		{status.Error(codes.InvalidArgument, ""), false, 0},
		{status.Error(codes.Unauthenticated, ""), false, 0},
		{status.Error(codes.PermissionDenied, ""), false, 0},
		{status.Error(codes.Unimplemented, ""), false, 0},
		{status.Error(codes.Internal, ""), false, 0},
		{errors.New("not a status"), false, 0},
	}
	for _, tt := range tests {
		err := grpcError(tt.err)
		ok, after := retryable(err)
		if ok != tt.retryable || after != tt.after {
			t.Errorf("%v: retryable %v after %v, want %v after %v", tt.err, ok, after, tt.retryable, tt.after)
		}
		if !strings.HasPrefix(err.Error(), "send otlp grpc: ") || !errors.Is(err, tt.err) {
			t.Errorf("%v: wrapped as %q, want send otlp grpc: wrapping it", tt.err, err)
		}
	}
}

func TestGRPCTarget(t *testing.T) {
	tests := []struct {
		endpoint string
		insecure bool
		target   string
		tls      bool
		bad      bool
	}{
		{endpoint: "http://c:4317", target: "c:4317"},
		{endpoint: "http://c:4317", insecure: true, target: "c:4317"},
		{endpoint: "https://c:4317", target: "c:4317", tls: true},
		{endpoint: "https://c:4317", insecure: true, target: "c:4317", tls: true}, // the scheme decides
		{endpoint: "c:4317", target: "c:4317", tls: true},
		{endpoint: "c:4317", insecure: true, target: "c:4317"},
		{endpoint: "unix:///run/otel.sock", bad: true},
		{endpoint: "http://", bad: true},
		{endpoint: "", bad: true},
	}
	for _, tt := range tests {
		target, useTLS, err := grpcTarget(tt.endpoint, tt.insecure)
		if (err != nil) != tt.bad || target != tt.target || useTLS != tt.tls {
			t.Errorf("grpcTarget(%q, %v) = %q, %v, %v; want %q, %v, bad=%v", tt.endpoint, tt.insecure, target, useTLS, err, tt.target, tt.tls, tt.bad)
		}
	}
}
