package http1

import (
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// harness feeds hand-written segments: each call is one syscall at time
// 100*n (Start) to 100*n+50 (End) on thread n.
type harness struct {
	t     *testing.T
	p     *Parser
	info  *conn.Info
	stats *Stats
	n     int64
	off   [2]uint64
	isn   [2]uint32
	got   []protocols.Exchange
}

func newHarness(t *testing.T, role conn.Role, opts Options) *harness {
	h := &harness{t: t, info: &conn.Info{Role: role}, stats: new(Stats), isn: [2]uint32{0xFFFF_FFF0, 7000}}
	opts.Stats = h.stats
	h.p = New(h.info, func(x *protocols.Exchange) {
		c := *x
		hh := *x.HTTP
		c.HTTP = &hh
		h.got = append(h.got, c)
	}, opts)
	return h
}

func (h *harness) seg(d conn.Direction, data string, skip uint64) *conn.Segment {
	h.n++
	s := &conn.Segment{
		Dir: d, Offset: h.off[d], Skip: skip,
		Start: 100 * h.n, End: 100*h.n + 50,
		Seq: h.isn[d] + uint32(h.off[d]), TID: uint32(h.n),
	}
	if skip == 0 {
		s.Data = []byte(data)
	}
	h.off[d] += s.Len()
	h.p.Segment(s)
	return s
}

func (h *harness) out(data string) *conn.Segment   { return h.seg(conn.Egress, data, 0) }
func (h *harness) in(data string) *conn.Segment    { return h.seg(conn.Ingress, data, 0) }
func (h *harness) skip(d conn.Direction, n uint64) { h.seg(d, "", n) }

func (h *harness) stat(name string, got uint64, want uint64) {
	h.t.Helper()
	if got != want {
		h.t.Errorf("%s = %d, want %d", name, got, want)
	}
}

// summary is the part of an exchange most tests check.
func summary(xs []protocols.Exchange) string {
	var b strings.Builder
	for _, x := range xs {
		h := x.HTTP
		b.WriteString(h.Method + " " + h.Path + " " + itoa(int64(h.Status)) + " " + itoa(h.RequestBodySize) + "/" + itoa(h.ResponseBodySize) + "; ")
	}
	return b.String()
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func (h *harness) want(s string) {
	h.t.Helper()
	if got := summary(h.got); got != s {
		h.t.Errorf("exchanges:\n got  %q\n want %q", got, s)
	}
}

const get = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"

func ok(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(int64(len(body))) + "\r\n\r\n" + body
}

func TestTiming(t *testing.T) {
	for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer} {
		t.Run(role.String(), func(t *testing.T) {
			h := newHarness(t, role, Options{})
			req, resp := h.out, h.in
			if role == conn.RoleServer {
				req, resp = h.in, h.out
			}
			// Two pipelined requests in one segment after a partial one:
			// the second starts 16+len(get) bytes into the segment.
			r1 := req("GET /a HTTP/1.1\r\n")
			r2 := req("Host: h\r\n\r\n" + get)
			rs1 := resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab")
			e1 := resp("c" + ok("x"))
			h.p.Close(1 << 40)
			h.want("GET /a 200 0/3; GET /a 200 0/1; ")
			if len(h.got) != 2 {
				return
			}
			wantStart := [2]int64{r1.End, r2.End}
			wantRole := conn.RoleServer
			if role == conn.RoleClient {
				wantStart = [2]int64{r1.Start, r2.Start}
				wantRole = conn.RoleClient
			}
			for i, x := range h.got {
				if x.Start != wantStart[i] || x.End != e1.End {
					t.Errorf("exchange %d: start, end = %d, %d, want %d, %d", i, x.Start, x.End, wantStart[i], e1.End)
				}
				if x.Role != wantRole || x.Protocol != protocols.HTTP1 || x.Conn != h.info {
					t.Errorf("exchange %d: role %v protocol %v conn %p", i, x.Role, x.Protocol, x.Conn)
				}
			}
			// Sequence numbers wrap: the request direction's ISN is
			// 0xFFFFFFF0 or 7000.
			if x := h.got[0]; x.RequestSeq != r1.Seq || x.RequestTID != r1.TID {
				t.Errorf("first request seq/tid = %d/%d, want %d/%d", x.RequestSeq, x.RequestTID, r1.Seq, r1.TID)
			}
			off := uint32(len("Host: h\r\n\r\n"))
			if x := h.got[1]; x.RequestSeq != r2.Seq+off || x.RequestTID != r2.TID {
				t.Errorf("second request seq/tid = %d/%d, want %d/%d", x.RequestSeq, x.RequestTID, r2.Seq+off, r2.TID)
			}
			// The response's thread is the one that moved its status line.
			if a, b := h.got[0].ResponseTID, h.got[1].ResponseTID; a != rs1.TID || b != e1.TID {
				t.Errorf("response tids = %d, %d, want %d, %d", a, b, rs1.TID, e1.TID)
			}
		})
	}
}

func TestRoleInference(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		h := newHarness(t, conn.RoleUnknown, Options{})
		h.in("rest of an older body")            // joined mid-stream: ignored
		h.in(ok("old"))                          // a response: requests are egress
		h.out("tail of an older request body\n") // not a message start
		r := h.out(get)
		h.in(ok("new"))
		h.p.Close(1)
		h.want("GET /a 200 0/3; ")
		h.stat("orphans", h.stats.Orphans.Load(), 1)
		h.stat("malformed", h.stats.Malformed.Load(), 0)
		if len(h.got) == 1 && (h.got[0].Role != conn.RoleClient || h.got[0].Start != r.Start) {
			t.Errorf("role %v start %d, want client %d", h.got[0].Role, h.got[0].Start, r.Start)
		}
		if h.info.Role != conn.RoleUnknown {
			t.Errorf("info.Role changed to %v; the parser must not write shared state", h.info.Role)
		}
	})
	t.Run("server", func(t *testing.T) {
		h := newHarness(t, conn.RoleUnknown, Options{})
		r := h.in("POST /p HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
		h.out(ok(""))
		h.p.Close(1)
		h.want("POST /p 200 2/0; ")
		if len(h.got) == 1 && (h.got[0].Role != conn.RoleServer || h.got[0].Start != r.End || h.got[0].HTTP.Version != "1.0") {
			t.Errorf("got %+v, want server role, start %d, version 1.0", h.got[0], r.End)
		}
	})
}

func TestSkips(t *testing.T) {
	t.Run("in content-length bodies", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("PUT /u HTTP/1.1\r\nContent-Length: 10000\r\n\r\nabc")
		h.skip(conn.Ingress, 9994)
		h.in("xyz" + get)
		h.out("HTTP/1.1 201 Created\r\nContent-Length: 5000\r\n\r\n")
		h.skip(conn.Egress, 5000)
		h.out(ok("1"))
		h.p.Close(1)
		h.want("PUT /u 201 10000/5000; GET /a 200 0/1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 0)
	})
	t.Run("in chunk data", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10;ext=1\r\n0123")
		h.skip(conn.Ingress, 12+2) // rest of the data and its CRLF
		h.in("3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
		h.out(ok("done"))
		h.p.Close(1)
		h.want("POST /c 200 19/4; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 0)
	})
	t.Run("in a request head", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("GET /lost HTTP/1.1\r\nHo")
		h.skip(conn.Ingress, 100)
		h.in("more of the lost head\r\n\r\n") // not a message start
		h.in("GET /b HTTP/1.1\r\n\r\n")
		h.out(ok("b"))
		h.p.Close(1)
		h.want("GET /b 200 0/1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 1)
		h.stat("unanswered", h.stats.Unanswered.Load(), 0)
	})
	t.Run("in a chunk-size line", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.out(get)
		last := h.in("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		h.skip(conn.Ingress, 3)
		h.in("\r\nabc\r\n0\r\n\r\n") // lost place: dropped
		h.out(get)
		h.in(ok("z"))
		h.p.Close(1)
		// The status was read, so the first exchange is kept with an
		// unknown body size, ending with the last byte that was parsed.
		h.want("GET /a 200 0/-1; GET /a 200 0/1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 1)
		if len(h.got) > 0 && h.got[0].End != last.End {
			t.Errorf("end = %d, want %d", h.got[0].End, last.End)
		}
	})
	t.Run("lost responses", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.out(get)
		h.skip(conn.Ingress, 500) // the whole first response
		h.out("GET /b HTTP/1.1\r\n\r\n")
		h.in(ok("b"))
		h.p.Close(1)
		// Without pipelining the response found after the loss answers
		// the newest request; the older one is emitted unanswered.
		h.want("GET /a 0 0/-1; GET /b 200 0/1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 1)
		h.stat("unanswered", h.stats.Unanswered.Load(), 1)
	})
	t.Run("offset gap", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("PUT /u HTTP/1.1\r\nContent-Length: 8\r\n\r\nab")
		h.off[conn.Ingress] += 4 // bytes the conn layer never reported
		h.in("gh")
		h.out(ok(""))
		h.p.Close(1)
		h.want("PUT /u 200 8/0; ")
	})
	t.Run("overlap", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("GET /a HT")
		h.off[conn.Ingress] -= 3 // "a HT" again, then the rest
		h.in(" HTTP/1.1\r\n\r\n")
		h.out(ok(""))
		h.p.Close(1)
		h.want("GET /a 200 0/0; ")
	})
}

func TestPipelineOverflow(t *testing.T) {
	h := newHarness(t, conn.RoleClient, Options{MaxPending: 2})
	h.out("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
	h.in(ok("a") + ok("b") + ok("c"))
	h.p.Close(1)
	// /1 was dropped to make room, so responses pair one off: the cost
	// of a bound that pipelining deeper than it exceeds.
	h.want("GET /2 200 0/1; GET /3 200 0/1; ")
	h.stat("overflows", h.stats.Overflows.Load(), 1)
	h.stat("orphans", h.stats.Orphans.Load(), 1)
}

func TestClose(t *testing.T) {
	t.Run("unanswered", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.out(get)
		h.out("GET /b HTTP/1.1\r\n\r\n")
		h.in(ok(""))
		h.p.Close(12345)
		h.p.Close(99999) // idempotent
		h.out(get)       // ignored after close
		h.want("GET /a 200 0/0; GET /b 0 0/-1; ")
		h.stat("unanswered", h.stats.Unanswered.Load(), 1)
		h.stat("exchanges", h.stats.Exchanges.Load(), 2)
		if len(h.got) == 2 && h.got[1].End != 12345 {
			t.Errorf("unanswered end = %d, want the close time", h.got[1].End)
		}
		if len(h.got) == 2 && (h.got[1].ResponseTID != 0 || h.got[0].ResponseTID == 0) {
			t.Errorf("response tids %d, %d; want the answer's, then 0 for no answer", h.got[0].ResponseTID, h.got[1].ResponseTID)
		}
	})
	t.Run("close-delimited", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in("GET /s HTTP/1.0\r\n\r\n")
		h.out("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc")
		h.skip(conn.Egress, 1000)
		last := h.out("de")
		h.want("")
		h.p.Close(1 << 40)
		h.want("GET /s 200 0/1005; ")
		if len(h.got) == 1 && h.got[0].End != last.End {
			t.Errorf("end = %d, want %d", h.got[0].End, last.End)
		}
	})
	t.Run("transfer-encoding not chunked", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in(get)
		h.out("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef")
		h.p.Close(1)
		h.want("GET /a 200 0/6; ")
	})
	t.Run("truncated body", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.in(get)
		h.out("HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nab")
		h.p.Close(1)
		h.want("GET /a 500 0/-1; ")
		h.stat("unanswered", h.stats.Unanswered.Load(), 0)
	})
}

func TestFraming(t *testing.T) {
	for _, c := range []struct {
		name     string
		reqs     []string
		resps    []string
		want     string
		malform  uint64
		trailing string // response bytes after the last response
	}{
		{
			name:  "interim responses",
			reqs:  []string{"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", "x"},
			resps: []string{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n", ok("")},
			want:  "POST /e 200 1/0; ",
		},
		{
			name:  "no body statuses and HEAD",
			reqs:  []string{"HEAD /h HTTP/1.1\r\n\r\nDELETE /d HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n"},
			resps: []string{"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"},
			want:  "HEAD /h 200 0/0; DELETE /d 204 0/0; GET /c 304 0/0; ",
		},
		{
			name:  "case-insensitive names, LF line ends, stray empty lines",
			reqs:  []string{"\r\nPOST /x?q=1#f HTTP/1.1\ncontent-LENGTH:  3 \n\nabc\r\n", "GET /y HTTP/1.1\r\n\r\n"},
			resps: []string{"HTTP/1.1 200 OK\ntransfer-encoding: CHUNKED\n\n2\nab\r\n0\n\n", ok("")},
			want:  "POST /x 200 3/2; GET /y 200 0/0; ",
		},
		{
			name:     "upgrade",
			reqs:     []string{"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "\x81\x05hello"},
			resps:    []string{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"},
			trailing: "\x81\x02hi HTTP/1.1 200",
			want:     "GET /ws 101 0/0; ",
		},
		{
			name:     "connect",
			reqs:     []string{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "\x16\x03\x01 tls"},
			resps:    []string{"HTTP/1.1 200 Connection established\r\n\r\n"},
			trailing: "\x16\x03\x03 tls",
			want:     "CONNECT  200 0/0; ",
		},
		{
			name:    "request transfer-encoding without chunked",
			reqs:    []string{"POST /g HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", get},
			resps:   []string{ok("")},
			want:    "GET /a 200 0/0; ",
			malform: 1,
		},
		{
			name:    "conflicting content-length",
			reqs:    []string{"POST /g HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "POST /h HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab"},
			resps:   []string{ok("")},
			want:    "POST /h 200 2/0; ",
			malform: 1,
		},
		{
			name:    "bad chunk size",
			reqs:    []string{get},
			resps:   []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
			want:    "GET /a 200 0/-1; ",
			malform: 1,
		},
		{
			name:    "chunk data not followed by CRLF",
			reqs:    []string{get},
			resps:   []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n"},
			want:    "GET /a 200 0/-1; ",
			malform: 1,
		},
		{
			name:    "header line without colon",
			reqs:    []string{"GET /a HTTP/1.1\r\nno colon here\r\n\r\n", get},
			resps:   []string{ok("")},
			want:    "GET /a 200 0/0; ",
			malform: 1,
		},
		{
			name:  "unregistered method and absolute-form target",
			reqs:  []string{"PURGE http://user:pw@example.com:8080/a/b?q HTTP/1.1\r\nHost: other\r\n\r\n"},
			resps: []string{ok("")},
			want:  "PURGE /a/b 200 0/0; ",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, conn.RoleServer, Options{})
			for _, r := range c.reqs {
				h.in(r)
			}
			for _, r := range c.resps {
				h.out(r)
			}
			if c.trailing != "" {
				h.out(c.trailing)
			}
			h.p.Close(1)
			h.want(c.want)
			h.stat("malformed", h.stats.Malformed.Load(), c.malform)
			h.stat("orphans", h.stats.Orphans.Load(), 0)
		})
	}
}

func TestFields(t *testing.T) {
	h := newHarness(t, conn.RoleServer, Options{})
	h.in("GET /p?x HTTP/1.1\r\nHOST: api.example\r\nuser-AGENT: ua/1\r\nTraceParent: 00-aa-bb-01\r\n" +
		"TRACESTATE: k=v\r\nX-Secret: do-not-keep\r\nfolded: a\r\n  b\r\n\r\n")
	h.in("GET http://example.com HTTP/1.1\r\nHost: ignored\r\n\r\n")
	h.out(ok("1") + ok("22"))
	h.p.Close(1)
	want := []protocols.HTTP{
		{Method: "GET", Path: "/p", Version: "1.1", Status: 200, Host: "api.example", UserAgent: "ua/1", TraceParent: "00-aa-bb-01", TraceState: "k=v", ResponseBodySize: 1},
		{Method: "GET", Path: "/", Version: "1.1", Status: 200, Host: "example.com", ResponseBodySize: 2},
	}
	if len(h.got) != len(want) {
		t.Fatalf("got %d exchanges, want %d", len(h.got), len(want))
	}
	for i := range want {
		if *h.got[i].HTTP != want[i] {
			t.Errorf("exchange %d:\n got  %+v\n want %+v", i, *h.got[i].HTTP, want[i])
		}
	}
}

func TestLimits(t *testing.T) {
	t.Run("head over the limit", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{MaxHeaderBytes: 64})
		h.in("GET /big HTTP/1.1\r\n")
		for range 10 {
			h.in("X-Pad: " + strings.Repeat("p", 20) + "\r\n")
		}
		if c := cap(h.p.sides[conn.Ingress].buf); c > 64 {
			t.Errorf("head buffer grew to %d, limit 64", c)
		}
		h.in("\r\n")
		h.in(get)
		h.out(ok(""))
		h.p.Close(1)
		h.want("GET /a 200 0/0; ")
		h.stat("malformed", h.stats.Malformed.Load(), 1)
	})
	t.Run("not HTTP at all", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		garbage := strings.Repeat("\x00\x01binary protocol\xff", 5000)
		h.in(garbage)
		h.out(garbage)
		h.p.Close(1)
		h.want("")
		h.stat("malformed", h.stats.Malformed.Load(), 2)
		for d := range h.p.sides {
			if b := h.p.sides[d].buf; b != nil {
				t.Errorf("direction %d still holds %d bytes after close", d, cap(b))
			}
		}
	})
}

func TestLooksLikeHTTP1(t *testing.T) {
	for _, c := range []struct {
		in        string
		req, resp bool
	}{
		{"GET / HTTP/1.1\r\n", true, false},
		{"OPTIONS * HTTP/1.0\n", true, false},
		{"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", true, false},
		{"GET /very/long/path/that/was/truncated", true, false},
		{"GET /path HTTP/1.", true, false},
		{"HTTP/1.1 200 OK\r\n", false, true},
		{"HTTP/1.0 404 ", false, true},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, false},
		{"GET / HTTP/2.0\r\n", false, false},
		{"GET /path SPDY/3", false, false},
		{"GET  / HTTP/1.1\r\n", false, false},
		{"get / HTTP/1.1\r\n", false, false},
		{"GET /\x00 HTTP/1.1\r\n", false, false},
		{"HTTP/2 200\r\n", false, false},
		{"HTTP/1.1", false, false},
		{"GET", false, false},
		{"GET ", false, false},
		{"\x16\x03\x01\x02\x00\x01", false, false},
		{"", false, false},
	} {
		req, resp := LooksLikeHTTP1([]byte(c.in))
		if req != c.req || resp != c.resp {
			t.Errorf("LooksLikeHTTP1(%q) = %v, %v, want %v, %v", c.in, req, resp, c.req, c.resp)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if err := (Options{MaxHeaderBytes: -1, MaxPending: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "max pending") {
		t.Errorf("negative options: %v, want an error naming both", err)
	}
}

// TestSteadyStateAllocs checks that a keep-alive exchange whose request
// repeats the previous one's path and headers allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	info := &conn.Info{Role: conn.RoleServer}
	n := 0
	p := New(info, func(*protocols.Exchange) { n++ }, Options{})
	req := []byte("GET /api/items HTTP/1.1\r\nHost: svc\r\nUser-Agent: ua\r\n\r\n")
	resp := []byte(ok(strings.Repeat("b", 500)))
	var off [2]uint64
	feed := func(d conn.Direction, b []byte) {
		s := conn.Segment{Dir: d, Offset: off[d], Data: b}
		off[d] += uint64(len(b))
		p.Segment(&s)
	}
	allocs := testing.AllocsPerRun(100, func() {
		feed(conn.Ingress, req)
		feed(conn.Egress, resp)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per exchange, want 0", allocs)
	}
	if n < 100 {
		t.Errorf("emitted %d exchanges, want at least 100", n)
	}
}
