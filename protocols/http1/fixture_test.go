package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// msg is one message as the oracle, built on net/http, frames it.
type msg struct {
	start, end int
	body       [][2]int // body byte ranges: the bytes a parser may skip
	method     string
	status     int
}

type rng = [2]int

// oracle frames the recording's messages with net/http's header parsing
// and RFC 9112 6.3, independently of the parser under test.
func oracle(t *testing.T, toServer, toClient []byte) (reqs, resps []msg) {
	t.Helper()
	for off := 0; off < len(toServer); {
		he := bytes.Index(toServer[off:], []byte("\r\n\r\n"))
		if he < 0 {
			t.Fatalf("oracle: request head at %d never ends", off)
		}
		he += off + 4
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(toServer[off:he])))
		if err != nil {
			t.Fatalf("oracle: request at %d: %v", off, err)
		}
		m := msg{start: off, method: r.Method}
		switch {
		case len(r.TransferEncoding) > 0:
			m.body, m.end = walkChunks(t, toServer, he)
		case r.ContentLength > 0:
			m.body, m.end = []rng{{he, he + int(r.ContentLength)}}, he+int(r.ContentLength)
		default:
			m.end = he
		}
		reqs = append(reqs, m)
		off = m.end
	}
	final := 0
	for off := 0; off < len(toClient); {
		he := bytes.Index(toClient[off:], []byte("\r\n\r\n"))
		if he < 0 {
			t.Fatalf("oracle: response head at %d never ends", off)
		}
		he += off + 4
		var req *http.Request
		if final < len(reqs) {
			req = &http.Request{Method: reqs[final].method}
		}
		r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(toClient[off:he])), req)
		if err != nil {
			t.Fatalf("oracle: response at %d: %v", off, err)
		}
		m := msg{start: off, status: r.StatusCode}
		switch {
		case req != nil && req.Method == "HEAD", r.StatusCode < 200, r.StatusCode == 204, r.StatusCode == 304:
			m.end = he
		case len(r.TransferEncoding) > 0:
			m.body, m.end = walkChunks(t, toClient, he)
		case r.ContentLength >= 0:
			m.body, m.end = []rng{{he, he + int(r.ContentLength)}}, he+int(r.ContentLength)
		default:
			m.body, m.end = []rng{{he, len(toClient)}}, len(toClient)
		}
		if r.StatusCode >= 200 {
			final++
		}
		resps = append(resps, m)
		off = m.end
	}
	return reqs, resps
}

func walkChunks(t *testing.T, b []byte, off int) (body []rng, end int) {
	for {
		nl := bytes.Index(b[off:], []byte("\r\n"))
		if nl < 0 {
			t.Fatalf("oracle: chunk line at %d never ends", off)
		}
		line, _, _ := strings.Cut(string(b[off:off+nl]), ";")
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("oracle: chunk size at %d: %v", off, err)
		}
		off += nl + 2
		if n == 0 {
			if bytes.HasPrefix(b[off:], []byte("\r\n")) {
				return body, off + 2
			}
			te := bytes.Index(b[off:], []byte("\r\n\r\n"))
			return body, off + te + 4
		}
		body = append(body, rng{off, off + int(n)})
		off += int(n) + 2
	}
}

// run feeds segments to a parser for the given role and closes it. An
// unknown role is fed as the server side.
func run(t testing.TB, role conn.Role, segs []recording.Seg, opts Options) []protocols.Exchange {
	info := &conn.Info{Role: role}
	var got []protocols.Exchange
	p := New(info, func(x *protocols.Exchange) {
		c := *x
		h := *x.HTTP
		c.HTTP = &h
		got = append(got, c)
	}, opts)
	recording.Feed(role, segs, p.Segment)
	p.Close(recording.CloseTS)
	return got
}

type fixture struct {
	name string
	want []protocols.HTTP
}

const (
	tp   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	curl = "curl/7.88.1"
	gocl = "Go-http-client/1.1"
)

var fixtures = []fixture{
	{"curl-nginx-keepalive", []protocols.HTTP{
		{Method: "GET", Path: "/index.html", Version: "1.1", Status: 200, Host: "127.0.0.1:36929", UserAgent: curl, TraceParent: tp, TraceState: "weft=1", RequestBodySize: 0, ResponseBodySize: 64},
		{Method: "GET", Path: "/missing", Version: "1.1", Status: 404, Host: "127.0.0.1:36929", UserAgent: curl, TraceParent: tp, TraceState: "weft=1", RequestBodySize: 0, ResponseBodySize: 153},
		{Method: "GET", Path: "/big.txt", Version: "1.1", Status: 200, Host: "127.0.0.1:36929", UserAgent: curl, TraceParent: tp, TraceState: "weft=1", RequestBodySize: 0, ResponseBodySize: 102400},
	}},
	{"curl-nginx-head-304", []protocols.HTTP{
		{Method: "HEAD", Path: "/index.html", Version: "1.1", Status: 200, Host: "127.0.0.1:36145", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 0},
		{Method: "GET", Path: "/index.html", Version: "1.1", Status: 304, Host: "127.0.0.1:36145", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 0},
	}},
	{"curl-nginx-gzip-chunked", []protocols.HTTP{
		{Method: "GET", Path: "/text.txt", Version: "1.1", Status: 200, Host: "127.0.0.1:45361", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 641},
		{Method: "GET", Path: "/text.txt", Version: "1.1", Status: 200, Host: "127.0.0.1:45361", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 641},
	}},
	{"curl-python10", []protocols.HTTP{
		{Method: "GET", Path: "/index.html", Version: "1.1", Status: 200, Host: "127.0.0.1:42077", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 64},
	}},
	{"curl-python11-keepalive", []protocols.HTTP{
		{Method: "GET", Path: "/index.html", Version: "1.1", Status: 200, Host: "127.0.0.1:41321", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 64},
		{Method: "GET", Path: "/big.txt", Version: "1.1", Status: 200, Host: "127.0.0.1:41321", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 102400},
		{Method: "GET", Path: "/nope", Version: "1.1", Status: 404, Host: "127.0.0.1:41321", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 335},
	}},
	{"curl-go-expect-100", []protocols.HTTP{
		{Method: "POST", Path: "/upload", Version: "1.1", Status: 201, Host: "127.0.0.1:39305", UserAgent: curl, RequestBodySize: 1 << 20, ResponseBodySize: 18},
	}},
	{"curl-go-http10-close", []protocols.HTTP{
		{Method: "GET", Path: "/stream", Version: "1.0", Status: 200, Host: "127.0.0.1:41235", UserAgent: curl, RequestBodySize: 0, ResponseBodySize: 15045},
	}},
	{"go-go-keepalive", []protocols.HTTP{
		{Method: "GET", Path: "/hello", Version: "1.1", Status: 200, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 0, ResponseBodySize: 6},
		{Method: "POST", Path: "/upload", Version: "1.1", Status: 201, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 65536, ResponseBodySize: 16},
		{Method: "POST", Path: "/upload", Version: "1.1", Status: 201, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 8000, ResponseBodySize: 15},
		{Method: "GET", Path: "/stream", Version: "1.1", Status: 200, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 0, ResponseBodySize: 15045},
		{Method: "HEAD", Path: "/hello", Version: "1.1", Status: 200, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 0, ResponseBodySize: 0},
		{Method: "GET", Path: "/nothing-here", Version: "1.1", Status: 404, Host: "127.0.0.1:33003", UserAgent: gocl, TraceParent: tp, RequestBodySize: 0, ResponseBodySize: 19},
	}},
	{"raw-nginx-pipelined", []protocols.HTTP{
		{Method: "GET", Path: "/index.html", Version: "1.1", Status: 200, Host: "127.0.0.1:46573", UserAgent: "raw", RequestBodySize: 0, ResponseBodySize: 64},
		{Method: "HEAD", Path: "/big.txt", Version: "1.1", Status: 200, Host: "127.0.0.1:46573", UserAgent: "raw", RequestBodySize: 0, ResponseBodySize: 0},
		{Method: "GET", Path: "/missing", Version: "1.1", Status: 404, Host: "127.0.0.1:46573", UserAgent: "raw", RequestBodySize: 0, ResponseBodySize: 153},
	}},
}

// expect builds the exchanges a parser must emit for a fixture seen from
// role: the HTTP fields from the table, timing and sequence numbers from
// the oracle's framing of the recording.
func expect(t *testing.T, f fixture, cs []recording.Chunk, role conn.Role) []protocols.Exchange {
	t.Helper()
	toServer, toClient := recording.Streams(cs)
	reqs, resps := oracle(t, toServer.Data, toClient.Data)
	var finals []msg
	for _, r := range resps {
		if r.status >= 200 {
			finals = append(finals, r)
		}
	}
	if len(reqs) != len(f.want) || len(finals) != len(f.want) {
		t.Fatalf("oracle found %d requests and %d final responses, table has %d", len(reqs), len(finals), len(f.want))
	}
	xrole := role
	if role == conn.RoleUnknown {
		xrole = conn.RoleServer // run feeds unknown roles as the server
	}
	var want []protocols.Exchange
	for i := range f.want {
		if finals[i].status != f.want[i].Status {
			t.Fatalf("oracle pairs status %d with request %d, table says %d", finals[i].status, i, f.want[i].Status)
		}
		rk, ek := toServer.ChunkAt(reqs[i].start), toClient.ChunkAt(finals[i].end-1)
		start := recording.ChunkEnd(rk)
		if xrole == conn.RoleClient {
			start = recording.ChunkStart(rk)
		}
		h := f.want[i]
		want = append(want, protocols.Exchange{
			Role: xrole, Protocol: protocols.HTTP1,
			Start: start, End: recording.ChunkEnd(ek),
			RequestSeq: recording.ISNToServer + uint32(reqs[i].start), RequestTID: recording.ChunkTID(rk),
			HTTP: &h,
		})
	}
	return want
}

func diff(got, want []protocols.Exchange) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = fmtX(got[i])
		}
		if i < len(want) {
			w = fmtX(want[i])
		}
		if g != w {
			fmt.Fprintf(&b, "exchange %d:\n got  %s\n want %s\n", i, g, w)
		}
	}
	return b.String()
}

func fmtX(x protocols.Exchange) string {
	return fmt.Sprintf("role=%v proto=%v start=%d end=%d seq=%d tid=%d %+v", x.Role, x.Protocol, x.Start, x.End, x.RequestSeq, x.RequestTID, *x.HTTP)
}

func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		toServer, toClient := recording.Streams(cs)
		reqs, resps := oracle(t, toServer.Data, toClient.Data)
		// Which stream bytes may be lost in each feed.
		bodies := recording.NewMask(cs)
		for i, ms := range [][]msg{resps, reqs} {
			for _, m := range ms {
				for _, r := range m.body {
					for o := r[0]; o < r[1]; o++ {
						bodies[i][o] = true
					}
				}
			}
		}
		// A capture limit: bytes past the first 256 of each read are lost
		// where they are body bytes.
		capped := bodies.And(recording.CaptureLimit(cs, 256))
		// Random runs of body bytes lost.
		r := rand.New(rand.NewPCG(1, uint64(len(f.name))))
		lost := bodies.RandomLoss(r)
		isBody, truncated, randomLoss := bodies.Skipped, capped.Skipped, lost.Skipped
		feeds := []struct {
			name  string
			split recording.Split
			skip  func(bool, int) bool
			reads bool // segments start where the real reads started
		}{
			{"whole", recording.Whole, nil, true},
			{"bytewise", recording.Bytewise, nil, false},
			{"random1", recording.RandomSplit(r), nil, false},
			{"random2", recording.RandomSplit(r), nil, false},
			{"bodies-skipped", recording.Whole, isBody, true},
			{"capture-limit", recording.Whole, truncated, true},
			{"random-loss", recording.RandomSplit(r), randomLoss, false},
		}
		for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer, conn.RoleUnknown} {
			want := expect(t, f, cs, role)
			for _, fd := range feeds {
				// With the role unknown each direction waits for a segment
				// that starts with a request or status line, as real reads
				// and writes do but arbitrary splits need not.
				if role == conn.RoleUnknown && !fd.reads {
					continue
				}
				t.Run(fmt.Sprintf("%s/%v/%s", f.name, role, fd.name), func(t *testing.T) {
					var stats Stats
					got := run(t, role, recording.Cut(cs, fd.split, fd.skip), Options{Stats: &stats})
					if d := diff(got, want); d != "" {
						t.Error(d)
					}
					if n := stats.Malformed.Load() + stats.Desyncs.Load() + stats.Orphans.Load() + stats.Unanswered.Load(); n != 0 {
						t.Errorf("counted %d malformed/desync/orphan/unanswered, want none", n)
					}
				})
			}
		}
	}
}

// TestFixturesEverySplit cuts each small recording into two segments at
// every possible offset, in both directions.
func TestFixturesEverySplit(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		if recording.Size(cs) > 20000 {
			continue
		}
		want := expect(t, f, cs, conn.RoleServer)
		for k := range cs {
			for at := 1; at < len(cs[k].Data); at++ {
				got := run(t, conn.RoleServer, recording.Cut(cs, recording.SplitAt(k, at), nil), Options{})
				if d := diff(got, want); d != "" {
					t.Fatalf("%s: chunk %d split at %d:\n%s", f.name, k, at, d)
				}
			}
		}
	}
}
