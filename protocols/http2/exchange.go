package http2

import (
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// headers acts on a header block that ended in s (p.blk holds what it
// said; lost says nothing of it is known).
func (p *Parser) headers(d conn.Direction, s *conn.Segment, lost bool) {
	sd := &p.sides[d]
	if sd.blkPush {
		return // kept the table in step; pushed streams are not followed
	}
	if !p.roleKnown {
		// A connection that predates weft: requests carry :method,
		// responses :status, both in the static table.
		switch {
		case p.blk.hasMethod:
			p.reqDir = d
		case p.blk.hasStatus:
			p.reqDir = d.Opposite()
		default:
			return
		}
		p.roleKnown = true
	}
	if d == p.reqDir {
		p.request(sd, s, lost)
	} else {
		p.response(sd, s, lost)
	}
}

// request applies a block the client sent: the request's headers, or
// its trailers.
func (p *Parser) request(sd *side, s *conn.Segment, lost bool) {
	id := sd.blkStream
	if id%2 == 0 {
		return // clients open odd streams only
	}
	st := p.streams.find(id)
	if st == nil {
		if id <= p.maxReq {
			return // trailers of a request already emitted
		}
		st = p.open(id)
	}
	st.lastEnd = max(st.lastEnd, s.End)
	if sd.blkEnd {
		st.reqEnd = true
	}
	if st.req {
		return // trailers: nothing in them for spans
	}
	b := &p.blk
	st.req = true
	p.maxReq = max(p.maxReq, id)
	st.start, st.seq, st.tid, st.cause = sd.blkStart, sd.blkSeq, sd.blkTID, sd.blkCause
	st.method, st.path, st.scheme = b.method, b.path, b.scheme
	st.host = b.authority
	if st.host == "" {
		st.host = b.host
	}
	st.userAgent, st.tp, st.ts = b.userAgent, b.traceParent, b.traceState
	st.grpc = st.grpc || b.grpc
	st.partial = st.partial || lost || b.unknown
	if st.respEnd || st.reset {
		// Its response ended before the request was delivered.
		p.emit(st, st.endedAt)
	}
}

// response applies a block the server sent: interim or final response
// headers, or trailers.
func (p *Parser) response(sd *side, s *conn.Segment, lost bool) {
	id := sd.blkStream
	if id%2 == 0 {
		return // a pushed stream's response: pushes are not followed
	}
	st := p.streams.find(id)
	if st == nil {
		if id <= p.maxReq {
			p.stats.Orphans.Add(1)
			return
		}
		// Ahead of its request: the other direction is late.
		st = p.open(id)
	}
	st.lastEnd = max(st.lastEnd, s.End)
	b := &p.blk
	switch {
	case st.resp || lost:
		// Trailers, or a block nothing is known of.
		st.resp = true
		st.partial = st.partial || lost || b.unknown
		st.grpc = st.grpc || b.grpc
		if b.grpcStatus >= 0 {
			st.grpcStatus = b.grpcStatus
		}
	case b.status >= 100 && b.status < 200:
		return // interim: the final response follows
	default:
		st.resp = true
		st.status = b.status
		st.partial = st.partial || b.unknown || !b.hasStatus
		st.grpc = st.grpc || b.grpc
		if b.grpcStatus >= 0 {
			st.grpcStatus = b.grpcStatus // Trailers-Only
		}
	}
	if sd.blkEnd {
		st.respEnd = true
		p.finish(st)
	}
}

// open starts following stream id, dropping the oldest when full.
func (p *Parser) open(id uint32) *stream {
	st, dropped := p.streams.open(id, p.opts.MaxStreams)
	if dropped {
		p.stats.StreamsDropped.Add(1)
	}
	return st
}

// onData accounts a DATA frame of n payload bytes (-1 unknown).
func (p *Parser) onData(d conn.Direction, s *conn.Segment, id uint32, n int64, end bool) {
	if !p.roleKnown {
		return
	}
	st := p.streams.find(id)
	if st == nil {
		return
	}
	st.lastEnd = max(st.lastEnd, s.End)
	if d == p.reqDir {
		addBody(&st.reqBody, n)
		st.reqEnd = st.reqEnd || end
		return
	}
	addBody(&st.respBody, n)
	if end {
		st.respEnd = true
		p.finish(st)
	}
}

func addBody(b *int64, n int64) {
	switch {
	case *b < 0:
	case n < 0:
		*b = -1
	default:
		*b += n
	}
}

// onReset ends a stream either side reset; code is the error code, -1
// when it was not captured.
func (p *Parser) onReset(s *conn.Segment, id uint32, code int64) {
	st := p.streams.find(id)
	if st == nil {
		return
	}
	st.lastEnd = max(st.lastEnd, s.End)
	st.reset, st.rstCode = true, code
	p.finish(st)
}

// finish emits a stream whose outcome is known, once its request is.
func (p *Parser) finish(st *stream) {
	st.endedAt = st.lastEnd
	if st.req {
		p.emit(st, st.lastEnd)
	}
}

// emit sends a stream's exchange to the sink and frees the stream.
func (p *Parser) emit(st *stream, end int64) {
	partial := st.partial || st.reset && st.rstCode < 0
	if !st.resp {
		st.respBody = -1 // no response seen, or none known
	}
	p.http = protocols.HTTP{
		Method:           st.method,
		Path:             st.path,
		Version:          "2",
		Status:           st.status,
		Host:             st.host,
		UserAgent:        st.userAgent,
		TraceParent:      st.tp,
		TraceState:       st.ts,
		RequestBodySize:  st.reqBody,
		ResponseBodySize: st.respBody,
		Scheme:           st.scheme,
		GRPC:             st.grpc,
		GRPCStatus:       grpcStatus(st, partial),
		StreamID:         st.id,
		Partial:          partial,
	}
	role := conn.RoleServer
	if p.reqDir == conn.Egress {
		role = conn.RoleClient
	}
	p.ex = protocols.Exchange{
		Conn:         p.info,
		Role:         role,
		Protocol:     protocols.HTTP2,
		Start:        st.start,
		End:          end,
		RequestSeq:   st.seq,
		RequestTID:   st.tid,
		RequestCause: st.cause,
		HTTP:         &p.http,
	}
	p.stats.Exchanges.Add(1)
	if partial {
		p.stats.Partial.Add(1)
	}
	if !st.resp && !st.reset {
		p.stats.Unanswered.Add(1)
	}
	p.streams.close(st)
	p.sink(&p.ex)
}
