package postgres

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// fixture is a recording and, in order, the exchanges it must give
// (fmtPG of each).
type fixture struct {
	name string
	want []string
	// skipped and encrypted are the counts the recording must give
	// (operations the server skipped after an error; a TLS handover).
	skipped, encrypted uint64
}

const (
	psqlConn  = ` db="weft" user="postgres" app="weft-fixture"`
	pgxConn   = ` db="weft" user="postgres" app="weft-pgx"`
	benchConn = ` db="weft" user="postgres" app="pgbench"`
)

// pgbenchTx is the TPC-B-like transaction pgbench ran: its statements
// with their literals replaced, and the ones it had.
func pgbenchTx(prepared bool, aid, delta, tid string) []string {
	p := func(simple, param string) string {
		if prepared {
			return param
		}
		return simple
	}
	raw := func(s string) string {
		if prepared {
			return ""
		}
		return fmt.Sprintf(" raw=%q", s)
	}
	neg := strings.HasPrefix(delta, "-")
	q := "?"
	if neg {
		q = "-?"
	}
	return []string{
		`BEGIN "BEGIN;" rows=-1` + benchConn,
		`UPDATE "` + p("UPDATE pgbench_accounts SET abalance = abalance + "+q+" WHERE aid = ?;", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;") + `" rows=-1` + benchConn +
			raw("UPDATE pgbench_accounts SET abalance = abalance + "+delta+" WHERE aid = "+aid+";"),
		`SELECT "` + p("SELECT abalance FROM pgbench_accounts WHERE aid = ?;", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;") + `" rows=1` + benchConn +
			raw("SELECT abalance FROM pgbench_accounts WHERE aid = "+aid+";"),
		`UPDATE "` + p("UPDATE pgbench_tellers SET tbalance = tbalance + "+q+" WHERE tid = ?;", "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;") + `" rows=-1` + benchConn +
			raw("UPDATE pgbench_tellers SET tbalance = tbalance + "+delta+" WHERE tid = "+tid+";"),
		`UPDATE "` + p("UPDATE pgbench_branches SET bbalance = bbalance + "+q+" WHERE bid = ?;", "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;") + `" rows=-1` + benchConn +
			raw("UPDATE pgbench_branches SET bbalance = bbalance + "+delta+" WHERE bid = 1;"),
		`INSERT "` + p("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, "+q+", CURRENT_TIMESTAMP);", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);") + `" rows=-1` + benchConn +
			raw("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ("+tid+", 1, "+aid+", "+delta+", CURRENT_TIMESTAMP);"),
		`END "END;" rows=-1` + benchConn,
	}
}

var fixtures = []fixture{
	{name: "psql-simple", want: []string{
		`SELECT "SELECT id, name FROM items WHERE id <= ? AND name <> ? ORDER BY id;" rows=3` + psqlConn + ` raw="SELECT id, name FROM items WHERE id <= 3 AND name <> 'nobody' ORDER BY id;"`,
		`INSERT "INSERT INTO items (id, name, qty) VALUES (?, ?, ?);" rows=-1` + psqlConn + ` raw="INSERT INTO items (id, name, qty) VALUES (100, 'it''s new', 42);"`,
		`UPDATE "UPDATE items SET qty = qty + ? WHERE id IN (?, ?, ?);" rows=-1` + psqlConn + ` raw="UPDATE items SET qty = qty + 1 WHERE id IN (1, 2, 3);"`,
		`SELECT "SELECT ?/?;" rows=-1 failed sqlstate=22012` + psqlConn + ` raw="SELECT 1/0;"`,
		`SELECT "SELECT * FROM no_such_table;" rows=-1 failed sqlstate=42P01` + psqlConn,
		`COMMIT "COMMIT;" rows=-1 sqlstate=25P01` + psqlConn, // WARNING: there is no transaction in progress
		`BEGIN "BEGIN;" rows=-1` + psqlConn,
		`DELETE "DELETE FROM items WHERE id = ?;" rows=-1` + psqlConn + ` raw="DELETE FROM items WHERE id = 100;"`,
		`SELECT "SELECT repeat(?, ?) AS big;" rows=1` + psqlConn + ` raw="SELECT repeat('x', 20000) AS big;"`,
		`SELECT "SELECT g, md5(g::text) FROM generate_series(?, ?) g;" rows=3000` + psqlConn + ` raw="SELECT g, md5(g::text) FROM generate_series(1, 3000) g;"`,
		`COMMIT "COMMIT;" rows=-1` + psqlConn,
	}},
	{name: "psql-multi", want: []string{
		`BATCH "SELECT ? AS one; SELECT ? AS two, ?; UPDATE items SET qty = qty + ? WHERE id < ?" rows=2 batch=3` + psqlConn +
			` raw="SELECT 1 AS one; SELECT 2 AS two, 'two'; UPDATE items SET qty = qty + 1 WHERE id < 3"`,
	}},
	{name: "psql-copy", want: []string{
		`CREATE "CREATE TEMP TABLE t (a int, b text);" rows=-1` + psqlConn,
		`COPY "COPY t FROM STDIN;" rows=-1` + psqlConn,
		`COPY "COPY t TO STDOUT;" rows=3` + psqlConn,
		`COPY "COPY (SELECT g, repeat(?, ?) FROM generate_series(?, ?) g) TO STDOUT;" rows=200` + psqlConn +
			` raw="COPY (SELECT g, repeat('y', 100) FROM generate_series(1, 200) g) TO STDOUT;"`,
	}},
	{name: "psql-tls", encrypted: 1},
	{name: "pgx-extended", want: []string{
		`SELECT "SELECT name, qty FROM items WHERE id = $1" rows=1` + pgxConn,
		`SELECT "SELECT name, qty FROM items WHERE id = $1" rows=1` + pgxConn,
		`SELECT "SELECT name, qty FROM items WHERE id = $1" rows=1` + pgxConn,
		`INSERT "INSERT INTO items (id, name, qty) VALUES ($1, $2, ?)" rows=-1` + pgxConn + ` raw="INSERT INTO items (id, name, qty) VALUES ($1, $2, 7)"`,
		`UPDATE "UPDATE items SET qty = qty * ? WHERE id = $1" rows=-1` + pgxConn + ` raw="UPDATE items SET qty = qty * 2 WHERE id = $1"`,
		`SELECT "SELECT count(*) FROM items WHERE qty > ?" rows=1` + pgxConn + ` raw="SELECT count(*) FROM items WHERE qty > 5"`,
		`DELETE "DELETE FROM items WHERE id = $1" rows=-1` + pgxConn,
		`SELECT "SELECT length($1::text)" rows=1` + pgxConn,
		`SELECT "SELECT g, repeat(?, ?) FROM generate_series(?, ?) g" rows=2000` + pgxConn + ` raw="SELECT g, repeat('r', 50) FROM generate_series(1, 2000) g"`,
		`SELECT "SELECT ?, ?, ? WHERE $1::int > ?" rows=1` + pgxConn + ` raw="SELECT 'literal', 42, 4.5e3 WHERE $1::int > 0"`,
	}},
	{name: "pgx-batch-error", skipped: 1, want: []string{
		`SELECT "SELECT ?" rows=1` + pgxConn + ` raw="SELECT 1"`,
		`INSERT "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)" rows=-1 failed sqlstate=23505` + pgxConn + ` raw="INSERT INTO items (id, name, qty) VALUES (1, 'dup', 0)"`,
		// SELECT 3 never ran: the server skipped it after the error.
		`SELEKT "SELEKT ?" rows=-1 failed sqlstate=42601` + pgxConn + ` raw="SELEKT 1"`, // the Parse failed
		`SELECT "SELECT ?" rows=1` + pgxConn + ` raw="SELECT 2"`,
	}},
	{name: "pgx-scram", want: []string{
		`SELECT "SELECT count(*) FROM items" rows=1 db="weft" user="scram" app="weft-pgx"`,
	}},
	{name: "pgbench-simple", want: concat(
		pgbenchTx(false, "66118", "575", "5"),
		pgbenchTx(false, "88360", "2466", "4"),
		pgbenchTx(false, "81912", "-2804", "9"),
	)},
	{name: "pgbench-prepared", want: concat(
		pgbenchTx(true, "", "", ""), pgbenchTx(true, "", "", ""), pgbenchTx(true, "", "", ""),
	)},
}

func concat(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// message is one message as the oracle frames it.
type message struct {
	typ        byte // 0 for startup-phase messages and the one-byte SSL answer
	start, end int
}

// oracle frames both directions of a recording independently of the
// parser: plain length framing, each message decoded with pgproto3 to
// prove the recording is what the table says. It stops at a TLS
// handover.
func oracle(t *testing.T, toServer, toClient []byte) (fromClient, fromServer []message) {
	t.Helper()
	off, ssl := 0, 0
	for off+8 <= len(toServer) {
		n := int(binary.BigEndian.Uint32(toServer[off:]))
		code := binary.BigEndian.Uint32(toServer[off+4:])
		fromClient = append(fromClient, message{0, off, off + n})
		off += n
		if code == codeSSL {
			ssl++
			if len(toClient) > 0 && toClient[0] == 'S' {
				return fromClient, []message{{0, 0, 1}} // TLS follows
			}
			continue
		}
		var sm pgproto3.StartupMessage
		if err := sm.Decode(toServer[off-n+4 : off]); err != nil {
			t.Fatalf("oracle: startup message: %v", err)
		}
		break
	}
	fromClient = append(fromClient, frame(t, toServer, off, false)...)
	soff := 0
	if ssl > 0 {
		fromServer = append(fromServer, message{0, 0, 1})
		soff = 1
	}
	return fromClient, append(fromServer, frame(t, toClient, soff, true)...)
}

func frame(t *testing.T, b []byte, off int, backend bool) []message {
	var out []message
	for off < len(b) {
		if off+5 > len(b) {
			t.Fatalf("oracle: message header at %d runs past the end", off)
		}
		n := int(binary.BigEndian.Uint32(b[off+1:]))
		end := off + 1 + n
		if end > len(b) {
			t.Fatalf("oracle: %c message at %d runs past the end", b[off], off)
		}
		decodeCheck(t, b[off], b[off+5:end], backend, off)
		out = append(out, message{b[off], off, end})
		off = end
	}
	return out
}

// decodeCheck decodes a body with pgproto3's message of that type.
func decodeCheck(t *testing.T, typ byte, body []byte, backend bool, off int) {
	var m interface{ Decode([]byte) error }
	if backend {
		switch typ {
		case 'C':
			m = &pgproto3.CommandComplete{}
		case 'D':
			m = &pgproto3.DataRow{}
		case 'E':
			m = &pgproto3.ErrorResponse{}
		case 'N':
			m = &pgproto3.NoticeResponse{}
		case 'T':
			m = &pgproto3.RowDescription{}
		case 'Z':
			m = &pgproto3.ReadyForQuery{}
		}
	} else {
		switch typ {
		case 'Q':
			m = &pgproto3.Query{}
		case 'P':
			m = &pgproto3.Parse{}
		case 'B':
			m = &pgproto3.Bind{}
		case 'E':
			m = &pgproto3.Execute{}
		case 'D':
			m = &pgproto3.Describe{}
		}
	}
	if m != nil {
		if err := m.Decode(body); err != nil {
			t.Fatalf("oracle: %c message at %d: %v", typ, off, err)
		}
	}
}

// opaque says whether the parser must never need a message's body bytes
// beyond the first keep: the parts a capture limit or lost events may
// take away without changing any exchange.
func opaque(m message, backend bool) (from int, ok bool) {
	body := m.start + 5
	switch {
	case m.typ == 0:
		return 0, false
	case backend && (m.typ == 'D' || m.typ == 'd' || m.typ == 'T' || m.typ == 't' || m.typ == 'S' || m.typ == 'R' || m.typ == 'K'):
		return body, true
	case !backend && (m.typ == 'd' || m.typ == 'p'):
		return body, true
	case !backend && m.typ == 'B':
		// Parameters after the names (at most two 1 KiB names are kept).
		return body + 2*(maxNameLen+1), true
	}
	return 0, false
}

func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		cs := recording.Load(t, f.name)
		toServer, toClient := recording.Streams(cs)
		fromClient, fromServer := oracle(t, toServer.Data, toClient.Data)
		// Which stream bytes are opaque.
		op := recording.NewMask(cs)
		for i, ms := range [][]message{fromServer, fromClient} {
			for _, m := range ms {
				if from, ok := opaque(m, i == 0); ok {
					for o := from; o < m.end; o++ {
						op[i][o] = true
					}
				}
			}
		}
		// A capture limit: bytes past the first 100 of each read are lost
		// where they are opaque.
		capped := op.And(recording.CaptureLimit(cs, 100))
		r := rand.New(rand.NewPCG(7, uint64(len(f.name))))
		lost := op.RandomLoss(r)
		randomSplit := recording.Pieces(func() int { return 1 + r.IntN(300) })
		feeds := []struct {
			name  string
			split recording.Split
			skip  func(bool, int) bool
			reads bool // segments start where the real reads started
		}{
			{"whole", recording.Whole, nil, true},
			{"bytewise", recording.Bytewise, nil, false},
			{"random1", randomSplit, nil, false},
			{"random2", randomSplit, nil, false},
			{"opaque-skipped", recording.Whole, op.Skipped, true},
			{"capture-limit", recording.Whole, capped.Skipped, true},
			{"random-loss", randomSplit, lost.Skipped, false},
		}
		for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer, conn.RoleUnknown} {
			var ref []protocols.Exchange
			for _, fd := range feeds {
				if role == conn.RoleUnknown && !fd.reads {
					continue // a role is inferred from a whole read or write
				}
				t.Run(fmt.Sprintf("%s/%v/%s", f.name, role, fd.name), func(t *testing.T) {
					var st Stats
					got := feed(t, role, recording.Cut(cs, fd.split, fd.skip), Options{Stats: &st})
					if fd.name == "whole" {
						ref = got
						checkTable(t, f, got)
						checkTiming(t, role, got, toServer, toClient)
					} else if d := diffX(got, ref); d != "" {
						t.Errorf("differs from the whole-read feed:\n%s", d)
					}
					if n := st.Malformed.Load() + st.Desyncs.Load() + st.Orphans.Load() + st.Unknown.Load() + st.Unanswered.Load() + st.Overflows.Load() + st.Unprepared.Load(); n != 0 {
						t.Errorf("counted %d malformed/desync/orphan/unknown/unanswered/overflow/unprepared, want none", n)
					}
					if st.Skipped.Load() != f.skipped || st.Encrypted.Load() != f.encrypted {
						t.Errorf("skipped, encrypted = %d, %d; want %d, %d", st.Skipped.Load(), st.Encrypted.Load(), f.skipped, f.encrypted)
					}
					if st.Exchanges.Load() != uint64(len(got)) {
						t.Errorf("counted %d exchanges, emitted %d", st.Exchanges.Load(), len(got))
					}
				})
			}
		}
	}
}

func checkTable(t *testing.T, f fixture, got []protocols.Exchange) {
	t.Helper()
	for i := range max(len(got), len(f.want)) {
		var g, w string
		if i < len(got) {
			g = fmtPG(*got[i].Postgres)
		}
		if i < len(f.want) {
			w = f.want[i]
		}
		if g != w {
			t.Errorf("exchange %d:\n got  %s\n want %s", i, g, w)
		}
	}
}

// checkTiming checks each exchange's start, thread and sequence number
// against the chunk its request's first byte came in, and its end against
// a chunk from the server.
func checkTiming(t *testing.T, role conn.Role, got []protocols.Exchange, toServer, toClient recording.Stream) {
	t.Helper()
	xrole := role
	if role == conn.RoleUnknown {
		xrole = conn.RoleServer // feed sends unknown roles as the server sees them
	}
	for i, x := range got {
		off := int(x.RequestSeq - recording.ISNToServer)
		if off < 0 || off >= len(toServer.Data) {
			t.Errorf("exchange %d: request sequence number %d is outside the client's stream", i, x.RequestSeq)
			continue
		}
		k := toServer.ChunkAt(off)
		start := recording.ChunkEnd(k)
		if xrole == conn.RoleClient {
			start = recording.ChunkStart(k)
		}
		if x.Role != xrole || x.Start != start || x.RequestTID != recording.ChunkTID(k) || x.Protocol != protocols.Postgres {
			t.Errorf("exchange %d: role %v start %d tid %d protocol %v; want %v %d %d postgres (request at offset %d, chunk %d)",
				i, x.Role, x.Start, x.RequestTID, x.Protocol, xrole, start, recording.ChunkTID(k), off, k)
		}
		found := false
		for _, kk := range toClient.Index {
			found = found || recording.ChunkEnd(kk) == x.End
		}
		if !found || x.End < x.Start {
			t.Errorf("exchange %d: end %d is not the end of a server chunk after its start %d", i, x.End, x.Start)
		}
	}
}

func diffX(got, want []protocols.Exchange) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = fmtX(got[i])
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
