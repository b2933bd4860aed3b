package protocols

import "github.com/weftrace/weft/conn"

// Protocol names an application protocol weft understands.
type Protocol uint8

const (
	Unknown Protocol = iota
	HTTP1
	HTTP2
	DNS
	Postgres
)

func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http1"
	case HTTP2:
		return "http2"
	case DNS:
		return "dns"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// Exchange is one request and its response on one connection, seen from
// one end. Parsers fill the protocol's field; everything else is common.
type Exchange struct {
	Conn     *conn.Info
	Role     conn.Role // resolved role: parsers infer it when Conn.Role is unknown
	Protocol Protocol
	// Start is when the first byte of the request moved, End when the last
	// byte of the response moved (monotonic ns).
	Start, End int64
	// RequestSeq is the TCP sequence number of the request's first byte: the
	// same number at both ends of the connection.
	RequestSeq uint32
	// RequestTID is the thread that moved the request's first byte.
	RequestTID uint32

	HTTP *HTTP
}

// HTTP is what an HTTP/1.x or HTTP/2 exchange says, with no body and no
// header values beyond the ones spans carry.
type HTTP struct {
	Method      string
	Path        string // without the query string
	Version     string // "1.0", "1.1", "2"
	Status      int    // 0 when no response was seen
	Host        string // Host header or :authority, without credentials
	UserAgent   string
	TraceParent string // W3C traceparent header, kept for the correlator
	TraceState  string
	// RequestBodySize and ResponseBodySize are body lengths in bytes (-1 unknown).
	RequestBodySize  int64
	ResponseBodySize int64
}

// Sink receives exchanges. It is called from the connection's goroutine and
// must not retain the Exchange's pointers' referents beyond Conn.
type Sink func(*Exchange)

// Parser turns one connection's segments into exchanges. It is a
// conn.Handler that knows one protocol.
type Parser interface {
	conn.Handler
}
