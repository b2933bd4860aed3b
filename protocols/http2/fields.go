package http2

import "bytes"

// Static table indices of the names spans use (RFC 7541 Appendix A).
const (
	stAuthority   = 1
	stMethodGET   = 2
	stMethodPOST  = 3
	stPathRoot    = 4
	stPathIndex   = 5
	stSchemeHTTP  = 6
	stSchemeHTTPS = 7
	stStatus200   = 8
	stStatus500   = 14
	stContentType = 31
	stHost        = 38
	stUserAgent   = 58
)

// block is what one decoded header block said, as far as spans care.
// Strings are interned by the parser, so a field repeated on a connection
// costs no allocation.
type block struct {
	method, path, authority, host, scheme string
	userAgent, traceParent, traceState    string
	status                                int // :status, 0 when absent
	grpcStatus                            int // grpc-status, -1 when absent
	hasMethod, hasStatus                  bool
	grpc                                  bool // content-type application/grpc*, or a grpc-* field
	unknown                               bool // some field could not be decoded
}

func (b *block) reset() { *b = block{grpcStatus: -1} }

// blockSink collects a block's fields into p.blk for the parser.
type blockSink struct{ p *Parser }

func (s blockSink) unknown() { s.p.blk.unknown = true }

func (s blockSink) field(name, value []byte, static int) {
	p, b := s.p, &s.p.blk
	switch {
	case static == stAuthority:
		p.authority(value)
	case static == stMethodGET || static == stMethodPOST:
		b.method, b.hasMethod = p.method(value), true
	case static == stPathRoot || static == stPathIndex:
		b.path = intern(&p.last.path, pathOnly(value))
	case static == stSchemeHTTP || static == stSchemeHTTPS:
		b.scheme = scheme(value)
	case static >= stStatus200 && static <= stStatus500:
		b.status, b.hasStatus = parseStatus(value), true
	case static == stContentType:
		b.grpc = b.grpc || isGRPCContentType(value)
	case static == stHost:
		b.host = intern(&p.last.host, stripUserinfo(value))
	case static == stUserAgent:
		b.userAgent = intern(&p.last.ua, value)
	case static != 0:
		// A static name spans do not use.
	default:
		s.named(name, value)
	}
}

// named classifies a field whose name is not from the static table.
func (s blockSink) named(name, value []byte) {
	p, b := s.p, &s.p.blk
	switch string(name) {
	case ":authority":
		p.authority(value)
	case ":method":
		b.method, b.hasMethod = p.method(value), true
	case ":path":
		b.path = intern(&p.last.path, pathOnly(value))
	case ":scheme":
		b.scheme = scheme(value)
	case ":status":
		b.status, b.hasStatus = parseStatus(value), true
	case "content-type":
		b.grpc = b.grpc || isGRPCContentType(value)
	case "host":
		b.host = intern(&p.last.host, stripUserinfo(value))
	case "user-agent":
		b.userAgent = intern(&p.last.ua, value)
	case "traceparent":
		if len(value) > 0 {
			b.traceParent = string(value)
		}
	case "tracestate":
		b.traceState = intern(&p.last.ts, value)
	case "grpc-status":
		b.grpcStatus, b.grpc = parseGRPCStatus(value), true
	default:
		if bytes.HasPrefix(name, []byte("grpc-")) {
			b.grpc = true
		}
	}
}

// authority keeps :authority without credentials.
func (p *Parser) authority(v []byte) {
	p.blk.authority = intern(&p.last.authority, stripUserinfo(v))
}

// method returns the interned name of a common method, so they cost no
// allocation per request; others are interned per connection.
func (p *Parser) method(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return intern(&p.last.method, b)
}

func scheme(v []byte) string {
	switch string(v) {
	case "http":
		return "http"
	case "https":
		return "https"
	}
	return "" // spans only know these two
}

// pathOnly cuts the query and fragment off a :path.
func pathOnly(v []byte) []byte {
	for i, c := range v {
		if c == '?' || c == '#' {
			return v[:i]
		}
	}
	return v
}

func stripUserinfo(v []byte) []byte {
	if at := bytes.LastIndexByte(v, '@'); at >= 0 {
		return v[at+1:]
	}
	return v
}

// parseStatus reads a three-digit :status; anything else is 0.
func parseStatus(v []byte) int {
	if len(v) != 3 {
		return 0
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 {
		return 0
	}
	return n
}

// parseGRPCStatus reads a grpc-status value; anything but a decimal
// number that fits in an int32 is -1.
func parseGRPCStatus(v []byte) int {
	if len(v) == 0 || len(v) > 10 {
		return -1
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n > 1<<31-1 {
		return -1
	}
	return n
}

// isGRPCContentType is application/grpc, alone or with a +format or
// parameters; grpc-web, whose status travels in the body, is not gRPC
// here.
func isGRPCContentType(v []byte) bool {
	const ct = "application/grpc"
	if len(v) < len(ct) || !equalFold(v[:len(ct)], ct) {
		return false
	}
	return len(v) == len(ct) || v[len(ct)] == '+' || v[len(ct)] == ';'
}

// equalFold compares b with lower, which must be lower-case ASCII.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// intern returns b as a string, reusing *last when they are equal.
func intern(last *string, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}
