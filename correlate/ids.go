package correlate

import (
	"encoding/binary"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/protocols"
)

// Span and trace ids are derived, not drawn: a span id is a hash of what
// identifies its exchange (host, pid, connection id, request sequence
// number, start and end, role, protocol), and a trace id a hash of its
// root's span id. Converting the same exchange again, in this run or after
// a restart that replays it, gives the same ids and so the same tree,
// which a backend then deduplicates instead of showing twice. The hash
// need not be secret, only well mixed: ids name spans, they guard nothing.

// splitmix64 constants (Steele, Lea, Flood: "Fast splittable pseudorandom
// number generators", 2014).
const (
	mixGolden = 0x9e3779b97f4a7c15
	mixMul1   = 0xbf58476d1ce4e5b9
	mixMul2   = 0x94d049bb133111eb
)

// fmix is splitmix64's finalizer: a bijection with full avalanche.
func fmix(x uint64) uint64 {
	x ^= x >> 30
	x *= mixMul1
	x ^= x >> 27
	x *= mixMul2
	x ^= x >> 31
	return x
}

// absorb folds v into the running hash h; the order of fields matters.
func absorb(h, v uint64) uint64 { return fmix(h ^ fmix(v+mixGolden)) }

// hostSeed hashes the host's identity (FNV-1a) so two hosts never derive
// the same ids from look-alike exchanges (same pid, fd, ports).
func hostSeed(host string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(host); i++ {
		h ^= uint64(host[i])
		h *= 1099511628211
	}
	return fmix(h)
}

// Tags keep the id families apart.
const (
	tagSpan   = 1
	tagTraceA = 2
	tagTraceB = 3
)

// exchangeSpanID derives the span id of the span made from ex.
func exchangeSpanID(seed uint64, ex *protocols.Exchange) trace.SpanID {
	h := absorb(seed, tagSpan)
	if ex.Conn != nil {
		id := ex.Conn.ID
		h = absorb(h, uint64(id.PID)<<32|uint64(uint32(id.FD)))
		h = absorb(h, id.Gen)
	}
	h = absorb(h, uint64(ex.RequestSeq)<<16|uint64(ex.Role)<<8|uint64(ex.Protocol))
	h = absorb(h, uint64(ex.Start))
	h = absorb(h, uint64(ex.End))
	return spanIDOf(h)
}

// rootTraceID derives the trace id of a tree from its root's span id.
func rootTraceID(seed uint64, root trace.SpanID) trace.TraceID {
	r := binary.BigEndian.Uint64(root[:])
	var id trace.TraceID
	binary.BigEndian.PutUint64(id[:8], absorb(absorb(seed, tagTraceA), r))
	binary.BigEndian.PutUint64(id[8:], absorb(absorb(seed, tagTraceB), r))
	if !id.IsValid() {
		id[15] = 1
	}
	return id
}

func spanIDOf(h uint64) trace.SpanID {
	if h == 0 {
		h = 1 // the zero id means "no span"
	}
	var id trace.SpanID
	binary.BigEndian.PutUint64(id[:], h)
	return id
}
