package dns

import (
	"testing"
	"time"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// fuzzOpts are small bounds, so the fuzzer reaches them.
var fuzzOpts = Options{Timeout: 2 * time.Second, MaxPending: 4, MaxMessageBytes: 64}

// FuzzParser feeds arbitrary datagrams (UDP mode) or stream runs (TCP
// mode) with skips, peers and expiry ticks, and checks the parser neither
// panics nor holds more than its bounds allow, and emits only well-formed
// exchanges.
//
// The input is a program: byte 0's bit 0 picks TCP, bits 1-2 the role.
// Each op is two bytes, then data: the first byte's bit 0 picks the
// direction, bit 1 a skip instead of data, bit 2 the second peer, bit 3 an
// Expire tick first, and its top four bits how many half-seconds pass; the
// second byte plus one is the length.
func FuzzParser(f *testing.F) {
	for _, fx := range fixtures {
		r := loadRec(f, fx.name)
		for _, tcp := range []bool{false, true} {
			prog := []byte{byte(2 << 1)}
			if tcp {
				prog[0] |= 1
			}
			for _, rc := range r.records {
				if rc.tcp != tcp {
					continue
				}
				d := byte(1) // toward the server: ingress on the server's socket
				if !rc.toServer {
					d = 0
				}
				for p := rc.b; len(p) > 0; {
					n := min(len(p), 256)
					prog = append(prog, d|1<<4, byte(n-1))
					prog = append(prog, p[:n]...)
					p = p[n:]
				}
			}
			if len(prog) > 1 {
				f.Add(prog)
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		tcp := in[0]&1 != 0
		info := &conn.Info{UDP: !tcp, Role: conn.Role(in[0] >> 1 % 3), Tuple: conn.Tuple{Local: srvAddr, Remote: cliAddr}}
		opts := fuzzOpts
		opts.Stats = new(Stats)
		emitted := 0
		p := New(info, func(x *protocols.Exchange) {
			emitted++
			checkExchange(t, info, x)
		}, opts)
		var off [2]uint64
		now := int64(0)
		for i := 1; i+1 < len(in); {
			op, n := in[i], int(in[i+1])+1
			i += 2
			now += int64(op>>4) * int64(time.Second/2)
			if op&8 != 0 {
				p.Expire(now)
			}
			d := conn.Direction(op & 1)
			s := conn.Segment{Dir: d, Offset: off[d], Start: now, End: now + 1000, Datagram: !tcp, Peer: cliAddr}
			if op&4 != 0 {
				s.Peer = cli2
			}
			if op&2 != 0 {
				s.Skip = uint64(n)
			} else {
				n = min(n, len(in)-i)
				s.Data = in[i : i+n]
				i += n
			}
			off[d] += s.Len()
			p.Segment(&s)
			checkBounds(t, p)
		}
		p.Close(now + 1)
		if len(p.pend.qs) != 0 {
			t.Fatalf("%d queries left after Close", len(p.pend.qs))
		}
		if got := opts.Stats.Exchanges.Load(); got != uint64(emitted) {
			t.Fatalf("stats count %d exchanges, sink saw %d", got, emitted)
		}
	})
}

func checkBounds(t *testing.T, p *Parser) {
	t.Helper()
	if n, c := len(p.pend.qs), cap(p.pend.qs); n > fuzzOpts.MaxPending || c > fuzzOpts.MaxPending {
		t.Fatalf("%d queries waiting in %d slots, bound %d", n, c, fuzzOpts.MaxPending)
	}
	for d := range p.frames {
		if c := cap(p.frames[d].buf); c > fuzzOpts.MaxMessageBytes {
			t.Fatalf("direction %d holds %d bytes, bound %d", d, c, fuzzOpts.MaxMessageBytes)
		}
	}
	if c := cap(p.name); c > 2*maxPresentation {
		t.Fatalf("name buffer %d bytes", c)
	}
}

func checkExchange(t *testing.T, info *conn.Info, x *protocols.Exchange) {
	t.Helper()
	d := x.DNS
	switch {
	case x.Conn != info || x.Protocol != protocols.DNS || d == nil:
		t.Fatalf("bad exchange header %+v", x)
	case x.End < x.Start:
		t.Fatalf("ends at %d before it starts at %d", x.End, x.Start)
	case x.Role != conn.RoleClient && x.Role != conn.RoleServer:
		t.Fatalf("role %v", x.Role)
	case (d.TimedOut || d.NoResponse) != (d.RCode == -1) || d.TimedOut && d.NoResponse || d.RCode < -1 || d.RCode > 0xfff:
		t.Fatalf("timed out %v, no response %v, with rcode %d", d.TimedOut, d.NoResponse, d.RCode)
	case d.NoResponse && x.Role != conn.RoleClient:
		t.Fatalf("a server's query given up at once")
	case d.Transport != map[bool]string{true: "udp", false: "tcp"}[info.UDP]:
		t.Fatalf("transport %q on a UDP=%v socket", d.Transport, info.UDP)
	case d.NAddrs < 0 || d.NAddrs > protocols.DNSMaxAddrs || d.Answers < 0 || d.Answers > 0xffff:
		t.Fatalf("%d addresses, %d answers", d.NAddrs, d.Answers)
	case d.Name == "" || len(d.Name) > maxPresentation:
		t.Fatalf("name of %d bytes", len(d.Name))
	}
	for i := range len(d.Name) {
		if c := d.Name[i]; c < 0x20 || c > 0x7e {
			t.Fatalf("name %q holds byte %#x", d.Name, c)
		}
	}
}

// FuzzDecode checks the decoder and the detection functions on arbitrary
// bytes: no panic, bounded output, and whatever detection accepts decodes.
func FuzzDecode(f *testing.F) {
	for _, fx := range fixtures {
		for _, rc := range loadRec(f, fx.name).records {
			f.Add(rc.b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		ok := decode(b, &m)
		if ok != (len(b) >= headerLen) {
			t.Fatalf("decode of %d bytes: %v", len(b), ok)
		}
		if m.naddrs < 0 || m.naddrs > len(m.addrs) {
			t.Fatalf("%d addresses", m.naddrs)
		}
		if m.hasQuestion {
			if n := len(appendName(nil, &m.name)); n == 0 || n > maxPresentation {
				t.Fatalf("name of %d bytes", n)
			}
		}
		if LooksLikeDatagram(b) && (!ok || !m.hasQuestion) {
			t.Fatalf("detected as a datagram, but decodes %v with question %v", ok, m.hasQuestion)
		}
		if LooksLikeStream(b) && len(b) > 2 {
			body := b[2:min(len(b), 2+int(be16(b)))]
			if !decode(body, &m) || !m.hasQuestion {
				t.Fatal("detected as a stream, but its first message does not decode")
			}
		}
	})
}
