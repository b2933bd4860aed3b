package http1

import "bytes"

// method returns the interned name of a registered method, so the common
// ones cost no allocation per request.
func method(b []byte) (string, bool) {
	switch string(b) {
	case "GET":
		return "GET", true
	case "HEAD":
		return "HEAD", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "DELETE":
		return "DELETE", true
	case "CONNECT":
		return "CONNECT", true
	case "OPTIONS":
		return "OPTIONS", true
	case "TRACE":
		return "TRACE", true
	case "PATCH":
		return "PATCH", true
	case "PROPFIND":
		return "PROPFIND", true
	case "PROPPATCH":
		return "PROPPATCH", true
	case "MKCOL":
		return "MKCOL", true
	case "COPY":
		return "COPY", true
	case "MOVE":
		return "MOVE", true
	case "LOCK":
		return "LOCK", true
	case "UNLOCK":
		return "UNLOCK", true
	}
	return "", false
}

// maxLineLook bounds how far LooksLikeHTTP1 looks for the end of the first
// line, so detection stays cheap on large segments.
const maxLineLook = 8 << 10

// LooksLikeHTTP1 tells from the first bytes of a stream (or of a segment
// that may start a message) whether they begin an HTTP/1.x request line
// (registered METHOD SP target SP HTTP/1.x) or status line (HTTP/1.x SP).
// It reads at most the first line and never allocates.
func LooksLikeHTTP1(b []byte) (isRequest, isResponse bool) {
	if len(b) >= 9 && string(b[:7]) == "HTTP/1." && (b[7] == '0' || b[7] == '1') && b[8] == ' ' {
		return false, true
	}
	sp := bytes.IndexByte(b[:min(len(b), 10)], ' ')
	if sp <= 0 {
		return false, false
	}
	if _, ok := method(b[:sp]); !ok {
		return false, false
	}
	rest := b[sp+1:]
	if len(rest) == 0 || rest[0] == ' ' {
		return false, false
	}
	line := rest[:min(len(rest), maxLineLook)]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		_, _, ok := splitRequestTarget(bytes.TrimSuffix(line[:nl], cr))
		return ok, false
	}
	// The line runs past what was captured: what is there must be a
	// target, optionally followed by the start of the version.
	for i, c := range line {
		if c == ' ' {
			v := line[i+1:]
			n := min(len(v), len("HTTP/1."))
			return string(v[:n]) == "HTTP/1."[:n], false
		}
		if c < ' ' || c == 0x7f {
			return false, false
		}
	}
	return true, false
}

var (
	cr    = []byte{'\r'}
	slash = []byte{'/'}
)

// splitRequestTarget splits "target SP HTTP/1.x" and checks both parts.
func splitRequestTarget(b []byte) (target []byte, minor byte, ok bool) {
	sp := bytes.LastIndexByte(b, ' ')
	if sp <= 0 {
		return nil, 0, false
	}
	target, v := b[:sp], b[sp+1:]
	if len(v) != 8 || string(v[:7]) != "HTTP/1." || (v[7] != '0' && v[7] != '1') {
		return nil, 0, false
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return nil, 0, false
		}
	}
	return target, v[7], true
}

// headEnd looks for the empty line that ends a head, starting at from,
// which must be the start of a line. It returns the index just past the
// empty line, or -1 and the start of the last, incomplete line to resume
// from when more bytes arrive. Bare LF line ends are accepted.
func headEnd(b []byte, from int) (end, resume int) {
	p := from
	for {
		nl := bytes.IndexByte(b[p:], '\n')
		if nl < 0 {
			return -1, p
		}
		if nl == 0 || (nl == 1 && b[p] == '\r') {
			return p + nl + 1, 0
		}
		p += nl + 1
	}
}

// cutLine splits off the first line, without its CRLF or LF.
func cutLine(b []byte) (line, rest []byte) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return b, nil
	}
	line = b[:nl]
	if nl > 0 && line[nl-1] == '\r' {
		line = line[:nl-1]
	}
	return line, b[nl+1:]
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// msgHead is one parsed head. Its slices point into the bytes it was
// parsed from and are valid only until those are reused.
type msgHead struct {
	method, target []byte
	minor          byte // HTTP/1.<minor>
	status         int
	host, ua       []byte
	traceParent    []byte
	traceState     []byte
	contentLength  int64 // -1 when absent
	hasTE, chunked bool
}

func (h *msgHead) reset() {
	*h = msgHead{contentLength: -1}
}

// parseRequestLine fills method, target and version.
func (h *msgHead) parseRequestLine(line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	for _, c := range line[:sp] {
		if !isTchar(c) {
			return false
		}
	}
	target, minor, ok := splitRequestTarget(line[sp+1:])
	if !ok {
		return false
	}
	h.method, h.target, h.minor = line[:sp], target, minor
	return true
}

// parseStatusLine fills version and status; the reason phrase is ignored.
func (h *msgHead) parseStatusLine(line []byte) bool {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return false
	}
	st := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 || (len(line) > 12 && line[12] != ' ') {
		return false
	}
	h.minor, h.status = line[7], st
	return true
}

// parseFields reads the header (or trailer) lines of b, up to the empty
// line, keeping only the fields spans and framing need.
func (h *msgHead) parseFields(b []byte) bool {
	for len(b) > 0 {
		var line []byte
		line, b = cutLine(b)
		if len(line) == 0 {
			return true
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding: only continues a value we drop
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		if !h.field(line[:colon], line[colon+1:]) {
			return false
		}
	}
	return true
}

// field keeps the value of a field spans or framing need; the others are
// skipped without looking at their value.
func (h *msgHead) field(name, raw []byte) bool {
	v := trimOWS(raw)
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			h.host = v
		}
	case 10:
		switch {
		case equalFold(name, "user-agent"):
			h.ua = v
		case equalFold(name, "tracestate"):
			h.traceState = v
		}
	case 11:
		if equalFold(name, "traceparent") {
			h.traceParent = v
		}
	case 14:
		if equalFold(name, "content-length") {
			n, ok := parseLength(v)
			if !ok || (h.contentLength >= 0 && h.contentLength != n) {
				return false
			}
			h.contentLength = n
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			h.hasTE = true
			// Only the final coding decides the framing; a later header
			// line continues the list.
			last := v
			if i := bytes.LastIndexByte(v, ','); i >= 0 {
				last = trimOWS(v[i+1:])
			}
			h.chunked = equalFold(last, "chunked")
		}
	}
	return true
}

// parseLength reads a Content-Length value. A list of equal values, which
// some proxies send, is accepted.
func parseLength(v []byte) (int64, bool) {
	n := int64(-1)
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = trimOWS(tok)
		if len(tok) == 0 || len(tok) > 18 {
			return 0, false
		}
		var m int64
		for _, c := range tok {
			if c < '0' || c > '9' {
				return 0, false
			}
			m = m*10 + int64(c-'0')
		}
		if n >= 0 && m != n {
			return 0, false
		}
		n = m
	}
	return n, n >= 0
}

// parseChunkSize reads a chunk-size line: hex size, then optional
// whitespace and extensions, which are ignored.
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto done
		}
		if i == 15 {
			return 0, false // would overflow int64
		}
		n = n<<4 | int64(d)
	}
done:
	if i == 0 {
		return 0, false
	}
	rest := trimOWS(line[i:])
	if len(rest) > 0 && rest[0] != ';' {
		return 0, false
	}
	return n, true
}

// trimOWS trims optional whitespace (SP, HTAB) from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
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

// splitTarget reduces a request target to the path spans carry and, for
// absolute-form and authority-form targets, the authority they name.
func splitTarget(t []byte, connect bool) (path, authority []byte) {
	if connect {
		return nil, t
	}
	if len(t) > 0 && t[0] != '/' && t[0] != '*' {
		if i := bytes.Index(t, []byte("://")); i > 0 {
			rest := t[i+3:]
			end := 0
			for end < len(rest) && rest[end] != '/' && rest[end] != '?' && rest[end] != '#' {
				end++
			}
			authority, t = rest[:end], rest[end:]
			if at := bytes.LastIndexByte(authority, '@'); at >= 0 {
				authority = authority[at+1:]
			}
			if len(t) == 0 || t[0] != '/' {
				return slash, authority // an empty path means "/"
			}
		}
	}
	for i, c := range t {
		if c == '?' || c == '#' {
			return t[:i], authority
		}
	}
	return t, authority
}
