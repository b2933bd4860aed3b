package protocols

import (
	"net/netip"

	"github.com/weftrace/weft/conn"
)

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
	// ResponseTID is the thread that moved the response's first byte; 0
	// when unknown (no response, or a parser that does not say). The
	// correlator trusts a process's threads to tell its requests apart only
	// while both always match.
	ResponseTID uint32
	// RequestCause is, for a request this end wrote, the earlier read the
	// kernel attributes the write to (conn.Cause); zero when none.
	RequestCause conn.Cause
	// ResponseCause is, for a response this end wrote, what the kernel said
	// of the write (conn.CauseTask: the asyncio task that answered); zero
	// when none. HTTP/1 only.
	ResponseCause conn.Cause

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
	// StreamID is the HTTP/2 stream the exchange moved on (0 for HTTP/1).
	StreamID uint32
	// Partial is set when some header fields could not be decoded (HTTP/2
	// HPACK state lost): empty fields are unknown, not absent.
	Partial bool
}

// DNSMaxAddrs bounds the answer addresses one DNSInfo carries, so it is a
// fixed-size value parsers can reuse.
const DNSMaxAddrs = 8

// DNSInfo is one query and its answer (or its absence).
type DNSInfo struct {
	ID uint16
	// Name is the question name in presentation form, without the trailing
	// dot ("." for the root); bytes outside printable ASCII are escaped as
	// \DDD, backslash and quote with a backslash.
	Name      string
	Type      uint16 // question type (dnsmessage.Type)
	RCode     int    // response code, extended by EDNS; -1 when no response was seen
	Answers   int    // answer records, from the header's count
	Transport string // "udp" or "tcp"
	TimedOut  bool   // no response within the timeout, or before the socket closed
	// NoResponse is set instead of TimedOut for a query this process sent
	// whose socket closed unanswered at once, sooner than any client's
	// timeout: the client gave up (typically refused, nothing listening).
	NoResponse bool
	// Peer is the other end of this exchange: the server for a query this
	// process sent, the client for one it answered. For UDP it comes from
	// the datagram, since one socket may talk to many peers.
	Peer netip.AddrPort
	// Addrs[:NAddrs] are the A and AAAA answers, in answer order, at most
	// DNSMaxAddrs of them.
	Addrs  [DNSMaxAddrs]netip.Addr
	NAddrs int
	// Partial is set when the capture cut the response short: RCode and
	// Answers come from its header, Addrs may miss some.
	Partial bool
}

// PostgresInfo is one statement (or one COPY, or one failed message) and its
// outcome.
type PostgresInfo struct {
	Operation   string // first keyword of the statement, upper case: SELECT, INSERT, ...; BATCH for several in one Query
	Query       string // statement text, literals replaced by ?
	RawQuery    string // statement text as sent, for when sanitising is off
	Database    string // from the startup packet
	User        string
	Application string
	SQLState    string // on ErrorResponse, or a WARNING notice's when not Failed
	Rows        int64  // rows returned (DataRow, or COPY TO's count); -1 when the statement returns none or it is not known
	Failed      bool   // ErrorResponse
	BatchSize   int    // statements run by one simple Query when more than one, else 0
	NoResponse  bool   // the connection ended before the answer
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
