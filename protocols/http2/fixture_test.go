package http2

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// fixture is a recording and what the tests know of it without the
// oracle: each exchange as "METHOD PATH STATUS GRPC-STATUS", in the
// oracle's order, so a wrong oracle fails too.
type fixture struct {
	name string
	want []string
}

const (
	say   = "POST /weft.test.Echo/Say 200 "
	tp    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	goUA  = "Go-http-client/2.0"
	curUA = "curl/7.88.1"
)

var fixtures = []fixture{
	{"grpc-unary", []string{say + "0", say + "5", say + "13", say + "0", "POST /weft.test.Echo/Nope 200 12"}},
	{"grpc-stream", []string{"POST /weft.test.Echo/Count 200 0", say + "0"}},
	{"grpc-concurrent", nil}, // checked by TestConcurrentFixture
	{"grpc-large", []string{say + "0", say + "0"}},
	{"go-h2c", []string{"GET /hello 200 -1", "POST /upload 201 -1", "GET /missing 404 -1", "GET /trailers 200 -1", "HEAD /hello 200 -1"}},
	{"go-h2c-small-table", []string{"GET /hello 200 -1", "POST /upload 201 -1", "GET /missing 404 -1", "GET /trailers 200 -1", "HEAD /hello 200 -1"}},
	{"curl-h2c", []string{"GET /hello 200 -1"}},
	{"curl-h2c-big", []string{"GET /big 200 -1"}},
}

func summary(h *protocols.HTTP) string {
	return fmt.Sprintf("%s %s %d %d", h.Method, h.Path, h.Status, h.GRPCStatus)
}

// expect turns the oracle's exchanges into what a parser for role emits.
func expect(t *testing.T, cs []recording.Chunk, role conn.Role) []protocols.Exchange {
	t.Helper()
	exs, _ := oracle(t, cs)
	toServer, _ := recording.Streams(cs)
	xrole := role
	if role == conn.RoleUnknown {
		xrole = conn.RoleServer
	}
	var want []protocols.Exchange
	for _, x := range exs {
		rk := toServer.ChunkAt(x.reqStart)
		start := recording.ChunkEnd(rk)
		if xrole == conn.RoleClient {
			start = recording.ChunkStart(rk)
		}
		h := x.http
		want = append(want, protocols.Exchange{
			Role: xrole, Protocol: protocols.HTTP2,
			Start: start, End: recording.ChunkEnd(x.endK),
			RequestSeq: recording.ISNToServer + uint32(x.reqStart), RequestTID: recording.ChunkTID(rk),
			HTTP: &h,
		})
	}
	return want
}

func fmtX(x protocols.Exchange) string {
	return fmt.Sprintf("role=%v proto=%v start=%d end=%d seq=%d tid=%d %+v", x.Role, x.Protocol, x.Start, x.End, x.RequestSeq, x.RequestTID, *x.HTTP)
}

// diff compares exchanges as sets ordered by request sequence number: two
// streams that end in one segment may be emitted in either order.
func diff(got, want []protocols.Exchange) string {
	sortX := func(x []protocols.Exchange) []protocols.Exchange {
		y := append([]protocols.Exchange(nil), x...)
		sort.SliceStable(y, func(i, j int) bool {
			return y[i].RequestSeq-recording.ISNToServer < y[j].RequestSeq-recording.ISNToServer
		})
		return y
	}
	g, w := sortX(got), sortX(want)
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		var gs, ws string
		if i < len(g) {
			gs = fmtX(g[i])
		}
		if i < len(w) {
			ws = fmtX(w[i])
		}
		if gs != ws {
			fmt.Fprintf(&b, "exchange %d:\n got  %s\n want %s\n", i, gs, ws)
		}
	}
	return b.String()
}

func TestOracleMatchesTable(t *testing.T) {
	for _, f := range fixtures {
		if f.want == nil {
			continue
		}
		exs, _ := oracle(t, recording.Load(t, f.name))
		var got []string
		for _, x := range exs {
			got = append(got, summary(&x.http))
		}
		if strings.Join(got, "\n") != strings.Join(f.want, "\n") {
			t.Errorf("%s: oracle found\n%s\nthe table says\n%s", f.name, strings.Join(got, "\n"), strings.Join(f.want, "\n"))
		}
	}
}

// TestFixtures replays every recording, cut and partly lost in many ways
// that keep every header block and frame header, and requires exactly the
// oracle's exchanges.
func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		_, frames := oracle(t, cs)
		// Which bytes are DATA payload, which a capture may lose at no
		// cost.
		body := recording.NewMask(cs)
		for d := range frames {
			for _, fr := range frames[d] {
				for o := fr.body0; o < fr.body1; o++ {
					body[d][o] = true
				}
			}
		}
		// A capture limit: body bytes past the first 256 of each read.
		capped := body.And(recording.CaptureLimit(cs, 256))
		r := rand.New(rand.NewPCG(2, uint64(len(f.name))))
		lost := body.RandomLoss(r)
		feeds := []struct {
			name  string
			split recording.Split
			skip  func(bool, int) bool
		}{
			{"whole", recording.Whole, nil},
			{"bytewise", recording.Bytewise, nil},
			{"random1", recording.RandomSplit(r), nil},
			{"random2", recording.RandomSplit(r), nil},
			{"bodies-skipped", recording.Whole, body.Skipped},
			{"capture-limit", recording.Whole, capped.Skipped},
			{"random-loss", recording.RandomSplit(r), lost.Skipped},
		}
		for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer, conn.RoleUnknown} {
			want := expect(t, cs, role)
			for _, fd := range feeds {
				t.Run(fmt.Sprintf("%s/%v/%s", f.name, role, fd.name), func(t *testing.T) {
					var stats Stats
					got := run(t, role, recording.Cut(cs, fd.split, fd.skip), Options{Stats: &stats})
					if d := diff(got, want); d != "" {
						t.Error(d)
					}
					bad := stats.Malformed.Load() + stats.HPACKDesyncs.Load() + stats.FramingLost.Load() +
						stats.Orphans.Load() + stats.Unanswered.Load() + stats.Partial.Load() + stats.StreamsDropped.Load()
					if bad != 0 {
						t.Errorf("counted trouble on a clean feed: %+v", statsMap(&stats))
					}
					if n := stats.Exchanges.Load(); n != uint64(len(got)) {
						t.Errorf("stats count %d exchanges, sink saw %d", n, len(got))
					}
				})
			}
		}
	}
}

// TestFixturesEverySplit cuts each small recording into two segments at
// every offset of every read.
func TestFixturesEverySplit(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		if recording.Size(cs) > 8000 {
			continue
		}
		want := expect(t, cs, conn.RoleServer)
		for k := range cs {
			for at := 1; at < len(cs[k].Data); at++ {
				got := run(t, conn.RoleServer, recording.Cut(cs, recording.SplitAt(k, at), nil), Options{})
				if d := diff(got, want); d != "" {
					t.Fatalf("%s: chunk %d split at %d:\n%s", f.name, k, at, d)
				}
			}
		}
	}
}

func statsMap(s *Stats) map[string]uint64 {
	return map[string]uint64{
		"exchanges": s.Exchanges.Load(), "partial": s.Partial.Load(), "unanswered": s.Unanswered.Load(),
		"desync": s.HPACKDesyncs.Load(), "resync": s.HPACKResyncs.Load(),
		"framing_lost": s.FramingLost.Load(), "framing_resync": s.FramingResyncs.Load(),
		"oversized": s.OversizedBlocks.Load(), "malformed": s.Malformed.Load(),
		"dropped": s.StreamsDropped.Load(), "orphans": s.Orphans.Load(),
	}
}
