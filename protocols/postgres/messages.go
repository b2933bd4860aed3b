package postgres

import (
	"bytes"
	"encoding/binary"
)

// Message type bytes of protocol 3.0, by sender. Several bytes mean
// different messages in the two directions ('E' is Execute from the
// client and ErrorResponse from the server).
const (
	fBind         = 'B'
	fClose        = 'C'
	fCopyData     = 'd'
	fCopyDone     = 'c'
	fCopyFail     = 'f'
	fDescribe     = 'D'
	fExecute      = 'E'
	fFlush        = 'H'
	fFunctionCall = 'F'
	fParse        = 'P'
	fPassword     = 'p' // also GSSResponse, SASLInitialResponse, SASLResponse
	fQuery        = 'Q'
	fSync         = 'S'
	fTerminate    = 'X'

	bAuth             = 'R'
	bBackendKeyData   = 'K'
	bBindComplete     = '2'
	bCloseComplete    = '3'
	bCommandComplete  = 'C'
	bCopyBothResponse = 'W'
	bCopyData         = 'd'
	bCopyDone         = 'c'
	bCopyInResponse   = 'G'
	bCopyOutResponse  = 'H'
	bDataRow          = 'D'
	bEmptyQuery       = 'I'
	bErrorResponse    = 'E'
	bFunctionResult   = 'V'
	bNegotiateVersion = 'v'
	bNoData           = 'n'
	bNoticeResponse   = 'N'
	bNotification     = 'A'
	bParamDescription = 't'
	bParamStatus      = 'S'
	bParseComplete    = '1'
	bPortalSuspended  = 's'
	bReadyForQuery    = 'Z'
	bRowDescription   = 'T'
)

// Codes of the untyped messages a client may open a connection with.
const (
	codeProtocol30 = 3 << 16
	codeProtocol32 = 3<<16 | 2
	codeCancel     = 80877102
	codeSSL        = 80877103
	codeGSSENC     = 80877104
)

const (
	// maxMessageLen is the largest length word the server accepts
	// (PQ_LARGE_MESSAGE_LIMIT); larger means the framing is wrong.
	maxMessageLen = 0x3fffffff
	// maxStartupLen is the server's limit on a startup packet
	// (MAX_STARTUP_PACKET_LENGTH).
	maxStartupLen = 10000
	// maxNameLen bounds a statement or portal name worth reading: the
	// server truncates identifiers to 63 bytes, but clients may send
	// longer ones.
	maxNameLen = 1024
)

// fixedLen returns the only valid length word of a message type, or 0
// when its length varies.
func fixedLen(backend bool, typ byte) uint32 {
	if backend {
		switch typ {
		case bParseComplete, bBindComplete, bCloseComplete, bNoData, bEmptyQuery, bPortalSuspended, bCopyDone:
			return 4
		case bReadyForQuery:
			return 5
		}
		return 0
	}
	switch typ {
	case fSync, fFlush, fTerminate, fCopyDone:
		return 4
	}
	return 0
}

// knownType says whether typ is a message the sender may send.
func knownType(backend bool, typ byte) bool {
	if backend {
		switch typ {
		case bAuth, bBackendKeyData, bBindComplete, bCloseComplete, bCommandComplete, bCopyBothResponse,
			bCopyData, bCopyDone, bCopyInResponse, bCopyOutResponse, bDataRow, bEmptyQuery, bErrorResponse,
			bFunctionResult, bNegotiateVersion, bNoData, bNoticeResponse, bNotification, bParamDescription,
			bParamStatus, bParseComplete, bPortalSuspended, bReadyForQuery, bRowDescription:
			return true
		}
		return false
	}
	switch typ {
	case fBind, fClose, fCopyData, fCopyDone, fCopyFail, fDescribe, fExecute, fFlush, fFunctionCall,
		fParse, fPassword, fQuery, fSync, fTerminate:
		return true
	}
	return false
}

// headerOK says whether a type byte and length word can start a message.
func headerOK(backend bool, typ byte, n uint32) bool {
	if !knownType(backend, typ) {
		return false
	}
	if f := fixedLen(backend, typ); f != 0 {
		return n == f
	}
	return n >= 4 && n <= maxMessageLen
}

// cstr splits a NUL-terminated string off b.
func cstr(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

func u16(b []byte) (int, []byte, bool) {
	if len(b) < 2 {
		return 0, nil, false
	}
	return int(binary.BigEndian.Uint16(b)), b[2:], true
}

// validBody checks the structure of a complete message body: strict
// enough that a random byte run rarely passes, for detection and for
// finding message boundaries again after lost bytes. It never reads a
// value, only lengths and terminators.
func validBody(backend bool, typ byte, b []byte) bool {
	if backend {
		return validBackend(typ, b)
	}
	return validFrontend(typ, b)
}

func validFrontend(typ byte, b []byte) bool {
	switch typ {
	case fQuery:
		return len(b) > 0 && bytes.IndexByte(b, 0) == len(b)-1 && textLike(b[:len(b)-1])
	case fParse:
		name, rest, ok := cstr(b)
		if !ok || len(name) > maxNameLen {
			return false
		}
		q, rest, ok := cstr(rest)
		if !ok || !textLike(q) {
			return false
		}
		n, rest, ok := u16(rest)
		return ok && len(rest) == 4*n
	case fBind:
		return validBind(b)
	case fExecute:
		name, rest, ok := cstr(b)
		return ok && len(name) <= maxNameLen && len(rest) == 4
	case fDescribe, fClose:
		if len(b) < 2 || (b[0] != 'S' && b[0] != 'P') {
			return false
		}
		name, rest, ok := cstr(b[1:])
		return ok && len(name) <= maxNameLen && len(rest) == 0
	case fCopyFail:
		_, rest, ok := cstr(b)
		return ok && len(rest) == 0
	case fSync, fFlush, fTerminate, fCopyDone:
		return len(b) == 0
	}
	return true // CopyData, password and SASL messages, FunctionCall: opaque
}

func validBind(b []byte) bool {
	portal, rest, ok := cstr(b)
	if !ok || len(portal) > maxNameLen {
		return false
	}
	stmt, rest, ok := cstr(rest)
	if !ok || len(stmt) > maxNameLen {
		return false
	}
	n, rest, ok := u16(rest)
	if !ok || len(rest) < 2*n {
		return false
	}
	rest = rest[2*n:]
	if n, rest, ok = u16(rest); !ok {
		return false
	}
	if rest, ok = skipValues(rest, n); !ok {
		return false
	}
	n, rest, ok = u16(rest)
	return ok && len(rest) == 2*n
}

// skipValues steps over n length-prefixed values (-1 is NULL).
func skipValues(b []byte, n int) ([]byte, bool) {
	for range n {
		if len(b) < 4 {
			return nil, false
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l == -1 {
			continue
		}
		if l < 0 || int(l) > len(b) {
			return nil, false
		}
		b = b[l:]
	}
	return b, true
}

func validBackend(typ byte, b []byte) bool {
	switch typ {
	case bReadyForQuery:
		return len(b) == 1 && (b[0] == 'I' || b[0] == 'T' || b[0] == 'E')
	case bCommandComplete:
		return len(b) > 1 && bytes.IndexByte(b, 0) == len(b)-1 && b[0] >= 'A' && b[0] <= 'Z' && textLike(b[:len(b)-1])
	case bDataRow:
		n, rest, ok := u16(b)
		if !ok {
			return false
		}
		rest, ok = skipValues(rest, n)
		return ok && len(rest) == 0
	case bRowDescription:
		n, rest, ok := u16(b)
		if !ok {
			return false
		}
		for range n {
			var name []byte
			if name, rest, ok = cstr(rest); !ok || len(name) > maxNameLen || len(rest) < 18 {
				return false
			}
			rest = rest[18:]
		}
		return len(rest) == 0
	case bParamDescription:
		n, rest, ok := u16(b)
		return ok && len(rest) == 4*n
	case bErrorResponse, bNoticeResponse:
		return validFields(b)
	case bParamStatus:
		_, rest, ok := cstr(b)
		if !ok {
			return false
		}
		_, rest, ok = cstr(rest)
		return ok && len(rest) == 0
	case bBackendKeyData:
		return len(b) >= 8 && len(b) <= 4+256
	case bAuth:
		return len(b) >= 4 && binary.BigEndian.Uint32(b) <= 12
	case bNotification:
		if len(b) < 4 {
			return false
		}
		_, rest, ok := cstr(b[4:])
		if !ok {
			return false
		}
		_, rest, ok = cstr(rest)
		return ok && len(rest) == 0
	case bCopyInResponse, bCopyOutResponse, bCopyBothResponse:
		if len(b) < 1 || b[0] > 1 {
			return false
		}
		n, rest, ok := u16(b[1:])
		return ok && len(rest) == 2*n
	case bParseComplete, bBindComplete, bCloseComplete, bNoData, bEmptyQuery, bPortalSuspended, bCopyDone:
		return len(b) == 0
	}
	return true // CopyData, FunctionCallResponse, NegotiateProtocolVersion
}

// validFields checks an ErrorResponse or NoticeResponse body: fields of a
// code byte and a string, ended by a zero byte.
func validFields(b []byte) bool {
	for len(b) > 0 {
		if b[0] == 0 {
			return len(b) == 1
		}
		var ok bool
		if _, b, ok = cstr(b[1:]); !ok {
			return false
		}
	}
	return false
}

// textLike says whether b can be SQL text or a command tag: no control
// bytes but tab, newline and carriage return.
func textLike(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// chain walks the messages of one direction that b starts with. It
// reports how many complete messages it found, all structurally valid,
// and whether b is a plausible run of messages: every complete one valid,
// and what is left at the end either nothing or the start of one more
// (a header that fits, or fewer than 5 bytes of one).
func chain(b []byte, backend bool) (complete int, ok bool) {
	for len(b) > 0 {
		if len(b) < 5 {
			return complete, knownType(backend, b[0])
		}
		n := binary.BigEndian.Uint32(b[1:])
		if !headerOK(backend, b[0], n) {
			return complete, false
		}
		if uint64(len(b)) < 1+uint64(n) {
			return complete, true
		}
		if !validBody(backend, b[0], b[5:1+n]) {
			return complete, false
		}
		complete++
		b = b[1+n:]
	}
	return complete, true
}

// startupCode reads the code of an untyped startup-phase message (the
// client's first messages), or reports that b does not start one.
func startupCode(b []byte) (n, code uint32, ok bool) {
	if len(b) < 8 {
		return 0, 0, false
	}
	n, code = binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	switch code {
	case codeSSL, codeGSSENC:
		return n, code, n == 8
	case codeCancel:
		return n, code, n == 16
	case codeProtocol30, codeProtocol32:
		return n, code, n > 8 && n <= maxStartupLen
	}
	return 0, 0, false
}

// LooksLikePostgres tells from the first captured bytes of one direction
// of a connection whether they are PostgreSQL protocol 3 messages, and
// whether a client (frontend) or a server (backend) sent them. A startup
// packet, SSLRequest, GSSENCRequest or CancelRequest is frontend; for a
// connection weft joined late, b must hold at least one complete message
// and every complete message in it must be well formed. Both results can
// be true for short ambiguous runs. It never allocates.
func LooksLikePostgres(b []byte) (frontend, backend bool) {
	if n, code, ok := startupCode(b); ok {
		if code != codeProtocol30 && code != codeProtocol32 || uint32(len(b)) < n {
			return true, false
		}
		return validStartup(b[8:n]), false
	}
	if c, ok := chain(b, false); ok && c > 0 {
		frontend = true
	}
	if c, ok := chain(b, true); ok && c > 0 {
		backend = true
	}
	return frontend, backend
}

// validStartup checks a startup packet's parameters: name and value
// strings, ended by an empty name.
func validStartup(b []byte) bool {
	for {
		name, rest, ok := cstr(b)
		if !ok {
			return false
		}
		if len(name) == 0 {
			return len(rest) == 0
		}
		if _, b, ok = cstr(rest); !ok {
			return false
		}
	}
}
