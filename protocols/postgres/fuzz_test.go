package postgres

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// fuzzOpts are small bounds, so the fuzzer reaches them.
var fuzzOpts = Options{MaxQueryBytes: 64, MaxPending: 8, MaxStatements: 4, MaxStatementBytes: 600}

// FuzzParser feeds arbitrary bytes and skips to both directions and checks
// that the parser neither panics nor holds more than its bounds allow, and
// that what it emits is well formed.
//
// The input is a program: byte 0 picks the role; then each op is a byte
// whose bit 0 picks the direction, bit 1 a skip instead of data, and whose
// top 6 bits (times 7, plus one) give the length taken from what follows.
func FuzzParser(f *testing.F) {
	seed := func(role byte, parts ...[]byte) {
		b := []byte{role}
		for i, p := range parts {
			b = recording.AppendOps(b, p, conn.Direction(i%2))
		}
		f.Add(b)
	}
	seed(1, startup("a", "b"), authOK, query("SELECT 1"), join([][]byte{rowDesc(), row("1"), cc("SELECT 1"), rfq()}))
	seed(2, join([][]byte{parse("s", "SELECT $1"), bind("", "s", "x"), describe('P', ""), execute("", 0), syncMsg()}),
		join([][]byte{parseComplete(), bindComplete(), noData(), errResp("22012"), rfq()}))
	seed(0, rfq(), query("BEGIN"), cc("BEGIN"))
	seed(1, untyped(codeSSL, 0), []byte("N"), startup("a", ""), authOK)
	for _, name := range []string{"pgx-batch-error", "psql-multi", "pgbench-prepared", "psql-copy"} {
		b := []byte{1}
		for _, c := range recording.Load(f, name) {
			d := conn.Ingress
			if c.ToServer {
				d = conn.Egress
			}
			b = recording.AppendOps(b, c.Data, d)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		opts := fuzzOpts
		opts.Stats = new(Stats)
		info := &conn.Info{Role: conn.Role(in[0] % 3)}
		emitted := 0
		p := New(info, func(x *protocols.Exchange) {
			emitted++
			checkExchange(t, info, x)
		}, opts)
		recording.Ops(in, 37, func(s *conn.Segment) {
			p.Segment(s)
			checkBounds(t, p, opts)
		})
		p.Close(1 << 40)
		if got := opts.Stats.Exchanges.Load(); got != uint64(emitted) {
			t.Fatalf("stats count %d exchanges, sink saw %d", got, emitted)
		}
		if p.q.n != 0 {
			t.Fatalf("%d ops left after close", p.q.n)
		}
	})
}

func checkExchange(t *testing.T, info *conn.Info, x *protocols.Exchange) {
	g := x.Postgres
	switch {
	case x.Conn != info || x.Protocol != protocols.Postgres || g == nil || x.HTTP != nil:
		t.Fatalf("bad exchange header %+v", x)
	case info.Role != conn.RoleUnknown && x.Role != info.Role:
		t.Fatalf("role %v on a %v connection", x.Role, info.Role)
	case x.End < x.Start:
		t.Fatalf("end %d before start %d", x.End, x.Start)
	case g.Rows < -1 || g.BatchSize == 1 || g.BatchSize < 0:
		t.Fatalf("rows %d batch %d", g.Rows, g.BatchSize)
	case g.Failed && g.NoResponse:
		t.Fatalf("failed without a response")
	}
	for _, s := range []string{g.Operation, g.Query, g.RawQuery, g.Database, g.User, g.Application, g.SQLState} {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in %+v", g)
		}
	}
	// The statement text is bounded (a replacement character may stand
	// for an invalid byte: 3 bytes for 1).
	if len(g.RawQuery) > 3*fuzzOpts.MaxQueryBytes || len(g.Query) > 3*fuzzOpts.MaxQueryBytes {
		t.Fatalf("statement text of %d bytes, limit %d", len(g.RawQuery), fuzzOpts.MaxQueryBytes)
	}
	if strings.ContainsRune(g.Operation, ' ') && !strings.HasPrefix(g.Operation, "BATCH") && g.Query != "" {
		t.Fatalf("operation %q from text has a space", g.Operation)
	}
}

// checkBounds fails when the parser holds more than its options allow.
func checkBounds(t *testing.T, p *Parser, opts Options) {
	for d := range p.sides {
		if c := cap(p.sides[d].buf); c > maxStartupLen && c > opts.MaxQueryBytes+maxNameLen+2 {
			t.Fatalf("direction %d buffers %d bytes", d, c)
		}
	}
	if p.q.n > opts.MaxPending || len(p.q.buf) > opts.MaxPending {
		t.Fatalf("queue holds %d in %d slots, limit %d", p.q.n, len(p.q.buf), opts.MaxPending)
	}
	if len(p.stmts.named) > opts.MaxStatements || p.stmts.bytes > opts.MaxStatementBytes {
		t.Fatalf("%d statements in %d bytes, limits %d and %d", len(p.stmts.named), p.stmts.bytes, opts.MaxStatements, opts.MaxStatementBytes)
	}
	if len(p.stmts.portals) > maxPortals {
		t.Fatalf("%d portals, limit %d", len(p.stmts.portals), maxPortals)
	}
}

// FuzzSanitize checks that sanitising never panics, keeps text valid, and
// leaves no digit outside words and no quote-delimited literal.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT 'a''b', E'\\'', $$x$$, $t$y$t$, 1.5e3, x1 -- c\n/* d */", "U&'x' X'ff' \"q\"\"\" $1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		s := Sanitize(q)
		if utf8.ValidString(q) && !utf8.ValidString(s) {
			t.Fatalf("Sanitize(%q) = %q is not valid UTF-8", q, s)
		}
		if len(s) > len(q)+1 {
			t.Fatalf("Sanitize(%q) = %q grew", q, s)
		}
		if Sanitize(s) != s && !strings.ContainsAny(q, "\"$") {
			t.Fatalf("Sanitize is not idempotent on %q: %q then %q", q, s, Sanitize(s))
		}
		_ = Keyword(q)
	})
}
