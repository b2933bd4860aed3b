package detect

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/dns"
)

func dnsMsg(t *testing.T, id uint16, resp bool) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: resp})
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("example.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	if err := b.Question(q); err != nil {
		t.Fatal(err)
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDetectDNS: UDP sockets are offered only to protocols that run over
// UDP, and DNS is recognised on any port; no number of stray datagrams
// condemns the socket (anyone may send a server's socket noise); DNS over TCP needs its length prefix.
func TestDetectDNS(t *testing.T) {
	peer := netip.MustParseAddrPort("127.0.0.1:5300") // not 53: detection goes by content
	q, r := dnsMsg(t, 7, false), dnsMsg(t, 7, true)
	framed := func(b []byte) []byte { return append([]byte{0, byte(len(b))}, b...) }
	type seg struct {
		d    conn.Direction
		data []byte
	}
	for _, c := range []struct {
		name      string
		info      conn.Info
		datagram  bool
		segs      []seg
		exchanges int
		detected  uint64
		ignored   uint64
	}{
		{"udp query", conn.Info{UDP: true}, true, []seg{{conn.Egress, q}, {conn.Ingress, r}}, 1, 1, 0},
		{"udp, socket first seen through data", conn.Info{}, true, []seg{{conn.Ingress, q}, {conn.Egress, r}}, 1, 1, 0},
		{"udp, a stray datagram first", conn.Info{UDP: true}, true, []seg{{conn.Egress, []byte("hello")}, {conn.Egress, q}, {conn.Ingress, r}}, 1, 1, 0},
		{"udp, HTTP/1 is not a datagram protocol", conn.Info{UDP: true}, true, []seg{{conn.Egress, []byte(req)}, {conn.Ingress, []byte(resp)}}, 0, 0, 0},
		{"udp, noise, then a query", conn.Info{UDP: true}, true, func() []seg {
			var s []seg
			for range DefaultMaxWaitSegments + 1 {
				s = append(s, seg{conn.Egress, []byte("noise")})
			}
			return append(s, seg{conn.Egress, q}, seg{conn.Ingress, r})
		}(), 1, 1, 0},
		{"tcp, length-prefixed", conn.Info{Role: conn.RoleClient}, false, []seg{{conn.Egress, framed(q)}, {conn.Ingress, framed(r)}}, 1, 1, 0},
		{"tcp, server reads the prefix first", conn.Info{Role: conn.RoleServer}, false, []seg{{conn.Ingress, framed(q)[:2]}, {conn.Ingress, q}, {conn.Egress, framed(r)}}, 1, 1, 0},
		{"tcp, no prefix", conn.Info{Role: conn.RoleClient}, false, []seg{{conn.Egress, q}, {conn.Ingress, r}}, 0, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{Stats: new(Stats), DNS: dns.Options{Stats: new(dns.Stats)}}
			n := 0
			info := c.info
			h := New(func(x *protocols.Exchange) {
				if x.Protocol != protocols.DNS || x.DNS == nil || x.DNS.Name != "example.test" {
					t.Errorf("exchange %+v", x)
				}
				n++
			}, opts)(&info)
			var off [2]uint64
			for i, s := range c.segs {
				sg := conn.Segment{Dir: s.d, Offset: off[s.d], Data: s.data, Start: int64(i), End: int64(i) + 1, Datagram: c.datagram}
				if c.datagram {
					sg.Peer = peer
				}
				off[s.d] += uint64(len(s.data))
				h.Segment(&sg)
			}
			h.Close(100)
			if n != c.exchanges {
				t.Errorf("%d exchanges, want %d", n, c.exchanges)
			}
			if got := opts.Stats.Detected[protocols.DNS].Load(); got != c.detected {
				t.Errorf("detected DNS %d times, want %d", got, c.detected)
			}
			if got := opts.Stats.Detected[protocols.HTTP1].Load(); got != 0 {
				t.Errorf("detected HTTP/1 %d times", got)
			}
			if got := opts.Stats.Ignored.Load(); got != c.ignored {
				t.Errorf("ignored %d, want %d", got, c.ignored)
			}
		})
	}
}
