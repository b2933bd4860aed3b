package dns

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// want is one exchange of a recording: the records of the query's first
// send and of its response (r < 0: none), and what the response says.
type want struct {
	q, r    int
	name    string
	qtype   uint16
	rcode   int
	answers int
	addrs   []string
}

type fixture struct {
	name        string
	exs         []want
	retransmits int // on each socket that saw the query
}

const (
	typeA    = 1
	typeMX   = 15
	typeAAAA = 28
)

var (
	example = []string{"192.0.2.1", "192.0.2.2"}
	big8    = []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6", "198.51.100.7", "198.51.100.8"}
)

var fixtures = []fixture{
	{name: "dig-a-udp", exs: []want{{0, 1, "example.test", typeA, 0, 2, example}}},
	{name: "dig-nxdomain-udp", exs: []want{{0, 1, "nope.example", typeA, 3, 0, nil}}},
	{name: "dig-servfail-udp", exs: []want{{0, 1, "servfail.test", typeA, 2, 0, nil}}},
	{name: "dig-refused-udp", exs: []want{{0, 1, "refused.test", typeMX, 5, 0, nil}}},
	{name: "dig-badvers-udp", exs: []want{{0, 1, "badvers.test", typeA, 16, 0, nil}}},
	{name: "dig-a-tcp", exs: []want{{0, 1, "www.example.test", typeA, 0, 2, example}}},
	{name: "dig-retry-udp", exs: []want{{0, -1, "retry.test", typeA, -1, 0, nil}, {1, -1, "retry.test", typeA, -1, 0, nil}}},
	{name: "dig-timeout-udp", exs: []want{{0, -1, "drop.test", typeA, -1, 0, nil}}},
	{name: "dig-tc-fallback", exs: []want{{0, 1, "big.test", typeA, 0, 0, nil}, {2, 3, "big.test", typeA, 0, 40, big8}}},
	{name: "go-lookuphost-udp", exs: []want{{0, 1, "example.test", typeAAAA, 0, 1, []string{"2001:db8::1"}}, {2, 3, "example.test", typeA, 0, 2, example}}},
	{name: "go-lookuphost-tcp", exs: []want{{0, 1, "example.test", typeAAAA, 0, 1, []string{"2001:db8::1"}}, {2, 3, "example.test", typeA, 0, 2, example}}},
	{name: "go-nxdomain-udp", exs: []want{{0, 1, "nope.example", typeAAAA, 3, 0, nil}, {2, 3, "nope.example", typeA, 3, 0, nil}}},
	{name: "glibc-retransmit-udp", exs: []want{{0, 2, "retry.test", typeA, 0, 1, []string{"192.0.2.7"}}}, retransmits: 1},
}

// expect builds the exchanges v's parser must emit, in start order. With
// cut set, responses were captured only to just past their question.
func expect(t *testing.T, f fixture, r recording, v view, role conn.Role, cut bool) []protocols.Exchange {
	t.Helper()
	var out []protocols.Exchange
	for _, w := range f.exs {
		q := &r.records[w.q]
		if !v.has(q) {
			continue
		}
		// A re-recording may change what the table assumes (Go sends A
		// and AAAA in either order): say so rather than fail obscurely.
		if name, typ := question(t, q.b, q.tcp); name != w.name || typ != w.qtype {
			t.Fatalf("%s record %d asks %q type %d, the table says %q type %d", f.name, w.q, name, typ, w.name, w.qtype)
		}
		x := protocols.Exchange{Role: role, Protocol: protocols.DNS, Start: recStart(q), RequestTID: recTID(w.q)}
		if role == conn.RoleServer {
			x.Start = recEnd(q)
		}
		d := protocols.DNSInfo{ID: be16(q.b[2*b2i(q.tcp):]), Name: w.name, Type: w.qtype, RCode: w.rcode, Answers: w.answers, Transport: "udp", Peer: v.peer(r, q)}
		if q.tcp {
			d.Transport = "tcp"
			x.RequestSeq = 0xFFFF_FF00 + uint32(streamOffset(r, v, w.q))
		}
		if w.r < 0 {
			d.TimedOut = true
			x.End = x.Start + int64(DefaultTimeout)
		} else {
			x.End, x.ResponseTID = recEnd(&r.records[w.r]), recTID(w.r)
			for i, a := range w.addrs {
				d.Addrs[i] = netip.MustParseAddr(a)
			}
			d.NAddrs = len(w.addrs)
			if cut {
				d.RCode &= 0xf // the OPT record that extends it was not captured
				d.Addrs, d.NAddrs, d.Partial = [protocols.DNSMaxAddrs]netip.Addr{}, 0, true
			}
		}
		x.DNS = &d
		out = append(out, x)
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// streamOffset is where record k starts in its direction of v's TCP stream.
func streamOffset(r recording, v view, k int) int {
	n := 0
	for i := range k {
		if rc := &r.records[i]; v.has(rc) && rc.toServer == r.records[k].toServer {
			n += len(rc.b)
		}
	}
	return n
}

// questionEnd walks a message's first question by hand (names in
// questions are never compressed), independently of the parser.
func questionEnd(t *testing.T, msg []byte) int {
	t.Helper()
	i := headerLen
	for i < len(msg) && msg[i] != 0 {
		i += 1 + int(msg[i])
	}
	if i+5 > len(msg) {
		t.Fatalf("question runs past the message (%d bytes)", len(msg))
	}
	return i + 5
}

// question reads a message's first question by hand, like questionEnd.
func question(t *testing.T, b []byte, tcp bool) (string, uint16) {
	t.Helper()
	if tcp {
		b = b[2:]
	}
	var labels []string
	for i := headerLen; i < len(b) && b[i] != 0; i += 1 + int(b[i]) {
		labels = append(labels, string(b[i+1:i+1+int(b[i])]))
	}
	e := questionEnd(t, b)
	return strings.Join(labels, "."), be16(b[e-4:])
}

func fmtX(x protocols.Exchange) string {
	d := *x.DNS
	return fmt.Sprintf("role=%v start=%d end=%d seq=%d tid=%d/%d id=%d name=%q type=%d rcode=%d answers=%d %s timedout=%v peer=%v addrs=%v partial=%v",
		x.Role, x.Start, x.End, x.RequestSeq, x.RequestTID, x.ResponseTID, d.ID, d.Name, d.Type, d.RCode, d.Answers, d.Transport, d.TimedOut, d.Peer, d.Addrs[:d.NAddrs], d.Partial)
}

func diff(got, want []protocols.Exchange) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = fmtX(got[i])
			if got[i].Protocol != protocols.DNS || got[i].DNS == nil {
				g = "not a DNS exchange: " + g
			}
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

func byStart(xs []protocols.Exchange) {
	slices.SortStableFunc(xs, func(a, b protocols.Exchange) int { return int(a.Start - b.Start) })
}

func whole(_ int, b []byte) []int { return []int{len(b)} }

func bytewise(_ int, b []byte) []int {
	n := make([]int, len(b))
	for i := range n {
		n[i] = 1
	}
	return n
}

func prefixApart(_ int, b []byte) []int { return []int{2, len(b) - 2} }

func randomSplit(r *rand.Rand) func(int, []byte) []int {
	return func(_ int, b []byte) []int {
		var ns []int
		for left := len(b); left > 0; {
			n := min(left, 1+r.IntN(40))
			ns = append(ns, n)
			left -= n
		}
		return ns
	}
}

// TestFixtures replays every recording on every socket it involved, from
// both ends, with the role known and unknown, cut the ways a capture can
// cut it, and checks every exchange field and the counters.
func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		r := loadRec(t, f.name)
		rnd := rand.New(rand.NewPCG(7, uint64(len(f.name))))
		// captureCut keeps each message up to just past its question and
		// loses the rest: what a tiny capture limit leaves.
		captureCut := func(k int, b []byte) []int {
			rc := &r.records[k]
			if rc.tcp {
				e := 2 + questionEnd(t, b[2:]) + 3
				if e >= len(b) {
					return []int{len(b)}
				}
				return []int{e, -(len(b) - e)}
			}
			e := questionEnd(t, b) + 3
			if e >= len(b) {
				return []int{len(b)}
			}
			return []int{e, -(len(b) - e)}
		}
		feeds := []struct {
			name  string
			cut   func(int, []byte) []int
			reads bool // segments start where the real reads and writes did
			tcp   bool // only for TCP (UDP never splits a datagram)
			lossy bool
		}{
			{"whole", whole, true, false, false},
			{"capture-cut", captureCut, true, false, true},
			{"bytewise", bytewise, false, true, false},
			{"prefix-apart", prefixApart, true, true, false}, // how servers commonly read
			{"random", randomSplit(rnd), false, true, false},
		}
		for _, v := range views(r) {
			for _, known := range []bool{true, false} {
				for _, fd := range feeds {
					if fd.tcp && !v.tcp || !known && !fd.reads && v.tcp {
						continue
					}
					role := conn.RoleClient
					if v.server {
						role = conn.RoleServer
					}
					name := fmt.Sprintf("%s/%s/known=%v/%s", f.name, v.label, known, fd.name)
					t.Run(name, func(t *testing.T) {
						want := expect(t, f, r, v, role, fd.lossy)
						var stats Stats
						got := run(v.info(r, known), v.segments(r, fd.cut), Options{Stats: &stats})
						byStart(got)
						if d := diff(got, want); d != "" {
							t.Error(d)
						}
						checkStats(t, &stats, f, want, fd.lossy)
					})
				}
			}
		}
	}
}

func checkStats(t *testing.T, s *Stats, f fixture, want []protocols.Exchange, lossy bool) {
	t.Helper()
	timedOut, answered := 0, 0
	for _, x := range want {
		if x.DNS.TimedOut {
			timedOut++
		} else {
			answered++
		}
	}
	retransmits := 0
	if len(want) > 0 {
		retransmits = f.retransmits
	}
	partial := 0
	if lossy {
		partial = answered
	}
	for _, c := range []struct {
		name string
		got  uint64
		want int
	}{
		{"exchanges", s.Exchanges.Load(), len(want)},
		{"timed out", s.TimedOut.Load(), timedOut},
		{"retransmits", s.Retransmits.Load(), retransmits},
		{"partial", s.Partial.Load(), partial},
		{"malformed", s.Malformed.Load(), 0},
		{"orphans", s.Orphans.Load(), 0},
		{"overflows", s.Overflows.Load(), 0},
		{"desyncs", s.Desyncs.Load(), 0},
		{"multicast", s.Multicast.Load(), 0},
	} {
		if c.got != uint64(c.want) {
			t.Errorf("%s counted %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestFixturesEverySplit cuts each TCP read or write into two segments at
// every offset: the framing must not care where the reads fell.
func TestFixturesEverySplit(t *testing.T) {
	for _, f := range fixtures {
		r := loadRec(t, f.name)
		for _, v := range views(r) {
			if !v.tcp {
				continue
			}
			role := map[bool]conn.Role{true: conn.RoleServer, false: conn.RoleClient}[v.server]
			want := expect(t, f, r, v, role, false)
			for k := range r.records {
				for at := 1; at < len(r.records[k].b); at++ {
					split := func(j int, b []byte) []int {
						if j != k {
							return []int{len(b)}
						}
						return []int{at, len(b) - at}
					}
					got := run(v.info(r, true), v.segments(r, split), Options{})
					byStart(got)
					if d := diff(got, want); d != "" {
						t.Fatalf("%s %s: record %d split at %d:\n%s", f.name, v.label, k, at, d)
					}
				}
			}
		}
	}
}
