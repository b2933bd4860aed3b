package dns

import (
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// benchPair replays one query and its response on one long-lived socket,
// as a busy server's (or a resolver's) socket sees them, and reports
// datagrams (or TCP messages) through decode and pairing per second.
func benchPair(b *testing.B, name string, tcp bool) {
	r := loadRec(b, name)
	var q, resp []byte
	for _, rc := range r.records {
		if rc.tcp != tcp {
			continue
		}
		if rc.toServer && q == nil {
			q = rc.b
		} else if !rc.toServer && resp == nil {
			resp = rc.b
		}
	}
	info := &conn.Info{UDP: !tcp, Role: conn.RoleServer, Tuple: conn.Tuple{Local: r.server}}
	emitted := 0
	p := New(info, func(*protocols.Exchange) { emitted++ }, Options{})
	peer := r.records[0].client
	var off [2]uint64
	now := int64(0)
	feed := func(d conn.Direction, data []byte) {
		now += 1000
		s := conn.Segment{Dir: d, Offset: off[d], Data: data, Start: now, End: now + 500, Datagram: !tcp, Peer: peer}
		off[d] += uint64(len(data))
		p.Segment(&s)
	}
	b.SetBytes(int64(len(q) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		feed(conn.Ingress, q)
		feed(conn.Egress, resp)
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "msgs/s")
	if emitted != b.N {
		b.Fatalf("emitted %d exchanges for %d pairs", emitted, b.N)
	}
}

// BenchmarkUDP: dig's A query for example.test and its two-address answer.
func BenchmarkUDP(b *testing.B) { benchPair(b, "dig-a-udp", false) }

// BenchmarkUDPNXDOMAIN: the answer carries an SOA to skip before the OPT.
func BenchmarkUDPNXDOMAIN(b *testing.B) { benchPair(b, "dig-nxdomain-udp", false) }

// BenchmarkTCP: the same over TCP, framing included.
func BenchmarkTCP(b *testing.B) { benchPair(b, "dig-a-tcp", true) }

// BenchmarkNewSocket: a short-lived client socket per query, as dig, Go
// and glibc make them: a new parser, one query, one answer, close.
func BenchmarkNewSocket(b *testing.B) {
	r := loadRec(b, "dig-a-udp")
	v := view{label: "client", client: r.records[0].client}
	segs := v.segments(r, whole)
	info := v.info(r, true)
	opts := Options{Stats: new(Stats)} // shared by all parsers, as in weft
	b.ReportAllocs()
	for b.Loop() {
		p := New(info, func(*protocols.Exchange) {}, opts)
		for i := range segs {
			p.Segment(&segs[i])
		}
		p.Close(1 << 40)
	}
	b.ReportMetric(float64(len(segs)*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
