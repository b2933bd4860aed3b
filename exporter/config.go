package exporter

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Exporter names accepted in Config.Exporter (OTEL_TRACES_EXPORTER).
const (
	ExporterOTLP    = "otlp"
	ExporterConsole = "console"
	ExporterJSONL   = "jsonl"
	ExporterNone    = "none"
)

// OTLP transport protocols accepted in Config.Protocol.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Compression values accepted in Config.Compression.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// Default OTLP endpoints from the OTel specification, used when the exporter
// is otlp and no endpoint is configured.
const (
	DefaultGRPCEndpoint = "http://localhost:4317"
	DefaultHTTPEndpoint = "http://localhost:4318"
	tracesPath          = "/v1/traces"
)

// Config is everything the exporter can be told. Fields are plain values so
// the command line can mirror each one as a flag; FromEnv fills them from the
// OTel SDK environment variables named beside each field.
type Config struct {
	// Exporter picks the sender: otlp, console, jsonl or none
	// (OTEL_TRACES_EXPORTER). Empty means otlp when an endpoint is set,
	// else console.
	Exporter string

	// Endpoint is the base OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT). For
	// http/protobuf, /v1/traces is appended to its path.
	Endpoint string
	// TracesEndpoint is the traces endpoint, used exactly as given and
	// preferred over Endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
	TracesEndpoint string
	// Protocol is grpc or http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL); the
	// spec's default, http/protobuf, applies even to port 4317.
	Protocol string
	// Headers are sent with every export: HTTP headers or gRPC metadata
	// (OTEL_EXPORTER_OTLP_HEADERS).
	Headers map[string]string
	// Timeout bounds one export attempt (OTEL_EXPORTER_OTLP_TIMEOUT).
	Timeout time.Duration
	// Certificate is a PEM file of CAs trusted for the collector's TLS
	// certificate instead of the system roots (OTEL_EXPORTER_OTLP_CERTIFICATE).
	Certificate string
	// ClientCertificate and ClientKey are PEM files weft presents for
	// mutual TLS (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, _CLIENT_KEY).
	ClientCertificate, ClientKey string
	// Insecure turns off TLS for a gRPC endpoint given without a scheme
	// (OTEL_EXPORTER_OTLP_INSECURE). Endpoints with http:// are always
	// plaintext and https:// always TLS.
	Insecure bool
	// Compression is gzip or none (OTEL_EXPORTER_OTLP_COMPRESSION).
	Compression string

	// ResourceAttributes are added to every span's resource; the traced
	// process's own attributes win on conflict (OTEL_RESOURCE_ATTRIBUTES).
	ResourceAttributes map[string]string

	// MaxQueueSize bounds the spans waiting to be sent; past it the oldest
	// is dropped (OTEL_BSP_MAX_QUEUE_SIZE).
	MaxQueueSize int
	// ScheduleDelay is the longest a span waits for its batch to fill
	// (OTEL_BSP_SCHEDULE_DELAY).
	ScheduleDelay time.Duration
	// MaxExportBatchSize is the most spans sent in one export
	// (OTEL_BSP_MAX_EXPORT_BATCH_SIZE).
	MaxExportBatchSize int
	// ExportTimeout bounds one batch including all its retries
	// (OTEL_BSP_EXPORT_TIMEOUT).
	ExportTimeout time.Duration

	// RetryInitialInterval is the first wait before retrying a batch; each
	// later wait doubles, with jitter, up to RetryMaxInterval.
	RetryInitialInterval time.Duration
	// RetryMaxInterval caps the wait between two retries.
	RetryMaxInterval time.Duration

	// JSONLPath is the file the jsonl exporter appends to; "-" is standard
	// output (WEFT_JSONL_PATH).
	JSONLPath string

	// ConsoleSummary makes the console exporter print a summary, one line
	// per service every ConsoleSummaryInterval, instead of one line per
	// span.
	ConsoleSummary bool
	// ConsoleSummaryInterval is the period of the console summary.
	ConsoleSummaryInterval time.Duration
}

// DefaultConfig returns the defaults of the OTel specification (and weft's
// own for what it does not cover).
func DefaultConfig() Config {
	return Config{
		Protocol:             ProtocolHTTPProtobuf,
		Timeout:              10 * time.Second,
		Compression:          CompressionNone,
		MaxQueueSize:         16384, // a node agent sees bursts of whole trees: 8x the SDK default
		ScheduleDelay:        5 * time.Second,
		MaxExportBatchSize:   512,
		ExportTimeout:        30 * time.Second,
		RetryInitialInterval: 500 * time.Millisecond,
		RetryMaxInterval:     5 * time.Second,
		JSONLPath:            "-",

		ConsoleSummaryInterval: DefaultConsoleSummaryInterval,
	}
}

// ResolvedExporter is the exporter in effect: Exporter, or when empty otlp
// if an endpoint is set and console otherwise.
func (c Config) ResolvedExporter() string {
	switch {
	case c.Exporter != "":
		return c.Exporter
	case c.Endpoint != "" || c.TracesEndpoint != "":
		return ExporterOTLP
	default:
		return ExporterConsole
	}
}

// ResolvedEndpoint is the endpoint the OTLP sender talks to: a URL to POST
// to for http/protobuf, a URL or host:port for grpc.
func (c Config) ResolvedEndpoint() string {
	if c.TracesEndpoint != "" {
		return c.TracesEndpoint
	}
	if c.Protocol == ProtocolGRPC {
		if c.Endpoint != "" {
			return c.Endpoint
		}
		return DefaultGRPCEndpoint
	}
	base := c.Endpoint
	if base == "" {
		base = DefaultHTTPEndpoint
	}
	u, err := url.Parse(base)
	if err != nil {
		return base // Validate reports it
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + tracesPath
	return u.String()
}

// Destination says where spans go, for the start-up log line: the OTLP
// endpoint, the jsonl file, stdout, or nowhere. An endpoint is named only
// when spans are sent to it.
func (c Config) Destination() string {
	switch c.ResolvedExporter() {
	case ExporterOTLP:
		return c.ResolvedEndpoint()
	case ExporterJSONL:
		return c.JSONLPath
	case ExporterConsole:
		return "stdout"
	}
	return "nowhere"
}

// Validate reports every problem in c, one line each, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	exp := c.ResolvedExporter()
	switch exp {
	case ExporterOTLP:
		errs = append(errs, c.validateOTLP()...)
	case ExporterJSONL:
		if c.JSONLPath == "" {
			bad("jsonl path (WEFT_JSONL_PATH): empty; give a file or - for standard output")
		}
	case ExporterConsole, ExporterNone:
	default:
		bad("exporter (OTEL_TRACES_EXPORTER): %q is not one of otlp, console, jsonl, none", exp)
	}
	if c.MaxQueueSize <= 0 {
		bad("max queue size (OTEL_BSP_MAX_QUEUE_SIZE): %d is not positive", c.MaxQueueSize)
	}
	if c.MaxExportBatchSize <= 0 {
		bad("max export batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE): %d is not positive", c.MaxExportBatchSize)
	} else if c.MaxQueueSize > 0 && c.MaxExportBatchSize > c.MaxQueueSize {
		bad("max export batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE): %d is larger than the max queue size %d", c.MaxExportBatchSize, c.MaxQueueSize)
	}
	if c.ScheduleDelay <= 0 {
		bad("schedule delay (OTEL_BSP_SCHEDULE_DELAY): %v is not positive", c.ScheduleDelay)
	}
	if c.ExportTimeout <= 0 {
		bad("export timeout (OTEL_BSP_EXPORT_TIMEOUT): %v is not positive", c.ExportTimeout)
	}
	if c.RetryInitialInterval <= 0 {
		bad("retry initial interval: %v is not positive", c.RetryInitialInterval)
	}
	if c.RetryMaxInterval < c.RetryInitialInterval {
		bad("retry max interval: %v is less than the initial interval %v", c.RetryMaxInterval, c.RetryInitialInterval)
	}
	if _, ok := c.ResourceAttributes[""]; ok {
		bad("resource attributes (OTEL_RESOURCE_ATTRIBUTES): empty key")
	}
	return errors.Join(errs...)
}

// validateOTLP checks the fields only the OTLP senders use, so a stray
// setting meant for another program does not stop a console agent.
func (c Config) validateOTLP() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch c.Protocol {
	case ProtocolHTTPProtobuf:
		ep := c.ResolvedEndpoint()
		u, err := url.Parse(ep)
		switch {
		case err != nil:
			bad("otlp endpoint: %q is not a URL: %v", ep, err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("otlp endpoint: %q needs an http:// or https:// scheme for http/protobuf", ep)
		case u.Host == "":
			bad("otlp endpoint: %q has no host", ep)
		}
	case ProtocolGRPC:
		if _, _, err := grpcTarget(c.ResolvedEndpoint(), c.Insecure); err != nil {
			bad("otlp endpoint: %v", err)
		}
	default:
		bad("otlp protocol (OTEL_EXPORTER_OTLP_PROTOCOL): %q is not one of grpc, http/protobuf", c.Protocol)
	}
	switch c.Compression {
	case CompressionNone, CompressionGzip, "":
	default:
		bad("otlp compression (OTEL_EXPORTER_OTLP_COMPRESSION): %q is not one of gzip, none", c.Compression)
	}
	if c.Timeout <= 0 {
		bad("otlp timeout (OTEL_EXPORTER_OTLP_TIMEOUT): %v is not positive", c.Timeout)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		if !validHeaderKey(k) {
			bad("otlp headers (OTEL_EXPORTER_OTLP_HEADERS): %q is not a valid header name", k)
		}
	}
	return errs
}

// validHeaderKey reports whether k is an HTTP token (RFC 9110), which is
// also what gRPC metadata accepts once lowercased.
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// protocolHint catches the usual mix-up of the two OTLP ports: the
// specification's default protocol is http/protobuf, also on 4317.
func protocolHint(c Config) string {
	if c.ResolvedExporter() != ExporterOTLP {
		return ""
	}
	ep := c.ResolvedEndpoint()
	var port string
	if u, err := url.Parse(ep); err == nil && u.Host != "" {
		port = u.Port()
	} else if _, p, err := net.SplitHostPort(ep); err == nil {
		port = p
	}
	switch {
	case c.Protocol == ProtocolHTTPProtobuf && port == "4317":
		return "otlp endpoint port 4317 is the gRPC port; set OTEL_EXPORTER_OTLP_PROTOCOL=grpc if the collector speaks gRPC there"
	case c.Protocol == ProtocolGRPC && port == "4318":
		return "otlp endpoint port 4318 is the HTTP port; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf if the collector speaks HTTP there"
	}
	return ""
}
