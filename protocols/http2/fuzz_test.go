package http2

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// program encodes a feed as fuzz input: byte 0 picks the role; then each
// op is a byte whose bit 0 picks the direction, bit 1 a skip instead of
// data, and whose top 6 bits (times 7, plus one) give the length taken
// from what follows.
func program(role byte, segs []recording.Seg) []byte {
	b := []byte{role}
	for _, s := range segs {
		d := byte(1)
		if s.ToServer {
			d = 0
		}
		if s.Data == nil {
			for n := s.Skip; n > 0; {
				k := min(n, 63*7+1)
				b = append(b, byte((k-1)/7)<<2|2|d)
				n -= (k-1)/7*7 + 1
			}
			continue
		}
		for p := s.Data; len(p) > 0; {
			n := min(len(p), 63*7+1)
			b = append(b, byte((n-1)/7)<<2|d)
			b = append(b, p[:n]...)
			p = p[n:]
		}
	}
	return b
}

// FuzzParser feeds arbitrary bytes and skips to both directions and checks
// that the parser neither panics nor holds more than its bounds allow, and
// that what it emits is well formed.
func FuzzParser(f *testing.F) {
	for _, name := range []string{"grpc-unary", "grpc-stream", "curl-h2c", "grpc-concurrent"} {
		f.Add(program(2, recording.Cut(recording.Load(f, name), recording.Whole, nil)))
	}
	w := newWire(&testing.T{})
	w.settings()
	w.headers(true, 1, false, grpcReq...)
	w.data(true, 1, true, 40)
	w.send(true)
	w.headers(false, 1, false, ":status: 200", "content-type: application/grpc")
	w.data(false, 1, false, 30)
	w.headers(false, 1, true, "grpc-status: 3")
	w.send(false)
	f.Add(program(1, w.segs))
	f.Add(program(0, w.segs[2:]))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		opts := Options{MaxHeaderBlockBytes: 512, MaxTableSize: 1024, MaxStreams: 8, Stats: new(Stats)}
		info := &conn.Info{Role: conn.Role(in[0] % 3)}
		emitted := 0
		p := New(info, func(x *protocols.Exchange) {
			emitted++
			h := x.HTTP
			switch {
			case x.Conn != info || x.Protocol != protocols.HTTP2 || h == nil || h.Version != "2":
				t.Fatalf("bad exchange header %+v", x)
			case h.Status != 0 && (h.Status < 100 || h.Status > 999):
				t.Fatalf("status %d", h.Status)
			case h.GRPCStatus < -1 || !h.GRPC && h.GRPCStatus != -1:
				t.Fatalf("grpc %v status %d", h.GRPC, h.GRPCStatus)
			case h.RequestBodySize < -1 || h.ResponseBodySize < -1:
				t.Fatalf("body sizes %d/%d", h.RequestBodySize, h.ResponseBodySize)
			case strings.ContainsAny(h.Path, "?#"):
				t.Fatalf("path %q", h.Path)
			case info.Role != conn.RoleUnknown && x.Role != info.Role:
				t.Fatalf("role %v on a %v connection", x.Role, info.Role)
			}
		}, opts)
		recording.Ops(in, 1, func(s *conn.Segment) {
			p.Segment(s)
			checkBounds(t, p, opts)
		})
		p.Close(1 << 40)
		if got := opts.Stats.Exchanges.Load(); got != uint64(emitted) {
			t.Fatalf("stats count %d exchanges, sink saw %d", got, emitted)
		}
		if p.streams.n != 0 {
			t.Fatalf("%d streams left after close", p.streams.n)
		}
	})
}

// checkBounds fails when a parser holds more than its options allow.
func checkBounds(t *testing.T, p *Parser, o Options) {
	t.Helper()
	if len(p.streams.s) > o.MaxStreams || p.streams.n > o.MaxStreams || p.streams.n < 0 {
		t.Fatalf("%d streams in %d slots, limit %d", p.streams.n, len(p.streams.s), o.MaxStreams)
	}
	for d := range p.sides {
		sd := &p.sides[d]
		if c := cap(sd.blk); c > o.MaxHeaderBlockBytes {
			t.Fatalf("direction %d buffers %d block bytes, limit %d", d, c, o.MaxHeaderBlockBytes)
		}
		tab := &sd.dec.tab
		if tab.size > uint64(o.MaxTableSize) || len(tab.arena) > max(256, 2*o.MaxTableSize) ||
			tab.n > o.MaxTableSize/entryOverhead || len(tab.ents) > 2*o.MaxTableSize/entryOverhead+8 {
			t.Fatalf("direction %d table: %d bytes, arena %d, %d entries in %d slots; cap %d",
				d, tab.size, len(tab.arena), tab.n, len(tab.ents), o.MaxTableSize)
		}
		if c := cap(sd.dec.scratch.b); c > 4*o.MaxHeaderBlockBytes {
			t.Fatalf("direction %d scratch %d bytes, limit %d", d, c, 4*o.MaxHeaderBlockBytes)
		}
	}
}

// FuzzHPACK checks the decoder against x/net's on arbitrary blocks (input:
// blocks, each prefixed by a 2-byte length): while x/net decodes, a synced
// decoder must decode the same fields; a decoder that starts unsynced at
// the second block must never report a field x/net does not.
func FuzzHPACK(f *testing.F) {
	for _, seed := range [][]string{
		{"828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf", "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"},
		{"3fe11f82", "4003666f6f03626172", "be", "20", "be"},
	} {
		var in []byte
		for _, h := range seed {
			b := make([]byte, len(h)/2)
			for i := range b {
				var v byte
				for _, c := range h[2*i : 2*i+2] {
					v <<= 4
					switch {
					case c >= 'a':
						v |= byte(c-'a') + 10
					default:
						v |= byte(c - '0')
					}
				}
				b[i] = v
			}
			in = binary.BigEndian.AppendUint16(in, uint16(len(b)))
			in = append(in, b...)
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		xnet := hpack.NewDecoder(DefaultHeaderTableSize, nil)
		xnet.SetAllowedMaxDynamicTableSize(1 << 16)
		synced := new(decoder)
		synced.init(1<<16, 1<<16, true)
		late := new(decoder)
		late.init(1<<16, 1<<16, false)
		for k := 0; len(in) >= 2; k++ {
			n := min(int(binary.BigEndian.Uint16(in)), len(in)-2)
			b := in[2 : 2+n]
			in = in[2+n:]
			truth, xerr := decodeXNet(xnet, b)
			got, err := decodeOurs(t, synced, b)
			var lgot []hf
			var lerr error
			if k > 0 {
				lgot, lerr = decodeOurs(t, late, b)
			}
			if xerr != nil {
				return // x/net's table is undefined from here on
			}
			if err != nil || !sameFields(got, truth) {
				t.Fatalf("block %d: got %v (%v), x/net %v", k, got, err, truth)
			}
			if k == 0 {
				continue
			}
			if lerr != nil || len(lgot) != len(truth) {
				t.Fatalf("block %d, unsynced: got %v (%v), x/net %v", k, lgot, lerr, truth)
			}
			for j, f := range lgot {
				if f.known && f != truth[j] {
					t.Fatalf("block %d field %d, unsynced: got %v, x/net %v", k, j, f, truth[j])
				}
			}
		}
	})
}
