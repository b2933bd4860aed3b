package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
)

func TestLooksLikePostgres(t *testing.T) {
	for _, c := range []struct {
		name            string
		b               []byte
		front, backward bool
	}{
		{"startup packet", startup("alice", "shop"), true, false},
		{"startup packet, first bytes only", startup("alice", "shop")[:20], true, false},
		{"ssl request", untyped(codeSSL, 0), true, false},
		{"gssenc request", untyped(codeGSSENC, 0), true, false},
		{"cancel request", untyped(codeCancel, 8), true, false},
		{"query", query("SELECT 1"), true, false},
		{"parse bind execute sync", join([][]byte{parse("", "SELECT $1"), bind("", "", "7"), execute("", 0), syncMsg()}), true, false},
		{"bind cut short", bind("", "s1", "a long parameter value")[:12], false, false},
		{"ready for query", rfq(), false, true},
		{"rows, command complete", join([][]byte{rowDesc(), row("1"), cc("SELECT 1"), rfq()}), false, true},
		{"authentication", enc(&pgproto3.AuthenticationOk{}), false, true},
		{"error", errResp("42P01"), false, true},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, false},
		{"http/2 preface", []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), false, false},
		{"tls client hello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false, false},
		{"dns over tcp", []byte("\x00\x1d\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"), false, false},
		{"redis", []byte("*1\r\n$4\r\nPING\r\n"), false, false},
		{"query with a NUL inside", []byte("Q\x00\x00\x00\x0aSE\x00LE\x00"), false, false},
		{"startup with a bad version", untyped(4<<16, 8), false, false},
		{"startup params not terminated", append(untyped(codeProtocol30, 6), "user\x00x"...), false, false},
		{"empty", nil, false, false},
		{"one byte", []byte("Q"), false, false},
	} {
		f, b := LooksLikePostgres(c.b)
		if f != c.front || b != c.backward {
			t.Errorf("%s: LooksLikePostgres = %v, %v; want %v, %v", c.name, f, b, c.front, c.backward)
		}
	}
	for _, b := range [][]byte{startup("a", "b"), join([][]byte{rowDesc(), row("1"), cc("SELECT 1"), rfq()})} {
		if n := testing.AllocsPerRun(100, func() { LooksLikePostgres(b) }); n != 0 {
			t.Errorf("LooksLikePostgres allocates %v times, want 0", n)
		}
	}
}

func TestFindStart(t *testing.T) {
	p := New(&conn.Info{Role: conn.RoleClient}, nil, Options{}) // ingress is the server's
	msgs := join([][]byte{row("1"), row("2"), cc("SELECT 2"), rfq()})
	for _, c := range []struct {
		name string
		b    []byte
		want int
	}{
		{"at the start", msgs, 0},
		{"after a row's tail", append([]byte("ail of a row\x00\x00"), msgs...), 14},
		{"one message at the very end", append([]byte("xxxxx"), rfq()...), 5},
		{"one message then more of something", append(append([]byte("xxxxx"), rfq()...), 'D'), -1},
		{"nothing", []byte("just some text without messages"), -1},
	} {
		if got := p.findStart(conn.Ingress, c.b); got != c.want {
			t.Errorf("%s: findStart = %d, want %d", c.name, got, c.want)
		}
	}
}
