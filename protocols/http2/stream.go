package http2

import "github.com/weftrace/weft/conn"

// stream is one HTTP/2 stream followed until it is emitted.
type stream struct {
	id    uint32
	used  bool
	order uint64 // creation order, to drop the oldest when full

	req, resp         bool // request headers, final response headers seen
	reqEnd, respEnd   bool // END_STREAM seen each way
	reset             bool // either side reset the stream
	partial           bool
	status            int
	grpc              bool
	grpcStatus        int   // from the response or trailers, -1 none
	rstCode           int64 // RST_STREAM error code, -1 unknown
	reqBody, respBody int64 // DATA payload bytes, -1 unknown

	start    int64 // when the request's first byte moved
	seq, tid uint32
	cause    conn.Cause
	lastEnd  int64 // when the stream's last byte seen so far moved
	endedAt  int64 // lastEnd when the outcome arrived

	method, path, host, scheme string
	userAgent, tp, ts          string
}

// streams is a connection's bounded table of open streams. Lookups scan
// it: a connection rarely has more than a few dozen streams open, and
// consecutive frames mostly belong to the same one, which is tried first.
type streams struct {
	s    []stream
	last int // index of the last stream found
	n    int // streams in use
	next uint64
}

// find returns the open stream id, or nil.
func (t *streams) find(id uint32) *stream {
	if t.last < len(t.s) && t.s[t.last].used && t.s[t.last].id == id {
		return &t.s[t.last]
	}
	for i := range t.s {
		if t.s[i].used && t.s[i].id == id {
			t.last = i
			return &t.s[i]
		}
	}
	return nil
}

// open adds stream id. With max streams open it reuses the oldest one's
// slot and reports that it dropped it.
func (t *streams) open(id uint32, max int) (st *stream, dropped bool) {
	slot := -1
	if t.n < len(t.s) {
		for i := range t.s {
			if !t.s[i].used {
				slot = i
				break
			}
		}
	} else if len(t.s) < max {
		t.s = append(t.s, stream{})
		slot = len(t.s) - 1
	} else {
		for i := range t.s {
			if slot < 0 || t.s[i].order < t.s[slot].order {
				slot = i
			}
		}
		dropped = true
		t.n--
	}
	t.n++
	t.next++
	t.s[slot] = stream{id: id, used: true, order: t.next, grpcStatus: -1, rstCode: -1}
	t.last = slot
	return &t.s[slot], dropped
}

// close frees a stream's slot and lets its strings go.
func (t *streams) close(st *stream) {
	*st = stream{}
	t.n--
}
