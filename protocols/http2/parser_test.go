package http2

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// wire builds the two directions of a synthetic connection with x/net's
// Framer and HPACK encoders, one per direction as peers keep them.
type wire struct {
	t       *testing.T
	buf     [2]bytes.Buffer // [0] to the client, [1] to the server
	fr      [2]*xhttp2.Framer
	enc     [2]*hpack.Encoder
	hb      [2]bytes.Buffer
	flushed [2]int
	segs    []recording.Seg
	k       int
}

func newWire(t *testing.T) *wire {
	w := &wire{t: t}
	for d := range w.fr {
		w.fr[d] = xhttp2.NewFramer(&w.buf[d], nil)
		w.fr[d].AllowIllegalWrites = true
		w.enc[d] = hpack.NewEncoder(&w.hb[d])
	}
	w.buf[1].WriteString(Preface)
	return w
}

func dirIndex(toServer bool) int {
	if toServer {
		return 1
	}
	return 0
}

// block HPACK-encodes fields "name: value" in direction toServer.
func (w *wire) block(toServer bool, fields ...string) []byte {
	d := dirIndex(toServer)
	w.hb[d].Reset()
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ": ")
		if err := w.enc[d].WriteField(hpack.HeaderField{Name: name, Value: value}); err != nil {
			w.t.Fatal(err)
		}
	}
	return bytes.Clone(w.hb[d].Bytes())
}

func (w *wire) headers(toServer bool, id uint32, end bool, fields ...string) {
	err := w.fr[dirIndex(toServer)].WriteHeaders(xhttp2.HeadersFrameParam{
		StreamID: id, BlockFragment: w.block(toServer, fields...), EndStream: end, EndHeaders: true})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *wire) data(toServer bool, id uint32, end bool, n int) {
	if err := w.fr[dirIndex(toServer)].WriteData(id, end, bytes.Repeat([]byte("d"), n)); err != nil {
		w.t.Fatal(err)
	}
}

// send turns what was written in direction toServer since the last send
// into one segment (one syscall).
func (w *wire) send(toServer bool) {
	d := dirIndex(toServer)
	b := w.buf[d].Bytes()[w.flushed[d]:]
	if len(b) == 0 {
		return
	}
	w.segs = append(w.segs, recording.Seg{ToServer: toServer, K: w.k, Off: w.flushed[d], Data: bytes.Clone(b)})
	w.flushed[d] = w.buf[d].Len()
	w.k++
}

// settings writes the SETTINGS each side starts with.
func (w *wire) settings() {
	w.fr[1].WriteSettings()
	w.send(true)
	w.fr[0].WriteSettings()
	w.send(false)
}

func (w *wire) run(role conn.Role, opts Options) ([]protocols.Exchange, *Stats) {
	if opts.Stats == nil {
		opts.Stats = new(Stats)
	}
	return run(w.t, role, w.segs, opts), opts.Stats
}

var grpcReq = []string{":method: POST", ":scheme: http", ":path: /pkg.Svc/Do", ":authority: svc:50051",
	"content-type: application/grpc", "user-agent: grpc-go/1.85.0", "te: trailers"}

func one(t *testing.T, got []protocols.Exchange) *protocols.HTTP {
	t.Helper()
	if len(got) != 1 {
		var b strings.Builder
		for _, x := range got {
			b.WriteString("\n  " + fmtX(x))
		}
		t.Fatalf("%d exchanges, want 1:%s", len(got), b.String())
	}
	return got[0].HTTP
}

func TestGRPCStatuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resp   func(w *wire)
		status int
		grpc   int
	}{
		{"trailers", func(w *wire) {
			w.headers(false, 1, false, ":status: 200", "content-type: application/grpc")
			w.data(false, 1, false, 10)
			w.headers(false, 1, true, "grpc-status: 0")
		}, 200, 0},
		{"trailers-only", func(w *wire) {
			w.headers(false, 1, true, ":status: 200", "content-type: application/grpc", "grpc-status: 5", "grpc-message: nope")
		}, 200, 5},
		{"http-404", func(w *wire) {
			w.headers(false, 1, true, ":status: 404", "content-type: text/plain")
		}, 404, grpcUnimplemented},
		{"http-503", func(w *wire) {
			w.headers(false, 1, true, ":status: 503")
		}, 503, grpcUnavailable},
		{"no-trailers", func(w *wire) {
			w.headers(false, 1, false, ":status: 200", "content-type: application/grpc")
			w.data(false, 1, true, 10)
		}, 200, grpcInternal},
		{"rst-cancel-from-client", func(w *wire) {
			w.headers(false, 1, false, ":status: 200", "content-type: application/grpc")
			w.send(false)
			w.fr[1].WriteRSTStream(1, xhttp2.ErrCodeCancel)
			w.send(true)
		}, 200, grpcCancelled},
		{"rst-refused-before-response", func(w *wire) {
			w.fr[0].WriteRSTStream(1, xhttp2.ErrCodeRefusedStream)
		}, 0, grpcUnavailable},
		{"rst-no-error", func(w *wire) {
			w.fr[0].WriteRSTStream(1, xhttp2.ErrCodeNo)
		}, 0, grpcInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t)
			w.settings()
			w.headers(true, 1, false, grpcReq...)
			w.data(true, 1, true, 7)
			w.send(true)
			tc.resp(w)
			w.send(false)
			got, stats := w.run(conn.RoleClient, Options{})
			h := one(t, got)
			if h.Status != tc.status || h.GRPCStatus != tc.grpc || !h.GRPC || h.Partial ||
				h.Path != "/pkg.Svc/Do" || h.Host != "svc:50051" || h.RequestBodySize != 7 {
				t.Errorf("got %+v, want status %d grpc-status %d", *h, tc.status, tc.grpc)
			}
			if stats.Unanswered.Load() != 0 {
				t.Errorf("counted unanswered: %v", statsMap(stats))
			}
		})
	}
}

// TestFraming covers what real peers rarely send: padding, priority,
// CONTINUATION, interim responses, push promises, unknown frame types,
// PING/WINDOW_UPDATE/GOAWAY/PRIORITY between frames of a stream.
func TestFraming(t *testing.T) {
	w := newWire(t)
	w.settings()
	blk := w.block(true, ":method: GET", ":scheme: https", ":path: /a/b?c=d", ":authority: user@example.com:8443",
		"user-agent: "+strings.Repeat("u", 300), "traceparent: "+tp, "tracestate: k=v")
	// An unknown frame type (ignored), then HEADERS (padded, with
	// priority) and 2 CONTINUATIONs, which nothing may interrupt.
	w.fr[1].WriteRawFrame(0x42, 0x3, 0, []byte("unknown type, ignored"))
	w.fr[1].WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:10], EndStream: true,
		PadLength: 7, Priority: xhttp2.PriorityParam{StreamDep: 1, Weight: 9}})
	w.send(true)
	w.fr[1].WriteContinuation(3, false, blk[10:100])
	w.send(true)
	w.fr[1].WriteContinuation(3, true, blk[100:])
	w.fr[1].WritePing(false, [8]byte{1})
	w.fr[1].WriteWindowUpdate(0, 1000)
	w.fr[1].WritePriority(3, xhttp2.PriorityParam{Weight: 3})
	w.send(true)
	w.headers(false, 3, false, ":status: 103", "link: </s.css>")
	w.fr[0].WritePushPromise(xhttp2.PushPromiseParam{StreamID: 3, PromiseID: 2, EndHeaders: true, PadLength: 3,
		BlockFragment: w.block(false, ":method: GET", ":scheme: https", ":path: /s.css", ":authority: example.com")})
	w.headers(false, 2, false, ":status: 200")
	w.data(false, 2, true, 50)
	w.headers(false, 3, false, ":status: 200", "content-type: text/html")
	w.fr[0].WriteDataPadded(3, false, bytes.Repeat([]byte("p"), 100), make([]byte, 20))
	w.fr[0].WriteGoAway(3, xhttp2.ErrCodeNo, []byte("bye"))
	w.data(false, 3, true, 11)
	w.send(false)
	got, stats := w.run(conn.RoleServer, Options{})
	h := one(t, got)
	want := protocols.HTTP{Method: "GET", Path: "/a/b", Version: "2", Status: 200, Host: "example.com:8443",
		UserAgent: strings.Repeat("u", 300), TraceParent: tp, TraceState: "k=v", RequestBodySize: 0,
		ResponseBodySize: 111, Scheme: "https", GRPCStatus: -1, StreamID: 3}
	if *h != want {
		t.Errorf("got  %+v\nwant %+v", *h, want)
	}
	if n := stats.Malformed.Load() + stats.Orphans.Load() + stats.HPACKDesyncs.Load(); n != 0 {
		t.Errorf("counted trouble: %v", statsMap(stats))
	}
	if got[0].Start != recording.ChunkEnd(2) || got[0].End != recording.ChunkEnd(w.k-1) || got[0].RequestSeq != recording.ISNToServer+uint32(len(Preface)+9+9+21) {
		t.Errorf("timing %s", fmtX(got[0]))
	}
}

// TestResponseBeforeRequest: the response's direction is delivered first
// (its request's segment was held back): the exchange is still paired.
func TestResponseBeforeRequest(t *testing.T) {
	w := newWire(t)
	w.settings()
	w.headers(true, 1, true, ":method: GET", ":scheme: http", ":path: /x", ":authority: h")
	w.headers(false, 1, true, ":status: 204")
	w.send(false)
	w.send(true)
	got, stats := w.run(conn.RoleServer, Options{})
	if h := one(t, got); h.Status != 204 || h.Path != "/x" || got[0].End != recording.ChunkEnd(2) || got[0].Start != recording.ChunkEnd(3) {
		t.Errorf("got %s", fmtX(got[0]))
	}
	if stats.Orphans.Load() != 0 {
		t.Errorf("counted orphans: %v", statsMap(stats))
	}
}

// TestTableSizeUpdates: the server announces a small table, the client
// shrinks to it, then to 0 (emptied), then grows back: every request
// decodes, and entries are evicted exactly as the peer's decoder does.
func TestTableSizeUpdates(t *testing.T) {
	w := newWire(t)
	w.fr[1].WriteSettings()
	w.send(true)
	w.fr[0].WriteSettings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 100})
	w.send(false)
	var want []string
	for i, size := range []uint32{100, 100, 0, 100, 60, 100} {
		w.enc[1].SetMaxDynamicTableSizeLimit(size)
		w.enc[1].SetMaxDynamicTableSize(size)
		path := fmt.Sprintf("/p/%d/%s", i, strings.Repeat("x", i*7))
		id := uint32(2*i + 1)
		w.headers(true, id, true, ":method: GET", ":scheme: http", ":path: "+path, ":authority: host-"+fmt.Sprint(i%2), "x-same: same")
		w.send(true)
		w.headers(false, id, true, ":status: 200")
		w.send(false)
		want = append(want, path)
	}
	got, stats := w.run(conn.RoleClient, Options{})
	if len(got) != len(want) {
		t.Fatalf("%d exchanges, want %d", len(got), len(want))
	}
	for i, x := range got {
		if x.HTTP.Path != want[i] || x.HTTP.Partial || x.HTTP.Host != "host-"+fmt.Sprint(i%2) {
			t.Errorf("exchange %d: %+v, want path %s", i, *x.HTTP, want[i])
		}
	}
	if n := stats.Malformed.Load() + stats.HPACKDesyncs.Load(); n != 0 {
		t.Errorf("counted trouble: %v", statsMap(stats))
	}
}

// TestUnknownIndexIsPartial: a capture that begins after the first
// request: its dynamic entries are unknown, the static ones are not.
func TestUnknownIndexIsPartial(t *testing.T) {
	w := newWire(t)
	w.settings()
	w.headers(true, 1, true, grpcReq...)
	w.send(true)
	w.headers(false, 1, false, ":status: 200", "content-type: application/grpc")
	w.headers(false, 1, true, "grpc-status: 0")
	w.send(false)
	from := len(w.segs)
	w.headers(true, 3, true, append(grpcReq[:2:2], ":path: /pkg.Svc/Other", ":authority: svc:50051", "content-type: application/grpc")...)
	w.send(true)
	w.headers(false, 3, false, ":status: 200", "content-type: application/grpc")
	w.headers(false, 3, true, "grpc-status: 0")
	w.send(false)
	segs := w.segs[from:]
	got := run(t, conn.RoleServer, segs, Options{})
	h := one(t, got)
	// :method POST and :status 200 are static, the new :path a literal;
	// :authority and content-type were inserted before the capture began.
	if h.Method != "POST" || h.Status != 200 || h.Path != "/pkg.Svc/Other" || h.Host != "" || !h.Partial || h.Scheme != "http" {
		t.Errorf("got %+v", *h)
	}
}

func TestCloseEmitsOpenStreams(t *testing.T) {
	w := newWire(t)
	w.settings()
	w.headers(true, 1, true, ":method: GET", ":scheme: http", ":path: /unanswered", ":authority: h")
	w.headers(true, 3, true, ":method: GET", ":scheme: http", ":path: /streaming", ":authority: h")
	w.send(true)
	w.headers(false, 3, false, ":status: 200")
	w.data(false, 3, false, 5)
	w.send(false)
	got, stats := w.run(conn.RoleClient, Options{})
	if len(got) != 2 {
		t.Fatalf("%d exchanges, want 2", len(got))
	}
	for _, x := range got {
		h := x.HTTP
		switch h.Path {
		case "/unanswered":
			if h.Status != 0 || h.Partial || x.End != recording.CloseTS || h.ResponseBodySize != -1 {
				t.Errorf("unanswered: %s", fmtX(x))
			}
		case "/streaming":
			if h.Status != 200 || !h.Partial || h.ResponseBodySize != 5 || x.End != recording.ChunkEnd(w.k-1) {
				t.Errorf("open stream: %s", fmtX(x))
			}
		}
	}
	if stats.Unanswered.Load() != 1 || stats.Partial.Load() != 1 {
		t.Errorf("stats %v", statsMap(stats))
	}
}

func TestLooksLikeHTTP2(t *testing.T) {
	w := newWire(t)
	w.settings()
	w.headers(true, 1, true, ":method: GET", ":scheme: http", ":path: /", ":authority: h")
	w.send(true)
	w.headers(false, 1, false, ":status: 200")
	w.data(false, 1, true, 3)
	w.send(false)
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"preface", []byte(Preface + "\x00\x00\x00\x04"), true},
		{"preface start", []byte("PRI * HT"), true},
		{"too short", []byte("PRI"), false},
		{"server settings", w.segs[1].Data, true},
		{"client preface and settings", w.segs[0].Data, true},
		{"mid-connection frames", w.segs[len(w.segs)-1].Data, true},
		{"one headers frame", w.segs[2].Data, false}, // one frame that is not SETTINGS: too little to tell
		{"http/1 request", []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), false},
		{"http/1 response", []byte("HTTP/1.1 200 OK\r\n\r\n"), false},
		{"tls client hello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false},
		{"postgres startup", []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"), false},
		{"settings ack alone", []byte("\x00\x00\x00\x04\x01\x00\x00\x00\x00"), false},
		{"empty", nil, false},
	} {
		if got := LooksLikeHTTP2(tc.b); got != tc.want {
			t.Errorf("%s: LooksLikeHTTP2 = %v, want %v", tc.name, got, tc.want)
		}
	}
}
