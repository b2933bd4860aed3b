package correlate

import (
	"net/netip"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// maxHTTPAttrs is the most attributes an HTTP span gets, so the slice is
// allocated once at its final size.
const maxHTTPAttrs = 15

// ErrorTypeNoResponse is the error.type of an HTTP span whose request saw
// no response: the connection closed, or the capture lost it. Semconv asks
// instrumentations to document the error types they report; this one and
// the status code as a string (for error statuses) are all weft reports.
const ErrorTypeNoResponse = "no_response"

// schemeOf is https for exchanges whose plaintext came from TLS capture.
func schemeOf(ex *protocols.Exchange) string {
	if ex.HTTP.Scheme != "" {
		return ex.HTTP.Scheme
	}
	if ex.Conn != nil && ex.Conn.TLS {
		return "https"
	}
	return "http"
}

// otherMethodName is the span name's method for a method semconv does not
// call known.
const otherMethodName = "HTTP"

// defaultKnownMethods are semconv v1.40.0's known methods.
var defaultKnownMethods = []attribute.KeyValue{
	semconv.HTTPRequestMethodConnect,
	semconv.HTTPRequestMethodDelete,
	semconv.HTTPRequestMethodGet,
	semconv.HTTPRequestMethodHead,
	semconv.HTTPRequestMethodOptions,
	semconv.HTTPRequestMethodPatch,
	semconv.HTTPRequestMethodPost,
	semconv.HTTPRequestMethodPut,
	semconv.HTTPRequestMethodQuery,
	semconv.HTTPRequestMethodTrace,
}

func knownMethods(override []string) map[string]attribute.KeyValue {
	m := make(map[string]attribute.KeyValue)
	if override == nil {
		for _, kv := range defaultKnownMethods {
			m[kv.Value.AsString()] = kv
		}
		return m
	}
	for _, name := range override {
		m[name] = semconv.HTTPRequestMethodKey.String(name)
	}
	return m
}

// errorTypes holds the error.type strings of the statuses that can be
// errors, so an error span does not allocate one.
var errorTypes = func() (t [200]string) {
	for i := range t {
		t[i] = strconv.Itoa(400 + i)
	}
	return t
}()

// httpSpan fills s from an HTTP exchange: kind, name, attributes and
// status by the semconv HTTP span conventions, and for a server span the
// trace context of an incoming traceparent.
func (c *Correlator) httpSpan(ex *protocols.Exchange, s *Span) {
	h := ex.HTTP
	if h.GRPC {
		c.grpcSpan(ex, s) // grpc.go
		return
	}
	s.Kind = spanKind(ex.Role)
	attrs := make([]attribute.KeyValue, 0, maxHTTPAttrs)

	nameMethod := otherMethodName
	if kv, ok := c.known[h.Method]; ok {
		nameMethod = h.Method
		attrs = append(attrs, kv)
	} else if h.Method != "" || !h.Partial { // Partial: unknown, not absent
		attrs = append(attrs, semconv.HTTPRequestMethodOther)
		if h.Method != "" {
			attrs = append(attrs, semconv.HTTPRequestMethodOriginal(h.Method))
		}
	}
	path := requestPath(h.Path)
	if strings.HasPrefix(path, "/") {
		attrs = append(attrs, semconv.URLPath(path))
		s.Name = spanName(nameMethod, path)
	} else {
		s.Name = nameMethod
	}
	attrs = append(attrs, semconv.URLScheme(schemeOf(ex)))
	if h.Status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(h.Status))
	}
	// Body sizes, counted by the parsers as they step over the bodies
	// (never buffered): only when there was a body and its length is known.
	if h.RequestBodySize > 0 {
		attrs = append(attrs, semconv.HTTPRequestBodySize(int(h.RequestBodySize)))
	}
	if h.Status != 0 && h.ResponseBodySize > 0 {
		attrs = append(attrs, semconv.HTTPResponseBodySize(int(h.ResponseBodySize)))
	}

	attrs = appendEndpoints(attrs, ex, s.Kind, h.Host)

	version := h.Version
	if version == "" && ex.Protocol == protocols.HTTP2 {
		version = "2"
	}
	if version != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(version))
	}
	if h.UserAgent != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(h.UserAgent))
	}

	var errType string
	if h.Status != 0 || !h.Partial {
		// A Partial exchange's missing status is unknown, not absent.
		s.StatusCode, errType = httpStatus(s.Kind, h.Status)
	}
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	s.Attributes = attrs
	c.joinTraceParent(s, h)
}

// joinTraceParent makes a server span join the trace its request's
// traceparent names (HTTP header or gRPC metadata).
func (c *Correlator) joinTraceParent(s *Span, h *protocols.HTTP) {
	if s.Kind == trace.SpanKindServer && h.TraceParent != "" {
		if tp, ok := parseTraceParent(h.TraceParent); ok {
			s.TraceID, s.ParentSpanID = tp.traceID, tp.parentID
			s.TraceState = boundTraceState(h.TraceState)
			c.joined.Add(1)
		} else {
			c.badParent.Add(1)
		}
	}
}

func spanKind(r conn.Role) trace.SpanKind {
	switch r {
	case conn.RoleServer:
		return trace.SpanKindServer
	case conn.RoleClient:
		return trace.SpanKindClient
	}
	return trace.SpanKindUnspecified
}

// spanName is "{method} {path template}", built in one allocation.
func spanName(method, path string) string {
	var b strings.Builder
	// A placeholder is at most 3 bytes longer than the segment it replaces,
	// and a path has at most one segment per '/'.
	b.Grow(len(method) + 1 + len(path) + 3*strings.Count(path, "/"))
	b.WriteString(method)
	b.WriteByte(' ')
	appendTemplate(&b, path)
	return b.String()
}

// httpStatus applies semconv's HTTP span status rules: 5xx and status
// codes outside 100-599 are errors on every span, 4xx only on client
// spans (on a server the client erred, not the server). An unanswered
// request is an error too. The status message stays empty (semconv: the
// code says it all); error.type is the status code, or
// ErrorTypeNoResponse.
func httpStatus(kind trace.SpanKind, status int) (codes.Code, string) {
	switch {
	case status == 0:
		return codes.Error, ErrorTypeNoResponse
	case status < 100 || status > 599:
		return codes.Error, strconv.Itoa(status)
	case status >= 500, status >= 400 && kind == trace.SpanKindClient:
		return codes.Error, errorTypes[status-400]
	}
	return codes.Unset, ""
}

// addrString formats an address for an attribute: "" when unknown, and an
// IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as
// plain IPv4.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

func appendAddrPort(attrs []attribute.KeyValue, addrKey, portKey attribute.Key, addr string, port uint16) []attribute.KeyValue {
	if addr == "" {
		return attrs
	}
	attrs = append(attrs, addrKey.String(addr))
	if port != 0 {
		attrs = append(attrs, portKey.Int(int(port)))
	}
	return attrs
}

// maxHostLen bounds a Host header worth reporting: a DNS name is at most
// 253 characters, plus a port.
const maxHostLen = 253 + 6

// splitHost splits a Host header (or :authority) into host and port. A
// missing port is the scheme's default, as the URI rules say, not the
// connection's port: behind a proxy or a port mapping the two differ, and
// server.port names the origin. IPv6 literals lose their brackets. A
// malformed value (bad port, whitespace or control bytes, too long) is not
// used at all and the connection's addresses are reported instead.
func splitHost(h, scheme string) (host string, port int, ok bool) {
	if h == "" || len(h) > maxHostLen {
		return "", 0, false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '@' {
			return "", 0, false
		}
	}
	portStr := ""
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", 0, false
		}
		host, rest := h[1:end], h[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, false
			}
			portStr = rest[1:]
		}
		h = host
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h, portStr = h[:i], h[i+1:]
	} // else: no port, or a bare IPv6 address, all host
	if h == "" {
		return "", 0, false
	}
	if portStr == "" {
		return h, defaultPort(scheme), true
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, false
	}
	return h, int(p), true
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// appendEndpoints adds the server, client and peer address attributes an
// HTTP or gRPC span of kind has: server.* from the Host header (or
// :authority) when it parses, else from the connection's tuple.
func appendEndpoints(attrs []attribute.KeyValue, ex *protocols.Exchange, kind trace.SpanKind, hostHeader string) []attribute.KeyValue {
	var tuple conn.Tuple
	if ex.Conn != nil {
		tuple = ex.Conn.Tuple
	}
	peer := addrString(tuple.Remote.Addr())
	host, port, hostOK := splitHost(hostHeader, schemeOf(ex))
	switch kind {
	case trace.SpanKindClient:
		if hostOK {
			attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
		} else {
			attrs = appendAddrPort(attrs, semconv.ServerAddressKey, semconv.ServerPortKey, peer, tuple.Remote.Port())
		}
	case trace.SpanKindServer:
		if hostOK {
			attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
		} else {
			attrs = appendAddrPort(attrs, semconv.ServerAddressKey, semconv.ServerPortKey,
				addrString(tuple.Local.Addr()), tuple.Local.Port())
		}
		if peer != "" {
			attrs = append(attrs, semconv.ClientAddress(peer))
		}
	default:
		// Which end is the server is unknown: only the Host header says.
		if hostOK {
			attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
		}
	}
	return appendAddrPort(attrs, semconv.NetworkPeerAddressKey, semconv.NetworkPeerPortKey, peer, tuple.Remote.Port())
}
