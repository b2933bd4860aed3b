package correlate

import (
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

var (
	front = tproc{800, "front"}
	back  = tproc{900, "back"}
)

// causeOf is a cause pointing at the read of tc's end in proc at time ms.
func causeOf(kind conn.CauseKind, info *conn.Info, at float64) conn.Cause {
	return conn.Cause{Kind: kind, FD: info.ID.FD, Gen: info.ID.Gen, At: ms(at)}
}

// Two requests in flight on an event loop: each call names the read of
// its own request and is nested under it, although both requests contain
// both calls in time (the time rules alone would leave both roots).
func TestCauseNestsOverlappingRequests(t *testing.T) {
	c, col := newJoinTest(t)
	a := dial(curl, 41001, front, "127.0.0.1:8080")
	b := dial(curl, 41002, front, "127.0.0.1:8080")
	out := dial(front, 41003, back, "127.0.0.1:9000")
	callA := out.cli(10, "/back/a", side{start: 2, end: 5, reqTID: 7, respTID: 7})
	callA.RequestCause = causeOf(conn.CauseThread, a.server, 1)
	callB := out.cli(20, "/back/b", side{start: 6, end: 8, reqTID: 7, respTID: 7})
	callB.RequestCause = causeOf(conn.CauseThread, b.server, 1.5)
	// The second call of request a follows the first one's response.
	callA2 := out.cli(30, "/back/a2", side{start: 5.2, end: 5.8, reqTID: 7, respTID: 7})
	callA2.RequestCause = causeOf(conn.CauseThread, out.client, 5)
	addAll(c,
		callA, callB, callA2,
		a.srv(1, "/a", side{start: 1, end: 10, reqTID: 7, respTID: 7}),
		b.srv(1, "/b", side{start: 1.5, end: 9.5, reqTID: 7, respTID: 7}),
	)
	c.FlushAll()
	wantTree(t, col.spans, `
		front server GET /a
		  front client GET /back/a
		  front client GET /back/a2
		--
		front server GET /b
		  front client GET /back/b
	`)
	if got := c.joinStats.byCause[causeNested].Load(); got != 3 {
		t.Errorf("nested by cause: %d, want 3", got)
	}
}

// A cause the rule cannot trust leaves the call a root, counted by why: a
// multiplexed connection with two streams live at the read, a read of a
// request that had ended before the call began (a stale cause), and a
// read no exchange of the connection covers.
func TestCauseUndecidedStaysRoot(t *testing.T) {
	for _, tc := range []struct {
		name string
		why  causeOutcome
	}{
		{"multiplexed", causeAmbiguous},
		{"stale", causeOutside},
		{"no exchange", causeNoExchange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, col := newJoinTest(t)
			in := dial(curl, 42001, front, "127.0.0.1:8080")
			other := dial(curl, 42002, front, "127.0.0.1:8080")
			out := dial(front, 42003, back, "127.0.0.1:9000")
			// Other requests in flight, so neither time rule decides either.
			call := out.cli(10, "/back", side{start: 5, end: 6, reqTID: 7, respTID: 8})
			switch tc.why {
			case causeAmbiguous:
				call.RequestCause = causeOf(conn.CauseGoroutine, in.server, 2)
				addAll(c, in.srv(1, "/s1", side{start: 1, end: 9, reqTID: 7, respTID: 8}),
					in.srv(2, "/s2", side{start: 1.5, end: 9, reqTID: 7, respTID: 8}))
			case causeOutside:
				call.RequestCause = causeOf(conn.CauseGoroutine, in.server, 1)
				addAll(c, in.srv(1, "/s1", side{start: 1, end: 3, reqTID: 7, respTID: 8}))
			case causeNoExchange:
				call.RequestCause = causeOf(conn.CauseGoroutine, in.server, 0.5)
				addAll(c, in.srv(1, "/s1", side{start: 1, end: 9, reqTID: 7, respTID: 8}))
			}
			addAll(c, call, other.srv(1, "/o", side{start: 4, end: 9, reqTID: 7, respTID: 8}),
				other.srv(2, "/o2", side{start: 4.5, end: 9.5, reqTID: 7, respTID: 8}))
			c.FlushAll()
			s := find(t, col.spans, "front client GET /back")
			if s.ParentSpanID.IsValid() {
				t.Errorf("call nested (parent %s), want a root", s.ParentSpanID)
			}
			if got := c.joinStats.byCause[tc.why].Load(); got != 1 {
				t.Errorf("%v: %d, want 1", tc.why, got)
			}
		})
	}
}

// grpcEx is an HTTP/2 gRPC exchange of tc on stream id.
func grpcEx(tc tconn, role conn.Role, seq uint32, stream uint32, method string, sd side) *protocols.Exchange {
	ex := tc.ex(role, seq, method, sd)
	ex.Protocol = protocols.HTTP2
	ex.HTTP.Version, ex.HTTP.Method, ex.HTTP.GRPC, ex.HTTP.StreamID = "2", "POST", true, stream
	return ex
}

// grpc-go: two calls in flight on one multiplexed connection each way.
// The writes carry no useful cause (one writer goroutine); the stream
// causes name the server stream each handler served, and nest each call
// under its own request.
func TestStreamCauseNestsMultiplexedCalls(t *testing.T) {
	c, col := newJoinTest(t)
	in := dial(curl, 43001, front, "127.0.0.1:8080")
	out := dial(front, 43003, back, "127.0.0.1:9000")
	srvCause := func(stream uint32) conn.Cause {
		return conn.Cause{Kind: conn.CauseGoroutine, FD: in.server.ID.FD, Gen: in.server.ID.Gen, At: ms(1), Stream: stream}
	}
	// The handler of stream 3 sends its call on stream 1, stream 5's on 3.
	c.ObserveStreamCause(out.client.ID, 1, srvCause(3))
	c.ObserveStreamCause(out.client.ID, 3, srvCause(5))
	addAll(c,
		grpcEx(out, conn.RoleClient, 10, 1, "/weft.T/a", side{start: 2, end: 6, reqTID: 7, respTID: 8}),
		grpcEx(out, conn.RoleClient, 20, 3, "/weft.T/b", side{start: 2.5, end: 5, reqTID: 7, respTID: 8}),
		grpcEx(in, conn.RoleServer, 1, 5, "/weft.T/B", side{start: 1.2, end: 7, reqTID: 7, respTID: 8}),
		grpcEx(in, conn.RoleServer, 2, 3, "/weft.T/A", side{start: 1, end: 8, reqTID: 7, respTID: 8}),
	)
	c.FlushAll()
	wantTree(t, col.spans, `
		front server weft.T/A
		  front client weft.T/a
		--
		front server weft.T/B
		  front client weft.T/b
	`)
	if got := c.JoinStats().StreamCauses; got != 2 {
		t.Errorf("stream causes observed: %d, want 2", got)
	}
}

// The stream cause table is bounded: the oldest waiting cause goes first
// and is counted; a stream seen again keeps one entry.
func TestStreamCausesBounded(t *testing.T) {
	s := newStreamCauses(2)
	k := func(i uint32) streamKey { return streamKey{conn: connRef{pid: 1, fd: 3, gen: 1}, stream: i} }
	cs := conn.Cause{Kind: conn.CauseGoroutine, Stream: 9}
	for _, i := range []uint32{1, 1, 3} { // stream 1 twice: one entry
		if s.put(k(i), cs) {
			t.Fatal("evicted below the bound")
		}
	}
	if !s.put(k(5), cs) {
		t.Fatal("no eviction past the bound")
	}
	if _, ok := s.take(k(1)); ok {
		t.Error("the oldest survived")
	}
	if _, ok := s.take(k(5)); !ok {
		t.Error("the newest is gone")
	}
	if len(s.m) > 2 {
		t.Errorf("%d held, bound 2", len(s.m))
	}
}
