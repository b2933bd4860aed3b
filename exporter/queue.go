package exporter

import "github.com/weftrace/weft/correlate"

// ring is a fixed-size FIFO of spans that overwrites its oldest entry when
// full: under overload the newest spans are the ones worth keeping, and the
// memory never grows. It is not safe for concurrent use; Exporter locks it.
type ring struct {
	buf  []correlate.Span
	head int // index of the oldest span
	n    int
}

func newRing(size int) *ring { return &ring{buf: make([]correlate.Span, size)} }

func (r *ring) len() int { return r.n }

// push adds s and reports whether the oldest span was dropped for it.
func (r *ring) push(s correlate.Span) (dropped bool) {
	if r.n == len(r.buf) {
		r.buf[r.head] = s
		r.head = (r.head + 1) % len(r.buf)
		return true
	}
	r.buf[(r.head+r.n)%len(r.buf)] = s
	r.n++
	return false
}

// pop appends up to max of the oldest spans to dst and returns it. Emptied
// slots are zeroed so the queue holds no references to sent spans.
func (r *ring) pop(dst []correlate.Span, max int) []correlate.Span {
	for range min(max, r.n) {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = correlate.Span{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	return dst
}

// discard empties the ring and returns how many spans it held.
func (r *ring) discard() int {
	n := r.n
	clear(r.buf)
	r.head, r.n = 0, 0
	return n
}
