package exporter

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcSender exports over OTLP/gRPC on one long-lived connection.
type grpcSender struct {
	conn     *grpc.ClientConn
	client   ptraceotlp.GRPCClient
	md       metadata.MD
	callOpts []grpc.CallOption
}

func newGRPCSender(cfg Config) (*grpcSender, error) {
	target, useTLS, err := grpcTarget(cfg.ResolvedEndpoint(), cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("otlp grpc endpoint: %w", err)
	}
	creds := insecure.NewCredentials()
	if useTLS {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(userAgent()))
	if err != nil {
		return nil, fmt.Errorf("otlp grpc client: %w", err)
	}
	s := &grpcSender{conn: conn, client: ptraceotlp.NewGRPCClient(conn)}
	if len(cfg.Headers) > 0 {
		s.md = metadata.New(cfg.Headers)
	}
	if cfg.Compression == CompressionGzip {
		s.callOpts = append(s.callOpts, grpc.UseCompressor(gzip.Name))
	}
	return s, nil
}

// grpcTarget turns an OTLP gRPC endpoint into a dial target. A URL's scheme
// decides TLS (http plaintext, https TLS); a bare host:port uses TLS unless
// insecure is set, as the specification says.
func grpcTarget(endpoint string, insecure bool) (target string, useTLS bool, err error) {
	if !strings.Contains(endpoint, "://") {
		if endpoint == "" || strings.ContainsAny(endpoint, "/ ") {
			return "", false, fmt.Errorf("%q is neither a URL nor host:port", endpoint)
		}
		return endpoint, !insecure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, err
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("%q has no host", endpoint)
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	default:
		return "", false, fmt.Errorf("%q needs an http:// or https:// scheme", endpoint)
	}
}

func (s *grpcSender) Export(ctx context.Context, td ptrace.Traces) error {
	if s.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, s.md)
	}
	resp, err := s.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td), s.callOpts...)
	if err != nil {
		return grpcError(err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedSpans() > 0 {
		return &PartialSuccessError{Rejected: ps.RejectedSpans(), Message: ps.ErrorMessage()}
	}
	return nil
}

// grpcError wraps err and marks it retryable by the OTLP specification's
// table of gRPC codes; RESOURCE_EXHAUSTED only when the server says, with a
// RetryInfo, that it will recover.
func grpcError(err error) error {
	wrapped := fmt.Errorf("send otlp grpc: %w", err)
	st, ok := status.FromError(err)
	if !ok {
		return wrapped
	}
	var after time.Duration
	hasRetryInfo := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hasRetryInfo = true
			after = ri.GetRetryDelay().AsDuration()
		}
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted,
		codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return Retryable(wrapped, after)
	case codes.ResourceExhausted:
		if hasRetryInfo {
			return Retryable(wrapped, after)
		}
	}
	return wrapped
}

func (s *grpcSender) Shutdown(context.Context) error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close otlp grpc connection: %w", err)
	}
	return nil
}
