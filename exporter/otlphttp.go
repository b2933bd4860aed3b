package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// maxResponseBody bounds what is read of a collector's answer.
const maxResponseBody = 64 << 10

// httpSender exports OTLP/HTTP protobuf by POSTing to the traces URL.
type httpSender struct {
	url     string
	client  *http.Client
	headers http.Header
	gz      *gzip.Writer // reused: a gzip writer is large; nil without gzip
}

func newHTTPSender(cfg Config) (*httpSender, error) {
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	s := &httpSender{
		url:     cfg.ResolvedEndpoint(),
		client:  &http.Client{Transport: tr},
		headers: make(http.Header),
	}
	for k, v := range cfg.Headers {
		s.headers.Set(k, v)
	}
	s.headers.Set("Content-Type", "application/x-protobuf")
	if s.headers.Get("User-Agent") == "" {
		s.headers.Set("User-Agent", userAgent())
	}
	if cfg.Compression == CompressionGzip {
		s.headers.Set("Content-Encoding", "gzip")
		s.gz = gzip.NewWriter(io.Discard)
	}
	return s, nil
}

func (s *httpSender) Export(ctx context.Context, td ptrace.Traces) error {
	body, err := s.body(td)
	if err != nil {
		return fmt.Errorf("send otlp http: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send otlp http: %w", err)
	}
	req.Header = s.headers.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		// Refused, reset or timed out: the collector may be restarting,
		// as gRPC's UNAVAILABLE says for the same causes.
		return Retryable(fmt.Errorf("send otlp http: %w", err), 0)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		data = nil // the status code still says what happened
	}
	_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return partialSuccess(data)
	}
	err = fmt.Errorf("send otlp http: %s: %s", resp.Status, errorMessage(data, resp.Header.Get("Content-Type")))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return Retryable(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return err
}

// body marshals the request, gzipped when configured.
func (s *httpSender) body(td ptrace.Traces) ([]byte, error) {
	raw, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil || s.gz == nil {
		return raw, err
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) / 4)
	s.gz.Reset(&buf)
	if _, err := s.gz.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := s.gz.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// partialSuccess reads a success response; an empty body is a full success.
func partialSuccess(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(data); err != nil {
		return nil // the status said success; a body we cannot read changes nothing
	}
	if ps := resp.PartialSuccess(); ps.RejectedSpans() > 0 {
		return &PartialSuccessError{Rejected: ps.RejectedSpans(), Message: ps.ErrorMessage()}
	}
	return nil
}

// errorMessage takes the message from an OTLP error body (a protobuf
// google.rpc.Status), or the start of a body of any other kind.
func errorMessage(data []byte, contentType string) string {
	if strings.HasPrefix(contentType, "application/x-protobuf") {
		var st spb.Status
		if proto.Unmarshal(data, &st) == nil && st.GetMessage() != "" {
			return st.GetMessage()
		}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = truncate(msg, 200) + "..."
	}
	if msg == "" {
		return "no message"
	}
	return msg
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func (s *httpSender) Shutdown(context.Context) error {
	s.client.CloseIdleConnections()
	return nil
}
