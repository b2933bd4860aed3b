package http1

import (
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// FuzzParser feeds arbitrary bytes and skips to both directions and checks
// that the parser neither panics nor holds more than its bounds allow, and
// that what it emits is well formed.
//
// The input is a program: byte 0 picks the role; then each op is a byte
// whose bit 0 picks the direction, bit 1 a skip instead of data, and whose
// top 6 bits (times 7, plus one) give the length taken from what follows.
func FuzzParser(f *testing.F) {
	seed := func(role byte, parts ...string) {
		b := []byte{role}
		for i, p := range parts {
			for len(p) > 0 {
				n := min(len(p), 63*7+1)
				b = append(b, byte((n-1)/7)<<2|byte(i%2))
				b = append(b, p[:n]...)
				p = p[n:]
			}
		}
		f.Add(b)
	}
	seed(1, get, ok("hi"))
	seed(2, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n"+ok(""))
	seed(0, "HTTP/1.0 200 OK\r\n\r\nbody", "GET /x HTTP/1.0\r\n\r\n")
	seed(1, "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No\r\n\r\n")
	for _, name := range []string{"curl-nginx-head-304", "raw-nginx-pipelined", "curl-nginx-gzip-chunked"} {
		cs := recording.Load(f, name)
		b := []byte{1}
		for _, c := range cs {
			for p := c.Data; len(p) > 0; {
				n := min(len(p), 63*7+1)
				d := byte(1)
				if c.ToServer {
					d = 0
				}
				b = append(b, byte((n-1)/7)<<2|d)
				b = append(b, p[:n]...)
				p = p[n:]
			}
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		opts := Options{MaxHeaderBytes: 256, MaxPending: 4, Stats: new(Stats)}
		info := &conn.Info{Role: conn.Role(in[0] % 3)}
		emitted := 0
		p := New(info, func(x *protocols.Exchange) {
			emitted++
			h := x.HTTP
			switch {
			case x.Conn != info || x.Protocol != protocols.HTTP1 || h == nil:
				t.Fatalf("bad exchange header %+v", x)
			case h.Status != 0 && (h.Status < 100 || h.Status > 999):
				t.Fatalf("status %d", h.Status)
			case h.RequestBodySize < -1 || h.ResponseBodySize < -1:
				t.Fatalf("body sizes %d/%d", h.RequestBodySize, h.ResponseBodySize)
			case strings.ContainsAny(h.Path, "?#") || h.Method == "":
				t.Fatalf("method %q path %q", h.Method, h.Path)
			case info.Role != conn.RoleUnknown && x.Role != info.Role:
				t.Fatalf("role %v on a %v connection", x.Role, info.Role)
			}
		}, opts)
		recording.Ops(in, 1, func(s *conn.Segment) {
			p.Segment(s)
			for d := range p.sides {
				if c := cap(p.sides[d].buf); c > opts.MaxHeaderBytes {
					t.Fatalf("direction %d buffers %d bytes, limit %d", d, c, opts.MaxHeaderBytes)
				}
			}
			if p.q.n > opts.MaxPending || len(p.q.buf) > opts.MaxPending {
				t.Fatalf("queue holds %d in %d slots, limit %d", p.q.n, len(p.q.buf), opts.MaxPending)
			}
		})
		p.Close(1 << 40)
		if got := opts.Stats.Exchanges.Load(); got != uint64(emitted) {
			t.Fatalf("stats count %d exchanges, sink saw %d", got, emitted)
		}
		if p.q.n != 0 || p.hasCur {
			t.Fatalf("requests left after close: %d queued, cur %v", p.q.n, p.hasCur)
		}
	})
}
