package http2

// Preface is what a client sends before its first frame (RFC 9113 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// frameHeaderLen is the size of every frame header.
const frameHeaderLen = 9

// Frame types (RFC 9113 6).
const (
	ftData         = 0x0
	ftHeaders      = 0x1
	ftPriority     = 0x2
	ftRSTStream    = 0x3
	ftSettings     = 0x4
	ftPushPromise  = 0x5
	ftPing         = 0x6
	ftGoAway       = 0x7
	ftWindowUpdate = 0x8
	ftContinuation = 0x9
)

// Frame flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// settingHeaderTableSize is SETTINGS_HEADER_TABLE_SIZE.
const settingHeaderTableSize = 0x1

// maxPlausibleFrame bounds the length of a frame header accepted where
// framing is being guessed (detection, resynchronisation): larger than the
// 16 KiB default SETTINGS_MAX_FRAME_SIZE, as large as Go's server allows.
const maxPlausibleFrame = 1 << 20

// frameHeader is one decoded frame header.
type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
	rbit   bool // the reserved bit, which senders never set
}

func parseFrameHeader(b []byte) frameHeader {
	_ = b[8]
	return frameHeader{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: (uint32(b[5])<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])) & 0x7fffffff,
		rbit:   b[5]&0x80 != 0,
	}
}

// definedFlags are the flags each known frame type defines.
var definedFlags = [10]uint8{
	ftData:         flagEndStream | flagPadded,
	ftHeaders:      flagEndStream | flagEndHeaders | flagPadded | flagPriority,
	ftPriority:     0,
	ftRSTStream:    0,
	ftSettings:     flagAck,
	ftPushPromise:  flagEndHeaders | flagPadded,
	ftPing:         flagAck,
	ftGoAway:       0,
	ftWindowUpdate: 0,
	ftContinuation: flagEndHeaders,
}

// sane reports whether h can be a frame header a peer sent: the checks a
// receiver makes that need only the header (RFC 9113 6), which bytes out of
// place fail almost always. Unknown types are allowed, as the RFC asks.
func (h frameHeader) sane() bool {
	if h.rbit {
		return false
	}
	switch h.typ {
	case ftData, ftHeaders, ftContinuation:
		return h.stream != 0
	case ftPriority:
		return h.stream != 0 && h.length == 5
	case ftRSTStream:
		return h.stream != 0 && h.length == 4
	case ftSettings:
		return h.stream == 0 && h.length%6 == 0 && (h.flags&flagAck == 0 || h.length == 0)
	case ftPushPromise:
		return h.stream != 0 && h.length >= 4
	case ftPing:
		return h.stream == 0 && h.length == 8
	case ftGoAway:
		return h.stream == 0 && h.length >= 8
	case ftWindowUpdate:
		return h.length == 4
	}
	return true
}

// plausible is sane with what a guess needs on top: a known type, only
// defined flags, a bounded length.
func (h frameHeader) plausible() bool {
	return h.typ <= ftContinuation && h.flags&^definedFlags[h.typ] == 0 &&
		h.length <= maxPlausibleFrame && h.sane()
}

// framesAt counts the plausible frame headers that b holds back to back
// from its first byte, and reports whether all of b is covered by them
// (the last frame may run past b's end). It stops at the first header that
// is not plausible and then reports false.
func framesAt(b []byte) (n int, ok bool) {
	i := 0
	for i+frameHeaderLen <= len(b) {
		h := parseFrameHeader(b[i:])
		if !h.plausible() {
			return n, false
		}
		n++
		i += frameHeaderLen + int(h.length)
	}
	return n, n > 0
}

// LooksLikeHTTP2 tells from the first captured bytes of a direction
// whether they start an HTTP/2 connection: the client preface (or as much
// of it as was captured), a server's first SETTINGS frame, or, for a
// connection whose start weft missed, at least two plausible frames back to
// back. It never allocates and reads only frame headers.
func LooksLikeHTTP2(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if n := min(len(b), len(Preface)); string(b[:n]) == Preface[:n] {
		return n >= 4 // "PRI " at least: no HTTP/1 method starts so
	}
	n, ok := framesAt(b)
	if !ok {
		return false
	}
	if n >= 2 {
		return true
	}
	h := parseFrameHeader(b)
	return h.typ == ftSettings && h.flags == 0
}
