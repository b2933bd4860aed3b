package correlate

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

var (
	curl    = tproc{100, "curl"}
	gosrv   = tproc{200, "gosrv"}
	pyrelay = tproc{300, "pyrelay"}
	pyleaf  = tproc{400, "pyleaf"}
)

// chain is curl -> gosrv -> pyrelay -> pyleaf, one request each hop: gosrv
// is a Go program (threads differ between request and response),
// pyrelay and pyleaf thread-per-request servers. Its exchanges are listed
// in the order they complete: innermost first.
func chain(tp string) []*protocols.Exchange {
	c1 := dial(curl, 50001, gosrv, "127.0.0.1:8080")
	c2 := dial(gosrv, 50002, pyrelay, "127.0.0.1:9000")
	c3 := dial(pyrelay, 50003, pyleaf, "127.0.0.1:9100")
	return []*protocols.Exchange{
		c3.srv(3000, "/leaf", side{start: 5, end: 6.5, reqTID: 401, respTID: 401}),
		c3.cli(3000, "/leaf", side{start: 4, end: 7, reqTID: 301, respTID: 301}),
		c2.srv(2000, "/relay", side{start: 3, end: 7.5, reqTID: 301, respTID: 301}),
		c2.cli(2000, "/relay", side{start: 2, end: 8, reqTID: 203, respTID: 204}),
		c1.srv(1000, "/chain", side{start: 1, end: 9, reqTID: 201, respTID: 202, traceParent: tp, traceState: "k=v"}),
		c1.cli(1000, "/chain", side{start: 0, end: 10, reqTID: 101, respTID: 101}),
	}
}

const chainTree = `
	curl client GET /chain
	  gosrv server GET /chain
	    gosrv client GET /relay
	      pyrelay server GET /relay
	        pyrelay client GET /leaf
	          pyleaf server GET /leaf
`

// TestChainEveryArrivalOrder feeds the chain's six exchanges in every
// order: the tree, and every id, are the same each time.
func TestChainEveryArrivalOrder(t *testing.T) {
	exs := chain("")
	var first map[string]Span
	n := 0
	permute(len(exs), func(order []int) {
		n++
		c, col := newJoinTest(t)
		for _, i := range order {
			c.Add(exs[i])
		}
		c.Flush(ms(10) + int64(testWait) - 1)
		if len(col.spans) != 0 {
			t.Fatalf("order %v: %d spans emitted before the last one's wait ended", order, len(col.spans))
		}
		c.Flush(ms(10) + int64(testWait))
		if len(col.spans) != 6 {
			t.Fatalf("order %v: %d spans, want 6", order, len(col.spans))
		}
		got := map[string]Span{}
		for _, s := range col.spans {
			got[spanLabel(s)] = s
		}
		if first == nil {
			wantTree(t, col.spans, chainTree)
			root := got["curl client GET /chain"]
			if root.TraceID != rootTraceID(hostSeed("test-host"), root.SpanID) {
				t.Errorf("trace id %s is not derived from the root's span id", root.TraceID)
			}
			first = got
			return
		}
		for k, s := range got {
			f := first[k]
			if s.TraceID != f.TraceID || s.SpanID != f.SpanID || s.ParentSpanID != f.ParentSpanID {
				t.Fatalf("order %v: %s has ids %s/%s/%s, first order gave %s/%s/%s",
					order, k, s.TraceID, s.SpanID, s.ParentSpanID, f.TraceID, f.SpanID, f.ParentSpanID)
			}
		}
		if st := c.JoinStats(); st.Pairs != 3 || st.NestedBySingle != 2 || st.Unattributed != 0 || st.LatePairs != 0 {
			t.Fatalf("order %v: stats %+v", order, st)
		}
	})
	if n != 720 {
		t.Fatalf("%d orders tried", n)
	}
}

// permute calls f with every permutation of 0..n-1 (Heap's algorithm).
func permute(n int, f func([]int)) {
	a := make([]int, n)
	for i := range a {
		a[i] = i
	}
	var gen func(k int)
	gen = func(k int) {
		if k == 1 {
			f(a)
			return
		}
		for i := 0; i < k; i++ {
			gen(k - 1)
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
		}
	}
	gen(n)
}

func TestChainPeerService(t *testing.T) {
	c, col := newJoinTest(t)
	addAll(c, chain("")...)
	c.Flush(ms(10) + int64(testWait))
	for label, want := range map[string]string{
		"curl client GET /chain":    "gosrv",
		"gosrv client GET /relay":   "pyrelay",
		"pyrelay client GET /leaf":  "pyleaf",
		"gosrv server GET /chain":   "",
		"pyleaf server GET /leaf":   "",
		"pyrelay server GET /relay": "",
	} {
		s := find(t, col.spans, label)
		if got := attrValue(&s, "service.peer.name"); got != want {
			t.Errorf("%s: service.peer.name %q, want %q", label, got, want)
		}
	}
}

// TestTraceParentWins: gosrv's request carries a traceparent. gosrv's
// server span keeps its trace and parent; everything below follows; curl's
// span, with no parent of its own, joins that trace beside it, under the
// caller's span the header names.
func TestTraceParentWins(t *testing.T) {
	c, col := newJoinTest(t)
	addAll(c, chain(validTP)...)
	c.Flush(ms(10) + int64(testWait))
	wantTree(t, col.spans, `
		curl client GET /chain ^`+validParentID+` trace=`+validTraceID+`
		--
		gosrv server GET /chain ^`+validParentID+` trace=`+validTraceID+`
		  gosrv client GET /relay
		    pyrelay server GET /relay
		      pyrelay client GET /leaf
		        pyleaf server GET /leaf
	`)
	for _, s := range col.spans {
		if s.TraceID.String() != validTraceID || s.TraceState != "k=v" {
			t.Errorf("%s: trace %s state %q, want the traceparent's and k=v", spanLabel(s), s.TraceID, s.TraceState)
		}
	}
}

func TestInvalidTraceParentIgnored(t *testing.T) {
	c, col := newJoinTest(t)
	addAll(c, chain("00-"+validTraceID+"-0000000000000000-01")...)
	c.Flush(ms(10) + int64(testWait))
	wantTree(t, col.spans, chainTree)
	if st := c.Stats(); st.InvalidTraceParents != 1 || st.JoinedTraces != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLostSide: an end that never arrives leaves the other a root once its
// wait is over, and not before.
func TestLostSide(t *testing.T) {
	for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer} {
		t.Run(role.String(), func(t *testing.T) {
			c, col := newJoinTest(t)
			cn := dial(curl, 50010, gosrv, "127.0.0.1:8080")
			c.Add(cn.ex(role, 7, "/lonely", side{start: 1, end: 2}))
			c.Flush(ms(2) + int64(testWait) - 1)
			if len(col.spans) != 0 {
				t.Fatalf("emitted before the wait ended: %v", col.spans)
			}
			c.Flush(ms(2) + int64(testWait))
			if len(col.spans) != 1 || col.spans[0].ParentSpanID.IsValid() || !col.spans[0].TraceID.IsValid() {
				t.Fatalf("spans %+v, want one root", col.spans)
			}
			if st := c.JoinStats(); st.Pairs != 0 || st.Held != 1 {
				t.Errorf("stats %+v, want no pair and the span still held as a possible partner", st)
			}
			c.Flush(ms(2) + 2*int64(testWait))
			if st := c.JoinStats(); st.Held != 0 {
				t.Errorf("held %d after expiry", st.Held)
			}
		})
	}
}

// TestLateServer: the server's end arrives after the client's tree left:
// it still joins the client's trace, by id.
func TestLateServer(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50011, gosrv, "127.0.0.1:8080")
	c.Add(cn.cli(9, "/slow", side{start: 1, end: 5}))
	c.Flush(ms(5) + int64(testWait))
	if len(col.spans) != 1 {
		t.Fatalf("%d spans", len(col.spans))
	}
	c.Add(cn.srv(9, "/slow", side{start: 2, end: 4}))
	c.Flush(ms(5) + 2*int64(testWait))
	wantTree(t, col.spans, `
		curl client GET /slow
		  gosrv server GET /slow
	`)
	if st := c.JoinStats(); st.Pairs != 1 || st.LatePairs != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFDReuse: a server closes a connection and accepts the next on the
// same fd (a new generation); the two requests carry the same sequence
// number by chance. Each server span joins its own client span.
func TestFDReuse(t *testing.T) {
	c, col := newJoinTest(t)
	a := dial(curl, 50020, gosrv, "127.0.0.1:8080")
	b := dial(tproc{101, "wget"}, 50021, gosrv, "127.0.0.1:8080")
	*b.server = *a.server
	b.server.ID.Gen++
	b.server.Tuple.Remote = b.client.Tuple.Local
	addAll(c,
		a.srv(5, "/a", side{start: 1, end: 2}),
		a.cli(5, "/a", side{start: 0.5, end: 2.5}),
		b.srv(5, "/b", side{start: 3, end: 4}),
		b.cli(5, "/b", side{start: 2.8, end: 4.2}),
	)
	c.FlushAll()
	wantTree(t, col.spans, `
		curl client GET /a
		  gosrv server GET /a
		--
		wget client GET /b
		  gosrv server GET /b
	`)
	if find(t, col.spans, "gosrv server GET /a").SpanID == find(t, col.spans, "gosrv server GET /b").SpanID {
		t.Error("two exchanges on a reused fd got one span id")
	}
}

// TestIPv4MappedJoin: a dual-stack server sees its IPv4 client as
// ::ffff:a.b.c.d; the client sees plain IPv4. They still join.
func TestIPv4MappedJoin(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50030, gosrv, "127.0.0.1:8080")
	m := func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	srvInfo := *cn.server
	srvInfo.Tuple = conn.Tuple{Local: m(srvInfo.Tuple.Local), Remote: m(srvInfo.Tuple.Remote)}
	cn.server = &srvInfo
	addAll(c, cn.srv(1, "/v6", side{start: 1, end: 2}), cn.cli(1, "/v6", side{start: 0, end: 3}))
	c.FlushAll()
	wantTree(t, col.spans, `
		curl client GET /v6
		  gosrv server GET /v6
	`)
}

// overlapping is gosrv serving two requests whose handlers each call
// pyrelay, with threads as a Go program has them: request, response and
// call on threads that differ. reqTIDs gives each request's read thread
// and callTIDs each call's write thread.
func overlapping(reqTIDs, callTIDs [2]uint32, respSame bool) []*protocols.Exchange {
	in := [2]tconn{dial(curl, 50040, gosrv, "127.0.0.1:8080"), dial(curl, 50041, gosrv, "127.0.0.1:8080")}
	out := [2]tconn{dial(gosrv, 50042, pyrelay, "127.0.0.1:9000"), dial(gosrv, 50043, pyrelay, "127.0.0.1:9000")}
	resp := func(tid uint32) uint32 {
		if respSame {
			return tid
		}
		return tid + 1000
	}
	// Request 0 [1, 10] calls [2, 6]; request 1 [3, 12] calls [4, 9].
	return []*protocols.Exchange{
		out[0].cli(1, "/call0", side{start: 2, end: 6, reqTID: callTIDs[0], respTID: resp(callTIDs[0])}),
		out[1].cli(2, "/call1", side{start: 4, end: 9, reqTID: callTIDs[1], respTID: resp(callTIDs[1])}),
		in[0].srv(3, "/req0", side{start: 1, end: 10, reqTID: reqTIDs[0], respTID: resp(reqTIDs[0])}),
		in[1].srv(4, "/req1", side{start: 3, end: 12, reqTID: reqTIDs[1], respTID: resp(reqTIDs[1])}),
	}
}

// TestTwoInFlightUndecided: two requests in flight in a process whose
// threads cannot be trusted (Go): neither call gets a parent, and both
// are counted.
func TestTwoInFlightUndecided(t *testing.T) {
	c, col := newJoinTest(t)
	addAll(c, overlapping([2]uint32{201, 202}, [2]uint32{201, 202}, false)...)
	c.FlushAll()
	wantTree(t, col.spans, `
		gosrv server GET /req0
		--
		gosrv client GET /call0
		--
		gosrv server GET /req1
		--
		gosrv client GET /call1
	`)
	if st := c.JoinStats(); st.Unattributed != 2 || st.NestedByThread+st.NestedBySingle != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestTwoInFlightByThread: the same overlap in a thread-per-request
// process, once its threads earned trust: each call goes to the request
// its thread read.
func TestTwoInFlightByThread(t *testing.T) {
	c, col := newJoinTest(t)
	warmUp(c, minStableExchanges)
	col.spans = nil
	addAll(c, overlapping([2]uint32{201, 202}, [2]uint32{201, 202}, true)...)
	c.FlushAll()
	wantTree(t, col.spans, `
		gosrv server GET /req0
		  gosrv client GET /call0
		--
		gosrv server GET /req1
		  gosrv client GET /call1
	`)
	if st := c.JoinStats(); st.NestedByThread != 2 || st.Unattributed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestThreadTrustNeedsHistory: with one exchange fewer than
// minStableExchanges behind it the thread rule does not apply yet.
func TestThreadTrustNeedsHistory(t *testing.T) {
	c, col := newJoinTest(t)
	warmUp(c, minStableExchanges-5) // with the four exchanges below: one short
	col.spans = nil
	addAll(c, overlapping([2]uint32{201, 202}, [2]uint32{201, 202}, true)...)
	c.FlushAll()
	if st := c.JoinStats(); st.NestedByThread != 0 || st.Unattributed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestThreadRuleNeverGuesses: trusted threads, but the calling thread read
// neither request (an async client's I/O thread): no parent.
func TestThreadRuleNeverGuesses(t *testing.T) {
	c, _ := newJoinTest(t)
	warmUp(c, minStableExchanges)
	addAll(c, overlapping([2]uint32{201, 202}, [2]uint32{250, 250}, true)...)
	c.FlushAll()
	if st := c.JoinStats(); st.NestedByThread != 0 || st.Unattributed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// warmUp gives gosrv n exchanges whose request and response moved on one
// thread, long before the test's own.
func warmUp(c *Correlator, n int) {
	cn := dial(curl, 50099, gosrv, "127.0.0.1:8080")
	for i := range n {
		c.Add(cn.srv(uint32(90000+i), "/warm", side{start: -1000 + float64(i), end: -999.5 + float64(i), reqTID: 299, respTID: 299}))
	}
	// Emitted and expired; later exchanges wait from this time on.
	c.Flush(2 * int64(testWait))
}

// TestSingleInFlight: one request in flight in a Go process: its call is
// its child whatever the threads say.
func TestSingleInFlight(t *testing.T) {
	c, col := newJoinTest(t)
	exs := overlapping([2]uint32{201, 202}, [2]uint32{203, 204}, false)
	addAll(c, exs[0], exs[2]) // call0 and req0 only
	c.FlushAll()
	wantTree(t, col.spans, `
		gosrv server GET /req0
		  gosrv client GET /call0
	`)
}

// TestPartialOverlapNoParent: the only request in flight began after the
// call did: no containment, no parent, and nothing to count.
func TestPartialOverlapNoParent(t *testing.T) {
	c, col := newJoinTest(t)
	in := dial(curl, 50050, gosrv, "127.0.0.1:8080")
	out := dial(gosrv, 50051, pyrelay, "127.0.0.1:9000")
	addAll(c,
		out.cli(1, "/call", side{start: 1, end: 5}),
		in.srv(2, "/req", side{start: 2, end: 8}),
	)
	c.FlushAll()
	if len(col.spans) != 2 || col.spans[0].ParentSpanID.IsValid() || col.spans[1].ParentSpanID.IsValid() {
		t.Errorf("spans %v", render(col.spans))
	}
	if st := c.JoinStats(); st.Unattributed != 0 || st.NestedBySingle != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSelfCall: a process calls itself; the server end is the client's
// child, and the client is not nested in its own server end.
func TestSelfCall(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(gosrv, 50060, gosrv, "127.0.0.1:8080")
	addAll(c,
		cn.srv(1, "/self", side{start: 1, end: 2}),
		cn.cli(1, "/self", side{start: 1, end: 2}),
	)
	c.FlushAll()
	wantTree(t, col.spans, `
		gosrv client GET /self
		  gosrv server GET /self
	`)
	if st := c.JoinStats(); st.Unattributed != 0 || st.NestedBySingle != 0 {
		t.Errorf("the call's own server end was taken for its parent: %+v", st)
	}
}

// TestMaxSpans: a full buffer settles its oldest span early, counted;
// nothing is lost and the buffer never holds more than its bound.
func TestMaxSpans(t *testing.T) {
	c, col := newTest(t, Config{Join: JoinConfig{Wait: testWait, MaxSpans: 4}})
	for i := range 10 {
		cn := dial(curl, uint16(51000+i), gosrv, "127.0.0.1:8080")
		c.Add(cn.cli(uint32(i), fmt.Sprintf("/%d", i), side{start: 1, end: 2}))
		if h := c.JoinStats().Held; h > 4 {
			t.Fatalf("holding %d spans, bound 4", h)
		}
	}
	if st := c.JoinStats(); st.Evicted != 6 || len(col.spans) != 6 {
		t.Errorf("%d spans emitted, stats %+v; want 6 evicted and emitted", len(col.spans), st)
	}
	c.FlushAll()
	if len(col.spans) != 10 {
		t.Errorf("%d spans after FlushAll, want 10", len(col.spans))
	}
}

// TestUnknownRolePassesThrough: spans of unknown kind join nothing and
// still come out, once.
func TestUnknownRolePassesThrough(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50070, gosrv, "127.0.0.1:8080")
	c.Add(cn.ex(conn.RoleUnknown, 1, "/x", side{start: 1, end: 2}))
	c.Flush(ms(2) + int64(testWait))
	if len(col.spans) != 1 || col.spans[0].Kind != trace.SpanKindUnspecified {
		t.Errorf("spans %+v", col.spans)
	}
}

// TestTickWithoutExchanges: Flush alone, with the monotonic clock, ends
// the wait (the agent's timer when no exchange comes).
func TestTickWithoutExchanges(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50080, gosrv, "127.0.0.1:8080")
	c.Add(cn.cli(1, "/t", side{start: 1, end: 2}))
	for now := ms(2); len(col.spans) == 0; now += ms(10) {
		if now > ms(2)+2*int64(testWait) {
			t.Fatal("not emitted by the timer")
		}
		c.Flush(now)
	}
}

// TestObserveAccept: a client span towards an address where a process of
// this host accepted connections names that process's service, though its
// server end was never seen.
func TestObserveAccept(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50090, pyleaf, "127.0.0.1:9100")
	c.ObserveAccept(cn.server)
	c.Add(cn.cli(1, "/unseen", side{start: 1, end: 2}))
	c.Flush(ms(2) + int64(testWait))
	if len(col.spans) != 1 {
		t.Fatalf("%d spans", len(col.spans))
	}
	if got := attrValue(&col.spans[0], "service.peer.name"); got != "pyleaf" {
		t.Errorf("service.peer.name %q, want pyleaf", got)
	}
}

// TestStatsWhileAdding reads the counters from another goroutine while
// exchanges flow (run with -race).
func TestStatsWhileAdding(t *testing.T) {
	c, _ := newJoinTest(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = c.JoinStats()
				_ = c.Stats()
			}
		}
	})
	for i := range 200 {
		exs := chain("")
		for _, ex := range exs {
			ex.Start += ms(float64(20 * i))
			ex.End += ms(float64(20 * i))
			c.Add(ex)
		}
	}
	c.FlushAll()
	close(stop)
	wg.Wait()
	if st := c.JoinStats(); st.Pairs != 600 {
		t.Errorf("pairs %d, want 600", st.Pairs)
	}
}

// TestLateCall: a call's span reaches the correlator after the tree of the
// request it was made for left (its events lagged): it still joins that
// request's trace, by id.
func TestLateCall(t *testing.T) {
	c, col := newJoinTest(t)
	in := dial(curl, 50100, gosrv, "127.0.0.1:8080")
	out := dial(gosrv, 50101, pyrelay, "127.0.0.1:9000")
	c.Add(in.srv(1, "/req", side{start: 1, end: 10}))
	c.Flush(ms(10) + int64(testWait))
	if len(col.spans) != 1 {
		t.Fatalf("%d spans", len(col.spans))
	}
	c.Add(out.cli(2, "/call", side{start: 2, end: 8}))
	c.Flush(ms(10) + 2*int64(testWait)) // the call's own wait
	wantTree(t, col.spans, `
		gosrv server GET /req
		  gosrv client GET /call
	`)
	if st := c.JoinStats(); st.NestedBySingle != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestAbsurdEnd: an exchange whose end lies far ahead neither settles the
// others early nor stalls the timer.
func TestAbsurdEnd(t *testing.T) {
	c, col := newJoinTest(t)
	cn := dial(curl, 50110, gosrv, "127.0.0.1:8080")
	c.Add(cn.cli(1, "/a", side{start: 1, end: 2}))
	c.Add(cn.cli(2, "/b", side{start: 3, end: 4e9})) // 46 days
	if len(col.spans) != 0 {
		t.Fatalf("%d spans settled early", len(col.spans))
	}
	c.Flush(ms(4) + int64(testWait))
	if len(col.spans) != 2 {
		t.Fatalf("%d spans after the wait, want 2", len(col.spans))
	}
}

// peerNames is a fixed PeerNamer.
type peerNames map[netip.Addr]string

func (p peerNames) PeerName(ip netip.Addr) string { return p[ip] }

// TestPeerNamesHook: a client span to an address no process of this host
// is known at is named by Config.PeerNames (a Kubernetes Service); one
// whose server is known keeps the server's own service name.
func TestPeerNamesHook(t *testing.T) {
	names := peerNames{
		netip.MustParseAddr("10.96.0.20"): "orders",
		netip.MustParseAddr("10.244.1.7"): "not-this",
	}
	c, col := newTest(t, Config{Join: JoinConfig{Wait: testWait}, HostID: "test-host", PeerNames: names})
	remote := dial(curl, 50100, gosrv, "10.96.0.20:80")
	c.Add(remote.cli(1, "/svc", side{start: 1, end: 2}))
	unknown := dial(curl, 50101, gosrv, "10.96.0.21:80")
	c.Add(unknown.cli(1, "/none", side{start: 3, end: 4}))
	local := dial(curl, 50102, pyleaf, "10.244.1.7:9100")
	c.ObserveAccept(local.server)
	c.Add(local.cli(1, "/local", side{start: 5, end: 6}))
	c.Flush(ms(6) + int64(testWait))
	for label, want := range map[string]string{
		"curl client GET /svc":   "orders",
		"curl client GET /none":  "",
		"curl client GET /local": "pyleaf",
	} {
		s := find(t, col.spans, label)
		if got := attrValue(&s, "service.peer.name"); got != want {
			t.Errorf("%s: service.peer.name %q, want %q", label, got, want)
		}
	}
}
