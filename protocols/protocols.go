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

	// Exactly one of these is set, by Protocol.
	HTTP     *HTTP         // HTTP1, HTTP2 (and gRPC over HTTP/2)
	DNS      *DNSInfo      // DNS over UDP or TCP
	Postgres *PostgresInfo // PostgreSQL wire protocol
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
	// Scheme is "http" or "https" (plaintext from TLS capture).
	Scheme string
	// GRPC is set for gRPC calls (content-type application/grpc*);
	// GRPCStatus is grpc-status from the trailers or a Trailers-Only
	// response, -1 when none was seen.
	GRPC       bool
	GRPCStatus int
	// Partial is set when some header fields could not be decoded (HTTP/2
	// HPACK state lost): empty fields are unknown, not absent.
	Partial bool
}

// DNSInfo is one query and its answer (or its absence).
type DNSInfo struct {
	ID        uint16
	Name      string // question name, without the trailing dot
	Type      uint16 // question type (dnsmessage.Type)
	RCode     int    // response code; -1 when no response was seen
	Answers   int    // answer records
	Transport string // "udp" or "tcp"
	TimedOut  bool   // no response within the timeout
}

// PostgresInfo is one statement (or one COPY, or one failed message) and its
// outcome.
type PostgresInfo struct {
	Operation   string // first keyword of the statement, upper case: SELECT, INSERT, ...
	Query       string // statement text, literals replaced by ? unless sanitising is off
	Database    string // from the startup packet
	User        string
	Application string
	SQLState    string // on ErrorResponse
	Rows        int64  // from CommandComplete; -1 when it does not say
	Failed      bool   // ErrorResponse
}

// Sink receives exchanges. It is called on the connection's goroutine.
// Parsers reuse the Exchange and its protocol fields for the next one, so a
// sink must not keep the *Exchange or its *HTTP after it returns (Conn
// stays valid).
type Sink func(*Exchange)

// Parser turns one connection's segments into exchanges. It is a
// conn.Handler that knows one protocol.
type Parser interface {
	conn.Handler
}
