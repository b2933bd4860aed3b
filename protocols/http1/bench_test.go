package http1

import (
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// BenchmarkParse measures a keep-alive connection in steady state: each
// iteration is one API-style exchange (browser-sized request head, JSON
// response of 1 KiB) on the same parser.
func BenchmarkParse(b *testing.B) {
	req := []byte("GET /api/v1/orders/12345?expand=items HTTP/1.1\r\n" +
		"Host: orders.internal:8080\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef\r\n" +
		"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 18:43:11 GMT\r\n" +
		"Content-Type: application/json\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n" +
		"Cache-Control: no-store\r\nX-Request-Id: 9f8e7d6c5b4a\r\n\r\n" + strings.Repeat("j", 1024))
	p := New(&conn.Info{Role: conn.RoleServer}, func(*protocols.Exchange) {}, Options{})
	var off [2]uint64
	feed := func(d conn.Direction, data []byte) {
		s := conn.Segment{Dir: d, Offset: off[d], Data: data}
		off[d] += uint64(len(data))
		p.Segment(&s)
	}
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		feed(conn.Ingress, req)
		feed(conn.Egress, resp)
	}
}

// BenchmarkParseFixtures replays every recorded connection, with a new
// parser per connection, as the reads delivered it.
func BenchmarkParseFixtures(b *testing.B) {
	var names []string
	for _, f := range fixtures {
		names = append(names, f.name)
	}
	recording.Benchmark(b, names, func(segs []recording.Seg) {
		run(b, conn.RoleServer, segs, Options{})
	})
}
