package correlate

import (
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// traceParent is a parsed W3C traceparent header
// (https://www.w3.org/TR/trace-context/#traceparent-header).
type traceParent struct {
	version  byte
	traceID  trace.TraceID
	parentID trace.SpanID
	flags    trace.TraceFlags
}

// traceParentLen is the length of a version 00 traceparent, and the prefix
// every later version shares.
const traceParentLen = 55

// parseTraceParent parses a traceparent header value. It accepts only what
// the W3C recommendation allows: lowercase hex, the exact field lengths,
// non-zero trace and parent ids, version 00 at exactly 55 characters, and a
// later version (not ff) by its version 00 prefix followed by the end or a
// '-', as the recommendation asks of version 00 parsers. Anything else is
// not a traceparent, and the span starts a trace of its own.
func parseTraceParent(s string) (traceParent, bool) {
	var tp traceParent
	s = strings.Trim(s, " \t") // optional whitespace around a header value
	if len(s) < traceParentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tp, false
	}
	var v [1]byte
	if !decodeLowerHex(v[:], s[0:2]) || v[0] == 0xff {
		return tp, false
	}
	tp.version = v[0]
	if len(s) > traceParentLen && (tp.version == 0 || s[traceParentLen] != '-') {
		return tp, false
	}
	var f [1]byte
	if !decodeLowerHex(tp.traceID[:], s[3:35]) ||
		!decodeLowerHex(tp.parentID[:], s[36:52]) ||
		!decodeLowerHex(f[:], s[53:55]) {
		return tp, false
	}
	tp.flags = trace.TraceFlags(f[0])
	if !tp.traceID.IsValid() || !tp.parentID.IsValid() {
		return tp, false
	}
	return tp, true
}

// decodeLowerHex decodes src, exactly 2*len(dst) lowercase hex digits.
func decodeLowerHex(dst []byte, src string) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := lowerHexValue(src[2*i])
		lo, ok2 := lowerHexValue(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func lowerHexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Bounds on a propagated tracestate, from the W3C recommendation: at most
// 32 list members, and at least 512 characters kept.
const (
	maxTraceStateMembers = 32
	maxTraceStateLen     = 512
)

// boundTraceState returns the tracestate to keep with a joined trace: the
// value trimmed, or "" when it holds anything but printable ASCII. A longer
// value keeps its leading whole members that fit both bounds, the
// truncation the recommendation describes (members are ordered most recent
// first).
func boundTraceState(s string) string {
	s = strings.Trim(s, " \t")
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	cut := len(s)
	members := 1
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if members == maxTraceStateMembers {
				cut = i
				break
			}
			members++
		}
	}
	if cut > maxTraceStateLen {
		cut = max(strings.LastIndexByte(s[:maxTraceStateLen+1], ','), 0)
	}
	return strings.TrimRight(s[:cut], " \t")
}
