package dns

import (
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftrace/weft/conn"
)

func framed(b []byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }

func tcpClient() *conn.Info {
	return &conn.Info{Role: conn.RoleClient, Tuple: conn.Tuple{Local: cliAddr, Remote: srvAddr}}
}

// TestTCPPipelined: two queries in one write, answered out of order in
// one read (RFC 7766 allows it): each pairs by id.
func TestTCPPipelined(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	qa := framed(msg(t, 1, false, "a.test", dnsmessage.TypeA, 0))
	qb := framed(msg(t, 2, false, "b.test", dnsmessage.TypeA, 0))
	h.stream(conn.Egress, 0, append(qa, qb...), 0)
	ra := framed(msg(t, 1, true, "a.test", dnsmessage.TypeA, 0, "192.0.2.1"))
	rb := framed(msg(t, 2, true, "b.test", dnsmessage.TypeA, dnsmessage.RCodeNameError))
	h.stream(conn.Ingress, 500, append(rb, ra...), 0)
	h.want(2)
	if x := h.got[0]; x.DNS.Name != "b.test" || x.DNS.RCode != 3 || x.DNS.Transport != "tcp" || x.RequestSeq != uint32(len(qa)) {
		t.Errorf("first: %s", fmtX(x))
	}
	if x := h.got[1]; x.DNS.Name != "a.test" || x.DNS.NAddrs != 1 || x.DNS.Peer != srvAddr || x.RequestSeq != 0 {
		t.Errorf("second: %s", fmtX(x))
	}
}

// TestTCPLostPrefix: uncaptured bytes inside a message are stepped over
// (its head still decodes), but when they cover the next length prefix
// they cost the framing: the direction ignores bytes until a segment starts
// a message, and the query whose answer was lost times out.
func TestTCPLostPrefix(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	q1 := framed(msg(t, 1, false, "one.test", dnsmessage.TypeA, 0))
	q2 := framed(msg(t, 2, false, "two.test", dnsmessage.TypeA, 0))
	r1 := framed(msg(t, 1, true, "one.test", dnsmessage.TypeA, 0, "192.0.2.1"))
	r2 := framed(msg(t, 2, true, "two.test", dnsmessage.TypeA, 0, "192.0.2.2"))
	h.stream(conn.Egress, 0, q1, 0)
	h.stream(conn.Egress, 10, q2, 0)
	head := 2 + headerLen + len("one.test") + 2 + 4
	h.stream(conn.Ingress, 20, r1[:head], 0)
	h.stream(conn.Ingress, 30, nil, uint64(len(r1)-head+3)) // r1's answer, r2's prefix and first byte
	h.want(1)
	if x := h.got[0]; x.DNS.Name != "one.test" || x.DNS.RCode != 0 || x.DNS.Answers != 1 || x.DNS.NAddrs != 0 || !x.DNS.Partial || x.End != 130 {
		t.Errorf("got %s", fmtX(x))
	}
	h.counts("desyncs", h.stats.Desyncs.Load(), 1)
	h.stream(conn.Ingress, 40, r2[3:], 0) // mid-message: not a message start, ignored
	h.want(1)
	h.p.Close(10 * sec)
	h.want(2)
	if x := h.got[1]; x.DNS.Name != "two.test" || !x.DNS.TimedOut {
		t.Errorf("got %s", fmtX(x))
	}
	h.counts("malformed", h.stats.Malformed.Load(), 0)
}

// TestTCPMessageUncaptured: a message none of whose header was captured
// is lost, and counted as such, not as malformed.
func TestTCPMessageUncaptured(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	h.stream(conn.Egress, 0, framed(msg(t, 1, false, "one.test", dnsmessage.TypeA, 0)), 0)
	r := framed(msg(t, 1, true, "one.test", dnsmessage.TypeA, 0))
	h.stream(conn.Ingress, 20, r[:5], 0)
	h.stream(conn.Ingress, 30, nil, uint64(len(r)-5))
	h.counts("desyncs", h.stats.Desyncs.Load(), 1)
	h.counts("malformed", h.stats.Malformed.Load(), 0)
	h.p.Close(10 * sec)
	h.want(1)
	if !h.got[0].DNS.TimedOut {
		t.Errorf("got %s", fmtX(h.got[0]))
	}
}

// TestTCPResync: after losing its place a direction resynchronises at a
// segment that starts with a length-prefixed message.
func TestTCPResync(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	q1 := framed(msg(t, 1, false, "one.test", dnsmessage.TypeA, 0))
	q2 := framed(msg(t, 2, false, "two.test", dnsmessage.TypeA, 0))
	h.stream(conn.Egress, 0, nil, 1) // the first byte of q1's prefix lost
	h.stream(conn.Egress, 5, q1[1:], 0)
	h.stream(conn.Egress, 10, q2, 0)
	h.stream(conn.Ingress, 20, framed(msg(t, 2, true, "two.test", dnsmessage.TypeA, 0)), 0)
	h.want(1)
	if x := h.got[0]; x.DNS.Name != "two.test" || x.DNS.TimedOut {
		t.Errorf("got %s", fmtX(x))
	}
	h.counts("desyncs", h.stats.Desyncs.Load(), 1)
}

// TestTCPMessageBound: a response spanning segments is held only up to
// MaxMessageBytes; the rest is stepped over and the head decoded.
func TestTCPMessageBound(t *testing.T) {
	const limit = 64
	h := newHarness(t, tcpClient(), Options{MaxMessageBytes: limit})
	h.stream(conn.Egress, 0, framed(msg(t, 4, false, "big.test", dnsmessage.TypeA, 0)), 0)
	var addrs []string
	for i := range 30 {
		addrs = append(addrs, "198.51.100."+string(rune('0'+i%10)))
	}
	r := framed(msg(t, 4, true, "big.test", dnsmessage.TypeA, 0, addrs...))
	for i := 0; i < len(r); i += 7 {
		h.stream(conn.Ingress, int64(100+i), r[i:min(i+7, len(r))], 0)
		if c := cap(h.p.frames[conn.Ingress].buf); c > limit {
			t.Fatalf("holds %d bytes, bound %d", c, limit)
		}
	}
	h.want(1)
	d := h.got[0].DNS
	// 64 bytes: the header, big.test's question (14) and two whole answers
	// (16 each) before the third is cut.
	if d.Answers != 30 || d.NAddrs != 2 || !d.Partial || d.RCode != 0 {
		t.Errorf("got %s", fmtX(h.got[0]))
	}
	h.counts("partial", h.stats.Partial.Load(), 1)
}

// TestTCPUnknownRoleWaitsForMessageStart: a connection weft joined
// mid-stream ignores bytes until a segment starts a message.
func TestTCPUnknownRoleWaitsForMessageStart(t *testing.T) {
	h := newHarness(t, &conn.Info{}, Options{})
	q := framed(msg(t, 8, false, "u.test", dnsmessage.TypeA, 0))
	h.stream(conn.Ingress, 0, q[5:], 0)
	h.stream(conn.Ingress, 10, q, 0)
	h.stream(conn.Egress, 20, framed(msg(t, 8, true, "u.test", dnsmessage.TypeA, 0)), 0)
	h.want(1)
	if x := h.got[0]; x.Role != conn.RoleServer || x.DNS.Name != "u.test" {
		t.Errorf("got %s", fmtX(x))
	}
}

// TestTCPOffsets: bytes the conn layer never reported (an offset jump)
// are a skip, and bytes delivered twice are trimmed.
func TestTCPOffsets(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	q1 := framed(msg(t, 1, false, "one.test", dnsmessage.TypeA, 0))
	q2 := framed(msg(t, 2, false, "two.test", dnsmessage.TypeA, 0))
	seg := func(d conn.Direction, off uint64, b []byte) {
		s := conn.Segment{Dir: d, Offset: off, Data: b, Start: 10, End: 20}
		h.p.Segment(&s)
	}
	seg(conn.Egress, 0, q1[:10])
	seg(conn.Egress, 5, q1[5:])           // overlaps the first five bytes again
	seg(conn.Egress, uint64(len(q1)), q2) // exactly where it left off
	seg(conn.Egress, 0, q1[:3])           // old bytes only: ignored
	r1 := framed(msg(t, 1, true, "one.test", dnsmessage.TypeA, 0))
	r2 := framed(msg(t, 2, true, "two.test", dnsmessage.TypeA, 0))
	seg(conn.Ingress, 0, r1)
	seg(conn.Ingress, uint64(len(r1)+4), r2[4:]) // r2's first four bytes never reported
	h.want(1)
	h.counts("desyncs", h.stats.Desyncs.Load(), 1)
	h.p.Close(10 * sec)
	h.want(2)
	if h.got[0].DNS.Name != "one.test" || h.got[0].DNS.TimedOut || h.got[1].DNS.Name != "two.test" || !h.got[1].DNS.TimedOut {
		t.Errorf("got %s\n    %s", fmtX(h.got[0]), fmtX(h.got[1]))
	}
	h.p.Segment(&conn.Segment{Dir: conn.Egress, Offset: 1000, Data: q1}) // after Close: ignored
	h.want(2)
}

// TestTCPBadLength: a length prefix too short for a header loses the
// framing and counts as malformed.
func TestTCPBadLength(t *testing.T) {
	h := newHarness(t, tcpClient(), Options{})
	h.stream(conn.Egress, 0, []byte{0, 5, 1, 2, 3, 4, 5}, 0)
	h.counts("malformed", h.stats.Malformed.Load(), 1)
	if h.p.frames[conn.Egress].st != fLost {
		t.Error("framing kept after a bad length")
	}
}
