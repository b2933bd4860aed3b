package dns

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

var (
	srvAddr = netip.MustParseAddrPort("10.0.0.53:53")
	cliAddr = netip.MustParseAddrPort("10.0.0.7:40000")
	cli2    = netip.MustParseAddrPort("10.0.0.8:40001")
)

// msg builds a DNS message: a query, or with resp a response carrying
// rcode and one A or AAAA record per address.
func msg(t testing.TB, id uint16, resp bool, name string, qtype dnsmessage.Type, rcode dnsmessage.RCode, addrs ...string) []byte {
	t.Helper()
	n, err := dnsmessage.NewName(name + ".")
	if err != nil {
		t.Fatal(err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: resp, RCode: rcode, RecursionDesired: true})
	b.EnableCompression()
	must(t, b.StartQuestions())
	must(t, b.Question(dnsmessage.Question{Name: n, Type: qtype, Class: dnsmessage.ClassINET}))
	must(t, b.StartAnswers())
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		rh := dnsmessage.ResourceHeader{Name: n, Class: dnsmessage.ClassINET, TTL: 60}
		if ip.Is4() {
			rh.Type = dnsmessage.TypeA
			must(t, b.AResource(rh, dnsmessage.AResource{A: ip.As4()}))
		} else {
			rh.Type = dnsmessage.TypeAAAA
			must(t, b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()}))
		}
	}
	out, err := b.Finish()
	must(t, err)
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// harness drives one parser by hand and keeps copies of what it emits.
type harness struct {
	t     *testing.T
	p     *Parser
	stats *Stats
	got   []protocols.Exchange
	off   [2]uint64
}

func newHarness(t *testing.T, info *conn.Info, opts Options) *harness {
	h := &harness{t: t, stats: new(Stats)}
	opts.Stats = h.stats
	h.p = New(info, func(x *protocols.Exchange) {
		c := *x
		d := *x.DNS
		c.DNS = &d
		h.got = append(h.got, c)
	}, opts)
	return h
}

func udpClient() *conn.Info {
	return &conn.Info{UDP: true, Role: conn.RoleClient, Tuple: conn.Tuple{Local: cliAddr, Remote: srvAddr}}
}

// dgram feeds a datagram moving in d to or from peer during [at, at+100).
func (h *harness) dgram(d conn.Direction, peer netip.AddrPort, at int64, b []byte) {
	s := conn.Segment{Dir: d, Offset: h.off[d], Data: b, Start: at, End: at + 100, Datagram: true, Peer: peer}
	h.off[d] += uint64(len(b))
	h.p.Segment(&s)
}

// stream feeds TCP bytes (or a skip of n when b is nil) moving in d.
func (h *harness) stream(d conn.Direction, at int64, b []byte, n uint64) {
	s := conn.Segment{Dir: d, Offset: h.off[d], Data: b, Skip: n, Start: at, End: at + 100}
	if b != nil {
		s.Skip = 0
	}
	h.off[d] += s.Len()
	h.p.Segment(&s)
}

func (h *harness) want(n int) {
	h.t.Helper()
	if len(h.got) != n {
		h.t.Fatalf("emitted %d exchanges, want %d: %v", len(h.got), n, h.got)
	}
}

func (h *harness) counts(name string, got uint64, want uint64) {
	h.t.Helper()
	if got != want {
		h.t.Errorf("%s counted %d, want %d", name, got, want)
	}
}

const sec = int64(time.Second)

func TestTimeoutBySegmentTime(t *testing.T) {
	h := newHarness(t, udpClient(), Options{})
	h.dgram(conn.Egress, srvAddr, 0, msg(t, 1, false, "a.test", dnsmessage.TypeA, 0))
	// Another query, just inside the first one's timeout: nothing ends.
	h.dgram(conn.Egress, srvAddr, 5*sec-200, msg(t, 2, false, "b.test", dnsmessage.TypeA, 0))
	h.want(0)
	// A segment after the deadline ends the first query at its deadline.
	h.dgram(conn.Ingress, srvAddr, 5*sec+1, msg(t, 2, true, "b.test", dnsmessage.TypeA, 0, "192.0.2.9"))
	h.want(2)
	x := h.got[0]
	if !x.DNS.TimedOut || x.DNS.RCode != -1 || x.DNS.Name != "a.test" || x.Start != 0 || x.End != 5*sec || x.Role != conn.RoleClient {
		t.Errorf("timed out query: %s", fmtX(x))
	}
	if y := h.got[1]; y.DNS.TimedOut || y.DNS.Name != "b.test" || y.End != 5*sec+101 {
		t.Errorf("answered query: %s", fmtX(y))
	}
	h.counts("timed out", h.stats.TimedOut.Load(), 1)
}

func TestExpire(t *testing.T) {
	h := newHarness(t, udpClient(), Options{Timeout: 2 * time.Second})
	h.dgram(conn.Egress, srvAddr, 10, msg(t, 1, false, "a.test", dnsmessage.TypeA, 0))
	h.p.Expire(2*sec + 9)
	h.want(0)
	h.p.Expire(2*sec + 10)
	h.want(1)
	if x := h.got[0]; !x.DNS.TimedOut || x.End != 2*sec+10 {
		t.Errorf("expired query: %s", fmtX(x))
	}
	// The late answer has no query left to answer.
	h.dgram(conn.Ingress, srvAddr, 3*sec, msg(t, 1, true, "a.test", dnsmessage.TypeA, 0, "192.0.2.1"))
	h.want(1)
	h.counts("orphans", h.stats.Orphans.Load(), 1)
	h.p.Close(4 * sec)
	h.p.Expire(100 * sec) // after Close: nothing, no panic
	h.want(1)
}

func TestCloseEndsPending(t *testing.T) {
	h := newHarness(t, udpClient(), Options{})
	h.dgram(conn.Egress, srvAddr, 0, msg(t, 1, false, "early.test", dnsmessage.TypeA, 0))
	h.dgram(conn.Egress, srvAddr, 4*sec, msg(t, 2, false, "late.test", dnsmessage.TypeA, 0))
	h.p.Close(6 * sec)
	h.want(2)
	// The first passed its deadline before the close; the second did not.
	if x := h.got[0]; x.DNS.Name != "early.test" || !x.DNS.TimedOut || x.End != 5*sec {
		t.Errorf("first: %s", fmtX(x))
	}
	if x := h.got[1]; x.DNS.Name != "late.test" || !x.DNS.TimedOut || x.End != 6*sec {
		t.Errorf("second: %s", fmtX(x))
	}
	h.p.Close(7 * sec)
	h.want(2)
}

// TestCloseRefused: dig asks a port where nothing listens; the ICMP port
// unreachable makes its read fail with ECONNREFUSED, which moves no bytes
// and so reaches weft as nothing at all, and dig closes the socket 0.3 ms
// after the query. That is not a timeout: the query ends at the close as
// given up (NoResponse). A close after QuickClose is still a timeout (the
// client's own clock ran out), and so is one at the last segment's end (a
// close weft inferred, not saw), and a server that closes on a query it
// never answered.
func TestCloseRefused(t *testing.T) {
	const ms = int64(time.Millisecond)
	q := func(t *testing.T) []byte { return msg(t, 1, false, "refused.test", dnsmessage.TypeA, 0) }
	for _, tc := range []struct {
		name       string
		info       *conn.Info
		dir        conn.Direction
		close      int64 // after the query was sent
		noResponse bool
	}{
		{"refused, closed at once", udpClient(), conn.Egress, 300_000, true},
		{"refused over TCP (reset)", tcpClient(), conn.Egress, 2 * ms, true},
		{"just under QuickClose", udpClient(), conn.Egress, 500*ms - 1, true},
		{"client's own 1 s timeout", udpClient(), conn.Egress, time.Second.Nanoseconds(), false},
		{"close inferred at the last segment", udpClient(), conn.Egress, 100, false},
		{"server never answered", &conn.Info{UDP: true, Role: conn.RoleServer, Tuple: conn.Tuple{Local: srvAddr}}, conn.Ingress, 300_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.info, Options{})
			const sent = 10 * sec
			if tc.info.UDP {
				h.dgram(tc.dir, map[bool]netip.AddrPort{true: srvAddr, false: cliAddr}[tc.dir == conn.Egress], sent, q(t))
			} else {
				h.stream(tc.dir, sent, framed(q(t)), 0)
			}
			h.p.Close(sent + tc.close)
			h.want(1)
			x := h.got[0]
			d := x.DNS
			if d.NoResponse != tc.noResponse || d.TimedOut == tc.noResponse || d.RCode != -1 {
				t.Errorf("no response %v timed out %v rcode %d, want no response %v: %s", d.NoResponse, d.TimedOut, d.RCode, tc.noResponse, fmtX(x))
			}
			start := sent // a query sent starts when its write began, one received when the read returned
			if tc.dir == conn.Ingress {
				start += 100
			}
			if x.Start != start || x.End != sent+tc.close {
				t.Errorf("span [%d, %d], want [%d, %d]", x.Start, x.End, start, sent+tc.close)
			}
			h.counts("no responses", h.stats.NoResponse.Load(), map[bool]uint64{true: 1}[tc.noResponse])
			h.counts("timed out", h.stats.TimedOut.Load(), map[bool]uint64{false: 1}[tc.noResponse])
		})
	}
}

func TestRetransmission(t *testing.T) {
	h := newHarness(t, &conn.Info{UDP: true, Tuple: conn.Tuple{Local: srvAddr}}, Options{})
	q := msg(t, 7, false, "a.test", dnsmessage.TypeA, 0)
	h.dgram(conn.Ingress, cliAddr, 1000, q)
	h.dgram(conn.Ingress, cliAddr, 1*sec, q)                                               // a retransmission
	h.dgram(conn.Ingress, cli2, 1*sec+50, q)                                               // same id from another client: its own query
	h.dgram(conn.Ingress, cliAddr, 2*sec, msg(t, 7, false, "b.test", dnsmessage.TypeA, 0)) // same id, another question
	h.dgram(conn.Egress, cliAddr, 2*sec+500, msg(t, 7, true, "a.test", dnsmessage.TypeA, 0, "192.0.2.1"))
	h.want(1)
	x := h.got[0]
	if x.Start != 1100 || x.End != 2*sec+600 || x.Role != conn.RoleServer || x.DNS.Peer != cliAddr || x.DNS.NAddrs != 1 {
		t.Errorf("span must start at the first send: %s", fmtX(x))
	}
	h.counts("retransmits", h.stats.Retransmits.Load(), 1)
	h.p.Close(3 * sec)
	h.want(3) // cli2's query and b.test, unanswered
}

func TestResponseCodes(t *testing.T) {
	for _, rc := range []dnsmessage.RCode{dnsmessage.RCodeNameError, dnsmessage.RCodeServerFailure, dnsmessage.RCodeRefused} {
		h := newHarness(t, udpClient(), Options{})
		h.dgram(conn.Egress, srvAddr, 0, msg(t, 3, false, "x.test", dnsmessage.TypeAAAA, 0))
		h.dgram(conn.Ingress, srvAddr, 50, msg(t, 3, true, "x.test", dnsmessage.TypeAAAA, rc))
		h.want(1)
		if d := h.got[0].DNS; d.RCode != int(rc) || d.TimedOut || d.Type != 28 || d.Answers != 0 {
			t.Errorf("rcode %v: %s", rc, fmtX(h.got[0]))
		}
	}
}

func TestTruncatedCapture(t *testing.T) {
	q := msg(t, 9, false, "cut.test", dnsmessage.TypeA, 0)
	resp := msg(t, 9, true, "cut.test", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "192.0.2.1", "192.0.2.2", "192.0.2.3")
	qend := headerLen + len("cut.test") + 2 + 4
	for _, tc := range []struct {
		name     string
		keep     int
		answered bool
		naddrs   int
		partial  bool
	}{
		{"whole", len(resp), true, 3, false},
		{"inside-second-answer", qend + 16 + 5, true, 1, true},
		{"after-question", qend + 1, true, 0, true},
		{"inside-question", qend - 3, true, 0, true}, // paired by id and peer alone
		{"inside-header", 11, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, udpClient(), Options{})
			h.dgram(conn.Egress, srvAddr, 0, q)
			h.dgram(conn.Ingress, srvAddr, 100, resp[:tc.keep])
			if rest := len(resp) - tc.keep; rest > 0 {
				s := conn.Segment{Dir: conn.Ingress, Offset: h.off[1], Skip: uint64(rest), Start: 100, End: 200, Datagram: true, Peer: srvAddr}
				h.p.Segment(&s)
			}
			h.p.Close(10 * sec)
			h.want(1)
			d := h.got[0].DNS
			if tc.answered == d.TimedOut || d.NAddrs != tc.naddrs || d.Partial != tc.partial {
				t.Errorf("got %s", fmtX(h.got[0]))
			}
			if tc.answered && (d.RCode != 0 || d.Answers != 3 || d.Name != "cut.test") {
				t.Errorf("header fields lost: %s", fmtX(h.got[0]))
			}
			if !tc.answered {
				h.counts("malformed", h.stats.Malformed.Load(), 1)
			}
		})
	}
}

func TestPendingBound(t *testing.T) {
	h := newHarness(t, udpClient(), Options{MaxPending: 2})
	for i := range 3 {
		h.dgram(conn.Egress, srvAddr, int64(i)*1000, msg(t, uint16(i), false, "n.test", dnsmessage.TypeA, 0))
	}
	h.counts("overflows", h.stats.Overflows.Load(), 1)
	if n := len(h.p.pend.qs); n != 2 || cap(h.p.pend.qs) > 2 {
		t.Errorf("%d waiting in %d slots, bound 2", n, cap(h.p.pend.qs))
	}
	// The oldest (id 0) was dropped: its answer is an orphan.
	h.dgram(conn.Ingress, srvAddr, 5000, msg(t, 0, true, "n.test", dnsmessage.TypeA, 0))
	h.counts("orphans", h.stats.Orphans.Load(), 1)
	h.p.Close(6000)
	h.want(2)
}

func TestPairingNeedsPeerAndQuestion(t *testing.T) {
	h := newHarness(t, &conn.Info{UDP: true}, Options{})
	h.dgram(conn.Egress, srvAddr, 0, msg(t, 5, false, "MiXeD.Test", dnsmessage.TypeA, 0))
	h.dgram(conn.Ingress, cli2, 10, msg(t, 5, true, "mixed.test", dnsmessage.TypeA, 0))                 // another peer
	h.dgram(conn.Ingress, srvAddr, 20, msg(t, 5, true, "mixed.test", dnsmessage.TypeAAAA, 0))           // another type
	h.dgram(conn.Ingress, srvAddr, 30, msg(t, 6, true, "mixed.test", dnsmessage.TypeA, 0))              // another id
	h.dgram(conn.Egress, srvAddr, 40, msg(t, 5, true, "mixed.test", dnsmessage.TypeA, 0))               // the wrong way
	h.dgram(conn.Ingress, srvAddr, 50, msg(t, 5, true, "mixed.TEST", dnsmessage.TypeA, 0, "192.0.2.5")) // DNS 0x20: case may differ
	h.want(1)
	h.counts("orphans", h.stats.Orphans.Load(), 4)
	if x := h.got[0]; x.DNS.Name != "MiXeD.Test" || x.Role != conn.RoleClient || x.End != 150 {
		t.Errorf("got %s", fmtX(x))
	}
}

// TestRoleFromQRBit: a socket weft saw connect() on still answers queries
// as a server when the QR bits say so.
func TestRoleFromQRBit(t *testing.T) {
	h := newHarness(t, udpClient(), Options{})
	h.dgram(conn.Ingress, srvAddr, 0, msg(t, 1, false, "r.test", dnsmessage.TypeA, 0))
	h.dgram(conn.Egress, srvAddr, 10, msg(t, 1, true, "r.test", dnsmessage.TypeA, 0))
	h.want(1)
	if h.got[0].Role != conn.RoleServer || h.got[0].Start != 100 {
		t.Errorf("got %s", fmtX(h.got[0]))
	}
}

func TestMulticastNotFollowed(t *testing.T) {
	h := newHarness(t, &conn.Info{UDP: true}, Options{})
	mdns := netip.MustParseAddrPort("224.0.0.251:5353")
	h.dgram(conn.Egress, mdns, 0, msg(t, 0, false, "printer.local", dnsmessage.TypeA, 0))
	h.p.Close(10 * sec)
	h.want(0)
	h.counts("multicast", h.stats.Multicast.Load(), 1)
}

func TestMalformed(t *testing.T) {
	h := newHarness(t, udpClient(), Options{})
	h.dgram(conn.Egress, srvAddr, 0, []byte("not dns"))
	noQ := msg(t, 1, false, "x.test", dnsmessage.TypeA, 0)[:headerLen]
	noQ[5] = 0 // QDCOUNT 0: a query that asks nothing
	h.dgram(conn.Egress, srvAddr, 1, noQ)
	h.p.Close(2)
	h.want(0)
	h.counts("malformed", h.stats.Malformed.Load(), 2)
}

func TestNamePresentation(t *testing.T) {
	for _, tc := range []struct {
		wire []byte
		want string
	}{
		{[]byte{0}, "."},
		{[]byte{3, 'w', 'w', 'w', 4, 't', 'e', 's', 't', 0}, "www.test"},
		{[]byte{6, 'a', ' ', '\\', '"', 0, 0xff, 2, '\t', '\n', 1, '\r', 0}, `a \\\"\000\255.\t\n.\r`},
	} {
		m := append([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, tc.wire...)
		m = append(m, 0, 1, 0, 1)
		var mm message
		if !decode(m, &mm) || !mm.hasQuestion {
			t.Fatalf("%q does not decode", tc.wire)
		}
		if got := string(appendName(nil, &mm.name)); got != tc.want {
			t.Errorf("name %q = %q, want %q", tc.wire, got, tc.want)
		}
	}
}

func TestStringTables(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{TypeString(1), "A"}, {TypeString(28), "AAAA"}, {TypeString(65), "HTTPS"}, {TypeString(255), "ANY"},
		{TypeString(4242), "TYPE4242"},
		{RCodeString(0), "NOERROR"}, {RCodeString(3), "NXDOMAIN"}, {RCodeString(2), "SERVFAIL"},
		{RCodeString(5), "REFUSED"}, {RCodeString(16), "BADVERS"}, {RCodeString(12), "RCODE12"}, {RCodeString(4095), "RCODE4095"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	for _, o := range []Options{{Timeout: -1}, {MaxPending: -1}, {MaxMessageBytes: -1}, {MaxMessageBytes: 11}} {
		if o.Validate() == nil {
			t.Errorf("%+v validated", o)
		}
	}
}

// TestUnknownPeer: an unconnected socket's remote end (0.0.0.0:0) names
// no peer; datagrams whose peer the capture could not read still pair.
func TestUnknownPeer(t *testing.T) {
	unconnected := netip.MustParseAddrPort("0.0.0.0:0")
	h := newHarness(t, &conn.Info{UDP: true, Tuple: conn.Tuple{Local: srvAddr, Remote: unconnected}}, Options{})
	h.dgram(conn.Ingress, netip.AddrPort{}, 0, msg(t, 1, false, "p.test", dnsmessage.TypeA, 0))
	h.dgram(conn.Egress, cliAddr, 10, msg(t, 1, true, "p.test", dnsmessage.TypeA, 0))
	h.want(1)
	if x := h.got[0]; x.DNS.Peer.IsValid() && x.DNS.Peer != unconnected {
		t.Errorf("peer %v, want none", x.DNS.Peer)
	}
}
