package http2

import (
	"fmt"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// truthful checks exchanges a parser emitted from a damaged feed against
// the oracle's: each must be one of the recording's exchanges, at most
// once, and every field it carries must be the true one. An empty field
// (0, -1, "" or false) where the truth has a value is allowed only on a
// Partial exchange. It returns how many exchanges were Partial.
func truthful(t *testing.T, got, want []protocols.Exchange) (partial int) {
	t.Helper()
	bySeq := map[uint32]*protocols.Exchange{}
	for i := range want {
		bySeq[want[i].RequestSeq] = &want[i]
	}
	seen := map[uint32]bool{}
	for _, g := range got {
		w := bySeq[g.RequestSeq]
		if w == nil {
			t.Errorf("emitted an exchange the recording does not have: %s", fmtX(g))
			continue
		}
		if seen[g.RequestSeq] {
			t.Errorf("emitted twice: %s", fmtX(g))
		}
		seen[g.RequestSeq] = true
		gh, wh := g.HTTP, w.HTTP
		if gh.Partial {
			partial++
		}
		var bad []string
		check := func(name string, ok, missing bool) {
			switch {
			case !ok && !missing:
				bad = append(bad, name+" wrong")
			case missing && !gh.Partial:
				bad = append(bad, name+" missing without Partial")
			}
		}
		str := func(name, g, w string) { check(name, g == w || g == "", g == "" && w != "") }
		str("method", gh.Method, wh.Method)
		str("path", gh.Path, wh.Path)
		str("host", gh.Host, wh.Host)
		str("user agent", gh.UserAgent, wh.UserAgent)
		str("traceparent", gh.TraceParent, wh.TraceParent)
		str("tracestate", gh.TraceState, wh.TraceState)
		str("scheme", gh.Scheme, wh.Scheme)
		check("status", gh.Status == wh.Status || gh.Status == 0, gh.Status == 0 && wh.Status != 0)
		check("grpc status", gh.GRPCStatus == wh.GRPCStatus || gh.GRPCStatus < 0, gh.GRPCStatus < 0 && wh.GRPCStatus >= 0)
		check("grpc", gh.GRPC == wh.GRPC || !gh.GRPC, !gh.GRPC && wh.GRPC)
		// Body sizes are -1 when unknown, which needs no Partial.
		if gh.RequestBodySize >= 0 && gh.RequestBodySize != wh.RequestBodySize ||
			gh.ResponseBodySize >= 0 && gh.ResponseBodySize != wh.ResponseBodySize {
			bad = append(bad, "body size wrong")
		}
		if g.Role != w.Role || g.Protocol != w.Protocol || g.Start != w.Start || g.RequestTID != w.RequestTID || gh.Version != "2" {
			bad = append(bad, "role, protocol, start or thread wrong")
		}
		if !gh.Partial && g.End != w.End {
			bad = append(bad, "end wrong without Partial")
		}
		if len(bad) > 0 {
			t.Errorf("%v:\n got  %s\n want %s", bad, fmtX(g), fmtX(*w))
		}
	}
	return partial
}

// TestMidConnection starts the capture after each prefix of every
// recording, both with the connection's role known (offsets continue from
// where the capture began) and unknown (offsets restart at 0): the HPACK
// state is unknown, so what is emitted may be Partial, never wrong.
func TestMidConnection(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		for _, role := range []conn.Role{conn.RoleServer, conn.RoleUnknown} {
			want := expect(t, cs, role)
			for from := 1; from < len(cs); from++ {
				segs := recording.Cut(cs, recording.Whole, nil)
				var base [2]int
				for _, s := range segs[:from] {
					if s.ToServer {
						base[1] += len(s.Data)
					} else {
						base[0] += len(s.Data)
					}
				}
				rest := append([]recording.Seg(nil), segs[from:]...)
				if role == conn.RoleUnknown {
					// A connection weft learns of from its data numbers
					// each direction from its first chunk.
					for i := range rest {
						d := 0
						if rest[i].ToServer {
							d = 1
						}
						rest[i].Off -= base[d]
					}
				}
				var stats Stats
				var got []protocols.Exchange
				t.Run(fmt.Sprintf("%s/%v/from-%d", f.name, role, from), func(t *testing.T) {
					got = runShifted(t, role, rest, base, Options{Stats: &stats})
					truthful(t, got, want)
					if stats.HPACKDesyncs.Load() == 0 {
						t.Errorf("a capture from mid-connection counted no HPACK desync: %v", statsMap(&stats))
					}
				})
			}
		}
	}
}

// runShifted is run for segments whose sequence numbers and TIDs are those
// of the original offsets: base is added back for them (role unknown
// feeds renumbered offsets).
func runShifted(t *testing.T, role conn.Role, segs []recording.Seg, base [2]int, opts Options) []protocols.Exchange {
	t.Helper()
	var got []protocols.Exchange
	p := collect(role, opts, &got)
	for _, s := range segs {
		// The segment as fed, numbered as at its original offset.
		orig := s
		if role == conn.RoleUnknown {
			d := 0
			if s.ToServer {
				d = 1
			}
			orig.Off += base[d]
		}
		cs := s.Segment(role)
		cs.Seq = orig.Segment(role).Seq
		p.Segment(&cs)
	}
	p.Close(recording.CloseTS)
	return got
}

// TestCaptureTruncated cuts every read to its first n bytes, as the
// kernel's per-syscall capture limit does, whatever the bytes are: frame
// headers and header blocks past the limit are lost, and with them the
// framing until a read starts with frames again.
func TestCaptureTruncated(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		want := expect(t, cs, conn.RoleServer)
		for _, limit := range []int{16, 100, 1000, 8192} {
			t.Run(fmt.Sprintf("%s/%d", f.name, limit), func(t *testing.T) {
				skip := recording.CaptureLimit(cs, limit).Skipped
				var stats Stats
				got := run(t, conn.RoleServer, recording.Cut(cs, recording.Whole, skip), Options{Stats: &stats})
				truthful(t, got, want)
				if limit == 8192 && f.name == "grpc-unary" && len(got) != len(want) {
					t.Errorf("small reads under the limit: %d exchanges, want %d", len(got), len(want))
				}
			})
		}
	}
}

// TestHeaderBlockLost loses the bytes of each header block in turn (a
// skip inside HEADERS or CONTINUATION): that direction's table is
// unknown from then on, later exchanges are Partial or true, and the
// framing is kept.
func TestHeaderBlockLost(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		want := expect(t, cs, conn.RoleServer)
		_, frames := oracle(t, cs)
		for d := range frames {
			for i, fr := range frames[d] {
				if !fr.headers {
					continue
				}
				t.Run(fmt.Sprintf("%s/dir%d/frame%d", f.name, d, i), func(t *testing.T) {
					lost := func(toServer bool, off int) bool {
						return toServer == (d == 1) && off >= fr.start+frameHeaderLen+1 && off < fr.end
					}
					var stats Stats
					got := run(t, conn.RoleServer, recording.Cut(cs, recording.Whole, lost), Options{Stats: &stats})
					truthful(t, got, want)
					if stats.FramingLost.Load() != 0 {
						t.Errorf("a skip inside a header block lost the framing: %v", statsMap(&stats))
					}
					if stats.HPACKDesyncs.Load() != 1 {
						t.Errorf("HPACK desyncs %d, want 1", stats.HPACKDesyncs.Load())
					}
					if fr.end-fr.start > frameHeaderLen+1 && stats.Partial.Load() == 0 {
						t.Errorf("the exchange whose block was lost is not Partial: %v", statsMap(&stats))
					}
				})
			}
		}
	}
}

// TestLimits runs the recordings under small bounds: oversized blocks,
// a table too small to hold the peers', few streams. What is emitted
// stays true and each loss is counted.
func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		count func(*Stats) uint64
	}{
		{"block-20", Options{MaxHeaderBlockBytes: 20}, func(s *Stats) uint64 { return s.OversizedBlocks.Load() }},
		{"table-100", Options{MaxTableSize: 100}, func(s *Stats) uint64 { return s.Partial.Load() }},
		{"streams-4", Options{MaxStreams: 4}, func(s *Stats) uint64 { return s.StreamsDropped.Load() }},
	} {
		for _, f := range []string{"grpc-concurrent", "go-h2c"} {
			t.Run(tc.name+"/"+f, func(t *testing.T) {
				cs := recording.Load(t, f)
				want := expect(t, cs, conn.RoleServer)
				stats := new(Stats)
				tc.opts.Stats = stats
				got := run(t, conn.RoleServer, recording.Cut(cs, recording.Whole, nil), tc.opts)
				truthful(t, got, want)
				if tc.count(stats) == 0 && !(tc.name == "streams-4" && f == "go-h2c") {
					t.Errorf("nothing counted: %v", statsMap(stats))
				}
			})
		}
	}
}
