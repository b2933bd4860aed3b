package exporter

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// otlpHTTPServer is a real OTLP/HTTP receiver that decodes the protobuf
// request, keeps it, and answers scripted responses first.
type otlpHTTPServer struct {
	*httptest.Server

	mu        sync.Mutex
	got       []ptrace.Traces
	requests  []*http.Request
	calls     int
	responses []func(http.ResponseWriter)
}

func newOTLPHTTPServer(t *testing.T, tlsConf *pkiServer) *otlpHTTPServer {
	t.Helper()
	s := &otlpHTTPServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	if tlsConf != nil {
		s.TLS = tlsConf.TLS
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// pkiServer carries the server side of a testPKI into newOTLPHTTPServer.
type pkiServer struct{ TLS *tls.Config }

func (s *otlpHTTPServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.requests = append(s.requests, r.Clone(context.Background()))
	if len(s.responses) > 0 {
		respond := s.responses[0]
		s.responses = s.responses[1:]
		respond(w)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(data); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.got = append(s.got, req.Traces())
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (s *otlpHTTPServer) received() ([]ptrace.Traces, []*http.Request, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got), slices.Clone(s.requests), s.calls
}

func (s *otlpHTTPServer) script(responses ...func(http.ResponseWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responses = responses
}

func respondStatus(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func TestOTLPHTTPEndToEnd(t *testing.T) {
	srv := newOTLPHTTPServer(t, nil)
	cfg := otlpConfig(ProtocolHTTPProtobuf, srv.URL)
	cfg.Headers = map[string]string{"X-Api-Key": "k3y"}
	cfg.Compression = CompressionGzip
	sendTwoProcessBatch(t, cfg)
	got, reqs, _ := srv.received()
	checkTwoProcessTraces(t, got)
	r := reqs[0]
	if r.URL.Path != "/v1/traces" {
		t.Errorf("path = %q, want /v1/traces appended to the generic endpoint", r.URL.Path)
	}
	if r.Header.Get("X-Api-Key") != "k3y" || r.Header.Get("Content-Encoding") != "gzip" ||
		!strings.HasPrefix(r.Header.Get("User-Agent"), "weft/") {
		t.Errorf("headers = %v, want X-Api-Key, gzip and a weft User-Agent", r.Header)
	}
}

func TestOTLPHTTPTracesEndpointUsedAsIs(t *testing.T) {
	srv := newOTLPHTTPServer(t, nil)
	cfg := otlpConfig(ProtocolHTTPProtobuf, "")
	cfg.TracesEndpoint = srv.URL + "/custom/traces"
	sendTwoProcessBatch(t, cfg)
	got, reqs, _ := srv.received()
	checkTwoProcessTraces(t, got)
	if reqs[0].URL.Path != "/custom/traces" || reqs[0].Header.Get("Content-Encoding") != "" {
		t.Errorf("path %q encoding %q, want /custom/traces uncompressed", reqs[0].URL.Path, reqs[0].Header.Get("Content-Encoding"))
	}
}

func TestOTLPHTTPRetriesThenSucceeds(t *testing.T) {
	srv := newOTLPHTTPServer(t, nil)
	srv.script(
		respondStatus(http.StatusServiceUnavailable, "Retry-After", "0"),
		respondStatus(http.StatusTooManyRequests),
		respondStatus(http.StatusBadGateway),
		respondStatus(http.StatusGatewayTimeout),
	)
	e, err := New(otlpConfig(ProtocolHTTPProtobuf, srv.URL), nil)
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
	checkTwoProcessTraces(t, got)
	if st := e.Stats(); calls != 5 || st.Retries != 4 || st.ExportErrors != 4 {
		t.Errorf("calls = %d, stats = %+v; want 5 calls, 4 retries", calls, st)
	}
}

func TestOTLPHTTPNoRetryOnBadRequest(t *testing.T) {
	srv := newOTLPHTTPServer(t, nil)
	srv.script(respondStatus(http.StatusBadRequest))
	e, err := New(otlpConfig(ProtocolHTTPProtobuf, srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range twoProcessBatch() {
		e.Submit(s)
	}
	if err := shutdown(t, e); err == nil {
		t.Error("shutdown = nil, want the 2 dropped spans reported")
	}
	if _, _, calls := srv.received(); calls != 1 {
		t.Errorf("calls = %d, want 1", calls)
	}
	if st := e.Stats(); st.SpansDroppedSendFailed != 2 || st.Retries != 0 {
		t.Errorf("stats = %+v, want 2 dropped and no retry", st)
	}
}

// TestHTTPSenderErrors checks what one export reports, without the pipeline.
func TestHTTPSenderErrors(t *testing.T) {
	statusBody, _ := proto.Marshal(&spb.Status{Code: 3, Message: "span name too long"})
	partial := ptraceotlp.NewExportResponse()
	partial.PartialSuccess().SetRejectedSpans(1)
	partial.PartialSuccess().SetErrorMessage("too old")
	partialBody, _ := partial.MarshalProto()

	tests := []struct {
		name      string
		respond   func(http.ResponseWriter)
		retryable bool
		after     time.Duration
		msg       string // in the error; empty for success
		rejected  int64
	}{
		{name: "ok", respond: respondStatus(http.StatusOK)},
		{name: "429 with seconds", respond: respondStatus(http.StatusTooManyRequests, "Retry-After", "7"), retryable: true, after: 7 * time.Second, msg: "429 Too Many Requests"},
		{name: "503 without hint", respond: respondStatus(http.StatusServiceUnavailable), retryable: true, msg: "503 Service Unavailable"},
		{name: "400 with status body", respond: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(statusBody)
		}, msg: "send otlp http: 400 Bad Request: span name too long"},
		{name: "500 text body", respond: func(w http.ResponseWriter) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, msg: "500 Internal Server Error: boom"},
		{name: "401", respond: respondStatus(http.StatusUnauthorized), msg: "401 Unauthorized: no message"},
		{name: "partial success", respond: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(partialBody)
		}, msg: "rejected 1 spans: too old", rejected: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newOTLPHTTPServer(t, nil)
			srv.script(tt.respond)
			s, err := newHTTPSender(otlpConfig(ProtocolHTTPProtobuf, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			err = s.Export(context.Background(), newConverter("v", nil).convert(twoProcessBatch()))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Export = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Export = %v, want an error with %q", err, tt.msg)
			}
			ok, after := retryable(err)
			if ok != tt.retryable || after != tt.after {
				t.Errorf("retryable %v after %v, want %v after %v", ok, after, tt.retryable, tt.after)
			}
			if ps, isPS := err.(*PartialSuccessError); isPS != (tt.rejected > 0) || (isPS && ps.Rejected != tt.rejected) {
				t.Errorf("error %T %v, want rejected=%d", err, err, tt.rejected)
			}
		})
	}
}

func TestHTTPSenderConnectionRefusedIsRetryable(t *testing.T) {
	srv := newOTLPHTTPServer(t, nil)
	url := srv.URL
	srv.Close() // nothing listens there now
	s, err := newHTTPSender(otlpConfig(ProtocolHTTPProtobuf, url))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	err = s.Export(context.Background(), ptrace.NewTraces())
	if ok, _ := retryable(err); err == nil || !ok {
		t.Errorf("Export to a closed port = %v, want a retryable error", err)
	}
}

func TestOTLPHTTPTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := newOTLPHTTPServer(t, &pkiServer{TLS: pki.serverTLS})
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("server URL %q is not https", srv.URL)
	}

	// Without the CA the server is not trusted.
	untrusting, err := newHTTPSender(otlpConfig(ProtocolHTTPProtobuf, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Shutdown(context.Background())
	if err := untrusting.Export(context.Background(), ptrace.NewTraces()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Export without the CA = %v, want a certificate error", err)
	}

	cfg := otlpConfig(ProtocolHTTPProtobuf, srv.URL)
	cfg.Certificate = pki.caFile
	sendTwoProcessBatch(t, cfg)
	got, _, _ := srv.received()
	checkTwoProcessTraces(t, got)
}

// TestOTLPHTTPMutualTLS: a collector that requires a client certificate
// refuses weft without one and takes its spans with one.
func TestOTLPHTTPMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := newOTLPHTTPServer(t, &pkiServer{TLS: pki.mutualTLS})
	cfg := otlpConfig(ProtocolHTTPProtobuf, srv.URL)
	cfg.Certificate = pki.caFile
	anonymous, err := newHTTPSender(cfg)
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

// TestClientCertificateConfig: half a key pair, or an unreadable one, is a
// start-up error naming what is missing.
func TestClientCertificateConfig(t *testing.T) {
	cfg := otlpConfig(ProtocolHTTPProtobuf, "https://127.0.0.1:1")
	cfg.ClientCertificate = "testdata/missing.pem"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "both a client certificate and its key") {
		t.Errorf("New with a certificate and no key = %v", err)
	}
	cfg.ClientKey = "testdata/missing-key.pem"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "read otlp client certificate") {
		t.Errorf("New with missing key pair files = %v", err)
	}
}

func TestBadCertificateFile(t *testing.T) {
	cfg := otlpConfig(ProtocolHTTPProtobuf, "https://127.0.0.1:1")
	cfg.Certificate = "testdata/empty.json" // exists, holds no PEM
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New with a non-PEM CA file = %v, want no PEM certificate", err)
	}
	cfg.Certificate = "testdata/missing.pem"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "read otlp certificate") {
		t.Errorf("New with a missing CA file = %v, want read otlp certificate", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"120", 2 * time.Minute},
		{"-3", 0},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0}, // already past
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
