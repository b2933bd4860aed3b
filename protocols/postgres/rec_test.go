package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// feed feeds segments to a parser seen from role and returns what it
// emitted (copies). RoleUnknown is fed as the server would see it.
func feed(t testing.TB, role conn.Role, segs []recording.Seg, opts Options) []protocols.Exchange {
	info := &conn.Info{Role: role}
	var got []protocols.Exchange
	p := New(info, func(x *protocols.Exchange) {
		if x.Conn != info {
			t.Errorf("exchange on another connection: %p, want %p", x.Conn, info)
		}
		c := *x
		pg := *x.Postgres
		c.Postgres = &pg
		c.Conn = nil
		got = append(got, c)
	}, opts)
	recording.Feed(role, segs, p.Segment)
	p.Close(recording.CloseTS)
	return got
}

func fmtX(x protocols.Exchange) string {
	return fmt.Sprintf("role=%v start=%d end=%d seq=%d tid=%d %s", x.Role, x.Start, x.End, x.RequestSeq, x.RequestTID, fmtPG(*x.Postgres))
}

func fmtPG(g protocols.PostgresInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q rows=%d", g.Operation, g.Query, g.Rows)
	if g.Failed {
		b.WriteString(" failed")
	}
	if g.SQLState != "" {
		b.WriteString(" sqlstate=" + g.SQLState)
	}
	if g.BatchSize != 0 {
		fmt.Fprintf(&b, " batch=%d", g.BatchSize)
	}
	if g.NoResponse {
		b.WriteString(" no-response")
	}
	fmt.Fprintf(&b, " db=%q user=%q app=%q", g.Database, g.User, g.Application)
	if g.RawQuery != g.Query {
		fmt.Fprintf(&b, " raw=%q", g.RawQuery)
	}
	return b.String()
}
