package correlate

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/protocols"
)

// gRPC spans follow the RPC conventions of semconv v1.40.0, which replaced
// rpc.system, rpc.service, rpc.method (the bare method) and the numeric
// rpc.grpc.status_code with rpc.system.name, rpc.method (the fully
// qualified "package.Service/Method") and rpc.response.status_code (the
// status code's name, "OK", "NOT_FOUND").

// maxGRPCAttrs is the most attributes a gRPC span gets.
const maxGRPCAttrs = 10

// grpcSpanName is the span name when the method is unknown or
// unrecognised: rpc.system.name, as the RPC conventions say.
const grpcSpanName = "grpc"

// rpcMethodOther is rpc.method for a method the server did not recognise
// (it answered UNIMPLEMENTED) or a :path that names no method.
const rpcMethodOther = "_OTHER"

// grpcUnimplemented is the status a server gives a method it does not have.
const grpcUnimplemented = 12

// grpcCodeNames are the gRPC status codes' canonical names
// (google.golang.org/grpc/codes, doc/statuscodes.md), by code.
var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// grpcServerErrors are the codes that make a server span Error: the ones
// that say the server failed, not the caller (semconv gRPC conventions).
var grpcServerErrors = [len(grpcCodeNames)]bool{2: true, 4: true, 12: true, 13: true, 14: true, 15: true}

func grpcCodeName(code int) string {
	if code < len(grpcCodeNames) {
		return grpcCodeNames[code]
	}
	return strconv.Itoa(code)
}

// grpcSpan fills s from a gRPC exchange: kind, name, attributes and status
// by the semconv gRPC span conventions, and for a server span the trace
// context of an incoming traceparent (gRPC metadata travels as headers).
func (c *Correlator) grpcSpan(ex *protocols.Exchange, s *Span) {
	h := ex.HTTP
	s.Kind = spanKind(ex.Role)
	attrs := make([]attribute.KeyValue, 0, maxGRPCAttrs)
	attrs = append(attrs, semconv.RPCSystemNameGRPC)

	s.Name = grpcSpanName
	if method, ok := grpcMethod(h.Path); ok && h.GRPCStatus != grpcUnimplemented {
		s.Name = method
		attrs = append(attrs, semconv.RPCMethod(method))
	} else if h.Path != "" {
		attrs = append(attrs, semconv.RPCMethodKey.String(rpcMethodOther),
			semconv.RPCMethodOriginal(strings.TrimPrefix(h.Path, "/")))
	}
	if h.GRPCStatus >= 0 {
		attrs = append(attrs, semconv.RPCResponseStatusCode(grpcCodeName(h.GRPCStatus)))
	}

	attrs = appendEndpoints(attrs, ex, s.Kind, h.Host)

	var errType string
	s.StatusCode, errType = grpcStatus(s.Kind, h)
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	s.Attributes = attrs
	c.joinTraceParent(s, h)
}

// grpcMethod is rpc.method from a :path "/package.Service/Method": the
// path without its slash, when it has exactly that shape.
func grpcMethod(path string) (string, bool) {
	svc, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || len(path) < 4 || path[0] != '/' || svc == "" || method == "" || strings.IndexByte(method, '/') >= 0 {
		return "", false
	}
	return path[1:], true
}

// grpcStatus applies the gRPC span status rules: a server span is Error
// for the codes that blame the server (UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), a client span for any
// code but OK, with error.type the code's name. A call that got no
// response is Error with ErrorTypeNoResponse; one whose status could not
// be decoded (Partial) is left Unset rather than guessed.
func grpcStatus(kind trace.SpanKind, h *protocols.HTTP) (codes.Code, string) {
	code := h.GRPCStatus
	switch {
	case code < 0 && h.Status == 0 && !h.Partial:
		return codes.Error, ErrorTypeNoResponse
	case code < 0, code == 0:
		return codes.Unset, ""
	case kind == trace.SpanKindClient, code < len(grpcServerErrors) && grpcServerErrors[code]:
		return codes.Error, grpcCodeName(code)
	}
	return codes.Unset, ""
}
