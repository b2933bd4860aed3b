package postgres

import (
	"fmt"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols/recording"
)

// TestCaptureLimit loses every byte past the first limit of each read or
// write, headers included, as a capture limit does: framing is lost and
// found again, yet every operation still gives exactly one exchange, in
// order, right in all it says but what the lost bytes held: rows returned
// may be unknown (-1), and an execution whose request was lost has no
// statement text (its operation comes from the command tag). Each such
// exchange is counted as having an unknown outcome.
func TestCaptureLimit(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		for _, limit := range []int{512, 1024, 4096} {
			skip := recording.CaptureLimit(cs, limit).Skipped
			for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer} {
				t.Run(fmt.Sprintf("%s/%d/%v", f.name, limit, role), func(t *testing.T) {
					want := feed(t, role, recording.Cut(cs, recording.Whole, nil), Options{})
					var st Stats
					got := feed(t, role, recording.Cut(cs, recording.Whole, skip), Options{Stats: &st})
					if len(got) != len(want) {
						t.Fatalf("%d exchanges, want %d:\n%s", len(got), len(want), diffX(got, want))
					}
					unknown := 0
					for i := range got {
						g, w := *got[i].Postgres, *want[i].Postgres
						lostRows := g.Rows == -1 && w.Rows != -1
						lostText := g.RawQuery == "" && w.RawQuery != ""
						if lostRows || lostText {
							unknown++
						}
						if lostRows {
							g.Rows = w.Rows
						}
						if lostText {
							g.Query, g.RawQuery = w.Query, w.RawQuery
						}
						if g != w {
							t.Errorf("exchange %d:\n got  %s\n want %s", i, fmtPG(*got[i].Postgres), fmtPG(w))
						}
						if x := got[i]; x.End < x.Start || x.Start != want[i].Start && !lostText {
							t.Errorf("exchange %d: start, end = %d, %d; want start %d and an end after it", i, x.Start, x.End, want[i].Start)
						}
					}
					if uint64(unknown) > st.Unknown.Load() {
						t.Errorf("%d exchanges lost rows or text, but only %d were counted unknown", unknown, st.Unknown.Load())
					}
					if n := st.Unanswered.Load(); n != 0 {
						t.Errorf("%d exchanges counted unanswered, want none: the answers were lost, not missing", n)
					}
				})
			}
		}
	}
}
