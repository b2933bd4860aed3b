package http2

import (
	"fmt"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// grpcConversation is a connection as grpc-go writes it: the preface and
// settings, then n unary calls, each one write of request HEADERS and DATA
// and one of response HEADERS, DATA and trailers, with the window updates
// and pings of flow control. Every call has its own grpc-timeout and
// traceparent, which HPACK inserts into the table, so the table churns
// like a real one. framesPerCall is what each call adds.
func grpcConversation(b *testing.B, n int) (setup, calls []recording.Seg, framesPerCall int) {
	w := newWire(&testing.T{})
	w.settings()
	setup = w.segs
	w.segs = nil
	for i := range n {
		id := uint32(2*i + 1)
		w.headers(true, id, false, ":method: POST", ":scheme: http", ":path: /shop.v1.Orders/Get",
			":authority: orders.shop.svc.cluster.local:50051", "content-type: application/grpc",
			"user-agent: grpc-go/1.85.0", "te: trailers", fmt.Sprintf("grpc-timeout: %dm", 4990+i%10),
			fmt.Sprintf("traceparent: 00-%032x-%016x-01", i+1, i+7))
		w.data(true, id, true, 5+120)
		w.send(true)
		w.fr[0].WriteWindowUpdate(0, 125)
		w.headers(false, id, false, ":status: 200", "content-type: application/grpc")
		w.data(false, id, false, 5+480)
		w.headers(false, id, true, "grpc-status: 0", "grpc-message: ")
		w.send(false)
		w.fr[1].WriteWindowUpdate(0, 485)
		if i%16 == 15 {
			w.fr[1].WritePing(false, [8]byte{byte(i)})
		}
		w.send(true)
	}
	return setup, w.segs, 7
}

// BenchmarkGRPCUnary measures a gRPC connection in steady state: each
// iteration is one unary call (request and response) on the same parser,
// seen from the server.
func BenchmarkGRPCUnary(b *testing.B) {
	const n = 4096
	setup, calls, frames := grpcConversation(b, n)
	perCall := len(calls) / n
	var size int64
	for _, s := range calls {
		size += int64(len(s.Data))
	}
	emitted := 0
	sink := func(*protocols.Exchange) { emitted++ }
	p := New(&conn.Info{Role: conn.RoleServer}, sink, Options{})
	for _, s := range setup {
		feed(p, conn.RoleServer, s)
	}
	b.SetBytes(size / n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == n {
			// A new connection: the calls' stream ids and table entries
			// start over.
			p = New(&conn.Info{Role: conn.RoleServer}, sink, Options{})
			for _, s := range setup {
				feed(p, conn.RoleServer, s)
			}
			i = 0
		}
		for _, s := range calls[i*perCall : (i+1)*perCall] {
			feed(p, conn.RoleServer, s)
		}
		i++
	}
	b.ReportMetric(float64(b.N*frames)/b.Elapsed().Seconds(), "frames/s")
	if emitted < b.N {
		b.Fatalf("%d exchanges for %d calls", emitted, b.N)
	}
}

// BenchmarkFixtures replays every recorded connection, with a new parser
// per connection, as the reads delivered it.
func BenchmarkFixtures(b *testing.B) {
	var names []string
	for _, f := range fixtures {
		names = append(names, f.name)
	}
	recording.Benchmark(b, names, func(segs []recording.Seg) {
		run(b, conn.RoleServer, segs, Options{})
	})
}
