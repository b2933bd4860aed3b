package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

func TestTiming(t *testing.T) {
	for _, role := range []conn.Role{conn.RoleClient, conn.RoleServer} {
		t.Run(role.String(), func(t *testing.T) {
			h := newHarness(t, role, Options{})
			h.connect()
			q := h.req(query("SELECT 1"))
			r1 := h.resp(rowDesc(), row("1"))
			e1 := h.resp(cc("SELECT 1"), rfq())
			// An extended run split over two writes: the Execute's
			// exchange starts with the Bind.
			b := h.req(bind("", ""), describe('P', ""))
			h.req(execute("", 0), syncMsg())
			h.resp(bindComplete(), noData())
			e2 := h.resp(cc("SET"), rfq())
			// The execution's answer starts after the Describe's.
			h.p.Close(1 << 40)
			h.want("SELECT SELECT ? rows=1; SET  rows=-1; ")
			if len(h.got) != 2 {
				return
			}
			for i, c := range []struct{ req, first, end *conn.Segment }{{q, r1, e1}, {b, e2, e2}} {
				x := h.got[i]
				start := c.req.Start
				if role == conn.RoleServer {
					start = c.req.End
				}
				if x.Start != start || x.End != c.end.End || x.RequestSeq != c.req.Seq || x.RequestTID != c.req.TID || x.Role != role || x.Conn != h.info || x.Protocol != protocols.Postgres {
					t.Errorf("exchange %d: %s conn %p protocol %v; want start %d end %d seq %d tid %d role %v", i, fmtX(x), x.Conn, x.Protocol, start, c.end.End, c.req.Seq, c.req.TID, role)
				}
				if x.ResponseTID != c.first.TID {
					t.Errorf("exchange %d: response thread %d, want %d", i, x.ResponseTID, c.first.TID)
				}
				if x.Postgres.Database != "shop" || x.Postgres.User != "alice" {
					t.Errorf("exchange %d: database %q user %q, want shop alice", i, x.Postgres.Database, x.Postgres.User)
				}
			}
			h.stat("unprepared", h.stats.Unprepared.Load(), 1) // the unnamed statement was never parsed
		})
	}
}

func TestStartup(t *testing.T) {
	t.Run("ssl refused, plaintext continues", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.req(untyped(codeSSL, 0))
		h.resp([]byte("N"))
		h.req(startup("bob", "")) // no database: the server uses the user's name
		h.resp(authOK)
		h.req(query("SELECT 2"))
		h.resp(rowDesc(), row("2"), cc("SELECT 1"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=1; ")
		if len(h.got) == 1 && h.got[0].Postgres.Database != "bob" {
			t.Errorf("database %q, want the user's name", h.got[0].Postgres.Database)
		}
	})
	t.Run("gssenc then ssl refused", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.req(untyped(codeGSSENC, 0))
		h.resp([]byte("N"))
		h.req(untyped(codeSSL, 0))
		h.resp([]byte("N"))
		h.connect()
		h.req(query("BEGIN"))
		h.resp(cc("BEGIN"), rfq())
		h.p.Close(1)
		h.want("BEGIN BEGIN rows=-1; ")
	})
	for _, answer := range []string{"S", "G"} {
		t.Run("encrypted "+answer, func(t *testing.T) {
			h := newHarness(t, conn.RoleClient, Options{})
			code := uint32(codeSSL)
			if answer == "G" {
				code = codeGSSENC
			}
			h.req(untyped(code, 0))
			h.resp([]byte(answer))
			h.req([]byte("\x16\x03\x01\x00\x05hello"))
			h.resp(query("looks like a query but is TLS"))
			h.p.Close(1)
			h.want("")
			h.stat("encrypted", h.stats.Encrypted.Load(), 1)
			h.stat("malformed", h.stats.Malformed.Load(), 0)
		})
	}
	t.Run("client hello before the answer", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.req(untyped(codeSSL, 0))
		h.req([]byte("\x16\x03\x01\x02\x00\x01"))
		h.resp([]byte("S"))
		h.p.Close(1)
		h.stat("encrypted", h.stats.Encrypted.Load(), 1)
		h.stat("malformed", h.stats.Malformed.Load(), 0)
	})
	t.Run("answer before the request", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.resp([]byte("N")) // events of the two directions reordered
		h.req(untyped(codeSSL, 0))
		h.connect()
		h.req(query("SELECT 1"))
		h.resp(cc("SELECT 0"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=0; ")
	})
	t.Run("cancel request", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.req(untyped(codeCancel, 8))
		h.p.Close(1)
		h.want("")
		h.stat("malformed", h.stats.Malformed.Load(), 0)
	})
	t.Run("protocol 2", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.req(untyped(2<<16, 4))
		h.resp([]byte("R\x00\x00\x00\x08\x00\x00\x00\x00"))
		h.p.Close(1)
		h.want("")
		h.stat("malformed", h.stats.Malformed.Load(), 1)
	})
}

func TestExtended(t *testing.T) {
	t.Run("pipelined batch", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(parse("s1", "INSERT INTO t VALUES ($1)"), describe('S', "s1"), parse("s2", "SELECT v FROM t WHERE k = 'a'"), describe('S', "s2"), syncMsg())
		h.resp(parseComplete(), enc(&pgproto3.ParameterDescription{ParameterOIDs: []uint32{23}}), noData(),
			parseComplete(), enc(&pgproto3.ParameterDescription{}), rowDesc(), rfq())
		var batch [][]byte
		for i := range 20 {
			name := "s1"
			if i%2 == 1 {
				name = "s2"
			}
			batch = append(batch, bind("", name, "secret-value"), describe('P', ""), execute("", 0))
		}
		b := h.req(append(batch, syncMsg())...)
		var ends []*conn.Segment
		for i := range 20 {
			if i%2 == 0 {
				ends = append(ends, h.resp(bindComplete(), noData(), cc("INSERT 0 1")))
			} else {
				ends = append(ends, h.resp(bindComplete(), rowDesc(), row("x"), row("y"), cc("SELECT 2")))
			}
		}
		h.resp(rfq())
		h.p.Close(1)
		if len(h.got) != 20 {
			t.Fatalf("%d exchanges, want 20: %s", len(h.got), summary(h.got))
		}
		for i, x := range h.got {
			want := "INSERT INTO t VALUES ($1)"
			rows := int64(-1)
			if i%2 == 1 {
				want, rows = "SELECT v FROM t WHERE k = ?", 2
			}
			if x.Postgres.Query != want || x.Postgres.Rows != rows || x.Start != b.Start || x.End != ends[i].End {
				t.Errorf("exchange %d: %s; want %q rows %d start %d end %d", i, fmtX(x), want, rows, b.Start, ends[i].End)
			}
			if strings.Contains(fmtX(x), "secret-value") {
				t.Errorf("exchange %d carries a bind parameter: %s", i, fmtX(x))
			}
		}
		if h.got[0].RequestSeq == h.got[1].RequestSeq {
			t.Error("pipelined executions share a sequence number; each must start at its own Bind")
		}
	})
	t.Run("error mid-pipeline", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.connect()
		h.req(parse("", "SELECT 1"), bind("", ""), execute("", 0),
			parse("", "SELECT 1/0"), bind("", ""), execute("", 0),
			parse("", "SELECT 3"), bind("", ""), execute("", 0), syncMsg())
		h.resp(parseComplete(), bindComplete(), row("1"), cc("SELECT 1"),
			parseComplete(), bindComplete(), errResp("22012"), rfq())
		h.req(parse("", "SELEKT"), syncMsg())
		h.resp(errResp("42601"), rfq())
		h.req(parse("", "SELECT $1::int"), bind("", "", "abc"), syncMsg())
		h.resp(parseComplete(), errResp("22P02"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=1; SELECT SELECT ?/? rows=-1 22012 failed; SELEKT SELEKT rows=-1 42601 failed; SELECT SELECT $1::int rows=-1 22P02 failed; ")
		h.stat("skipped", h.stats.Skipped.Load(), 1)
		h.stat("orphans", h.stats.Orphans.Load(), 0)
	})
	t.Run("prepared statements by name", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{MaxStatements: 2})
		h.connect()
		h.req(parse("a", "SELECT 'a'"), parse("b", "SELECT 'b'"), syncMsg())
		h.resp(parseComplete(), parseComplete(), rfq())
		for _, name := range []string{"a", "b", "a"} {
			h.req(bind("", name), execute("", 0), syncMsg())
			h.resp(bindComplete(), row("v"), cc("SELECT 1"), rfq())
		}
		// Closing b forgets it; c fits, d evicts the oldest, a: two at
		// most.
		h.req(enc(&pgproto3.Close{ObjectType: 'S', Name: "b"}), parse("c", "SELECT 'c'"), parse("d", "SELECT 'd'"), syncMsg())
		h.resp(enc(&pgproto3.CloseComplete{}), parseComplete(), parseComplete(), rfq())
		for _, name := range []string{"b", "c", "d", "a"} {
			h.req(bind("", name), execute("", 0), syncMsg())
			h.resp(bindComplete(), row("v"), cc("SELECT 1"), rfq())
		}
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=1; SELECT SELECT ? rows=1; SELECT SELECT ? rows=1; " +
			"SELECT  rows=1; SELECT SELECT ? rows=1; SELECT SELECT ? rows=1; SELECT  rows=1; ")
		h.stat("evicted", h.stats.Evicted.Load(), 1)
		h.stat("unprepared", h.stats.Unprepared.Load(), 2)
	})
	t.Run("statement bytes bound", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{MaxStatementBytes: 200})
		h.connect()
		long := "SELECT '" + strings.Repeat("x", 300) + "'"
		h.req(parse("big", long), parse("small", "SELECT 1"), syncMsg())
		h.resp(parseComplete(), parseComplete(), rfq())
		h.req(bind("", "big"), execute("", 0), bind("", "small"), execute("", 0), syncMsg())
		h.resp(bindComplete(), cc("SELECT 0"), bindComplete(), cc("SELECT 0"), rfq())
		h.p.Close(1)
		h.want("SELECT  rows=0; SELECT SELECT ? rows=0; ")
		h.stat("evicted", h.stats.Evicted.Load(), 1)
	})
	t.Run("portal suspended and named portals", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(parse("", "SELECT g FROM generate_series(1, 3) g"), bind("cur", ""), execute("cur", 2), syncMsg())
		h.resp(parseComplete(), bindComplete(), row("1"), row("2"), enc(&pgproto3.PortalSuspended{}), rfq())
		h.req(execute("cur", 2), syncMsg())
		h.resp(row("3"), cc("SELECT 1"), rfq())
		h.req(query(""))
		h.resp(enc(&pgproto3.EmptyQueryResponse{}), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT g FROM generate_series(?, ?) g rows=2; SELECT SELECT g FROM generate_series(?, ?) g rows=1;   rows=-1; ")
	})
	t.Run("copy in by execute", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.connect()
		h.req(parse("", "COPY t FROM STDIN"), bind("", ""), execute("", 0), syncMsg())
		h.resp(parseComplete(), bindComplete(), enc(&pgproto3.CopyInResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}}))
		h.req(enc(&pgproto3.CopyData{Data: []byte("1\tsecret\n")}, &pgproto3.CopyDone{}))
		h.resp(cc("COPY 1"), rfq())
		h.p.Close(1)
		h.want("COPY COPY t FROM STDIN rows=-1; ")
	})
	t.Run("function call keeps pairing", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(enc(&pgproto3.FunctionCall{Function: 1598, Arguments: [][]byte{}, ResultFormatCode: 0}))
		h.resp(enc(&pgproto3.FunctionCallResponse{Result: []byte("x")}), rfq())
		h.req(query("SELECT 1"))
		h.resp(cc("SELECT 0"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=0; ")
	})
}

func TestSimpleQuery(t *testing.T) {
	t.Run("batches", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(query("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"))
		h.resp(cc("INSERT 0 1"), cc("INSERT 0 1"), rfq())
		h.req(query("SELECT 1; UPDATE t SET v = 2"))
		h.resp(rowDesc(), row("1"), cc("SELECT 1"), cc("UPDATE 1"), rfq())
		h.req(query("SELECT 1; SELECT 1/0; SELECT 3"))
		h.resp(rowDesc(), row("1"), cc("SELECT 1"), errResp("22012"), rfq())
		h.p.Close(1)
		h.want("BATCH INSERT INSERT INTO t VALUES (?); INSERT INTO t VALUES (?) rows=-1; " +
			"BATCH SELECT ?; UPDATE t SET v = ? rows=1; " +
			"SELECT SELECT ?; SELECT ?/?; SELECT ? rows=1 22012 failed; ")
		if len(h.got) == 3 && (h.got[0].Postgres.BatchSize != 2 || h.got[2].Postgres.BatchSize != 0) {
			t.Errorf("batch sizes %d, %d; want 2 and 0 (one statement completed)", h.got[0].Postgres.BatchSize, h.got[2].Postgres.BatchSize)
		}
	})
	t.Run("notices", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.connect()
		h.req(query("COMMIT"))
		h.resp(notice("WARNING", "25P01"), cc("COMMIT"), rfq())
		h.req(query("DROP TABLE IF EXISTS nope"))
		h.resp(notice("NOTICE", "00000"), cc("DROP TABLE"), rfq())
		h.req(parse("", "COMMIT"), bind("", ""), execute("", 0), syncMsg())
		h.resp(parseComplete(), bindComplete(), notice("WARNING", "25P01"), cc("COMMIT"), rfq())
		h.p.Close(1)
		h.want("COMMIT COMMIT rows=-1 25P01; DROP DROP TABLE IF EXISTS nope rows=-1; COMMIT COMMIT rows=-1 25P01; ")
	})
	t.Run("with and unknown text take the tag", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(query("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"))
		h.resp(cc("INSERT 0 1"), rfq())
		h.req(bind("", "never-parsed"), execute("", 0), syncMsg())
		h.resp(bindComplete(), cc("CREATE TABLE"), rfq())
		h.p.Close(1)
		h.want("INSERT WITH x AS (SELECT ?) INSERT INTO t SELECT * FROM x rows=-1; CREATE TABLE  rows=-1; ")
	})
	t.Run("long query is cut, body stepped over", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{MaxQueryBytes: 32})
		h.connect()
		long := "SELECT 'aaaa', 1 FROM t WHERE x IN (" + strings.Repeat("1, ", 5000) + "1)"
		q := query(long)
		h.req(q[:4000])
		h.skip(true, uint64(len(q)-4000-10))
		h.req(q[len(q)-10:])
		h.resp(rowDesc(), row("a"), cc("SELECT 1"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ?, ? FROM t WHERE x  rows=1; ")
		if len(h.got) == 1 && h.got[0].Postgres.RawQuery != long[:32] {
			t.Errorf("raw text %q, want the first 32 bytes", h.got[0].Postgres.RawQuery)
		}
	})
}

func TestLoss(t *testing.T) {
	t.Run("skips inside rows", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(query("SELECT big FROM t"))
		big := row(strings.Repeat("z", 50000))
		h.resp(rowDesc(), big[:100])
		h.skip(false, uint64(len(big)-110))
		h.resp(big[len(big)-10:], row("small"), cc("SELECT 2"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT big FROM t rows=2; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 0)
	})
	t.Run("server headers lost", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(query("SELECT a FROM t"))
		h.resp(rowDesc(), row("1"))
		h.skip(false, 500) // rows, their end and ReadyForQuery
		h.req(query("SELECT b FROM t"))
		// The next read starts inside a row: found again at the row
		// that follows.
		h.resp(append([]byte("tail of a row"), join([][]byte{row("2"), row("3"), cc("SELECT 2"), rfq()})...))
		h.req(query("SELECT c FROM t"))
		h.resp(row("4"), cc("SELECT 1"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT a FROM t rows=-1; SELECT SELECT b FROM t rows=-1; SELECT SELECT c FROM t rows=1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 1)
		h.stat("unknown", h.stats.Unknown.Load(), 2)
	})
	t.Run("client write tail lost", func(t *testing.T) {
		h := newHarness(t, conn.RoleServer, Options{})
		h.connect()
		h.req(parse("", "INSERT INTO t VALUES ($1)"), syncMsg())
		h.resp(parseComplete(), rfq())
		w := join([][]byte{bind("", "", strings.Repeat("v", 20000)), execute("", 0), syncMsg()})
		h.req(w[:8192])
		h.skip(true, uint64(len(w)-8192))
		h.resp(bindComplete(), cc("INSERT 0 1"), rfq())
		h.req(query("SELECT 1"))
		h.resp(row("1"), cc("SELECT 1"), rfq())
		h.p.Close(1)
		h.want("INSERT INSERT INTO t VALUES ($1) rows=-1; SELECT SELECT ? rows=1; ")
		h.stat("desyncs", h.stats.Desyncs.Load(), 1)
	})
	t.Run("orphans", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.resp(cc("SELECT 1"), rfq()) // answers nothing seen
		// An answer that moved before the request can't be its answer.
		h.p.Segment(&conn.Segment{Dir: conn.Ingress, Offset: h.off[conn.Ingress], Data: rfq(), Start: 1, End: 2})
		h.off[conn.Ingress] += 6
		h.req(query("SELECT 1"))
		h.resp(cc("SELECT 0"), rfq())
		h.p.Close(1)
		h.want("SELECT SELECT ? rows=0; ")
		h.stat("orphans", h.stats.Orphans.Load(), 3)
	})
	t.Run("overflow", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{MaxPending: 4})
		h.connect()
		h.req(query("SELECT 1"), query("SELECT 2"), query("SELECT 3"), query("SELECT 4"), query("SELECT 5"))
		for range 5 {
			h.resp(cc("SELECT 0"), rfq())
		}
		h.req(query("SELECT 6"))
		h.resp(cc("SELECT 0"), rfq())
		h.p.Close(1)
		if n := len(h.got); n == 0 || h.got[n-1].Postgres.RawQuery != "SELECT 6" {
			t.Errorf("after an overflow the next query must pair again: %s", summary(h.got))
		}
		if h.stats.Overflows.Load() == 0 {
			t.Error("overflow not counted")
		}
	})
	t.Run("connection ends first", func(t *testing.T) {
		h := newHarness(t, conn.RoleClient, Options{})
		h.connect()
		h.req(query("SELECT pg_sleep(100)"))
		h.p.Close(12345)
		h.want("SELECT SELECT pg_sleep(?) rows=-1 no-response; ")
		h.stat("unanswered", h.stats.Unanswered.Load(), 1)
		if len(h.got) == 1 && h.got[0].End != 12345 {
			t.Errorf("end %d, want the close time", h.got[0].End)
		}
	})
}

func TestRoleInference(t *testing.T) {
	for _, tc := range []struct {
		name      string
		first     conn.Direction // of the first captured bytes
		firstMsgs []byte
		role      conn.Role
	}{
		{"client, sees an answer first", conn.Ingress, join([][]byte{row("old"), cc("SELECT 1"), rfq()}), conn.RoleClient},
		{"server, sees a query first", conn.Ingress, query("SELECT 7"), conn.RoleServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, conn.RoleUnknown, Options{})
			h.seg(conn.Egress, []byte("ambiguous"), 0) // decides nothing
			h.seg(tc.first, tc.firstMsgs, 0)
			reqDir := conn.Egress
			if tc.role == conn.RoleServer {
				reqDir = conn.Ingress
			}
			if tc.role == conn.RoleServer {
				h.seg(reqDir.Opposite(), join([][]byte{cc("SELECT 1"), rfq()}), 0)
			}
			h.seg(reqDir, query("SELECT 8"), 0)
			h.seg(reqDir.Opposite(), join([][]byte{cc("SELECT 0"), rfq()}), 0)
			h.p.Close(1)
			want := "SELECT SELECT ? rows=0; "
			if tc.role == conn.RoleServer {
				want = "SELECT SELECT ? rows=-1; " + want
			}
			h.want(want)
			for _, x := range h.got {
				if x.Role != tc.role || x.Postgres.Database != "" {
					t.Errorf("role %v database %q, want %v and none (no startup seen)", x.Role, x.Postgres.Database, tc.role)
				}
			}
			if h.info.Role != conn.RoleUnknown {
				t.Errorf("info.Role changed to %v; the parser must not write shared state", h.info.Role)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if err := (Options{MaxQueryBytes: -1, MaxPending: -1, MaxStatements: -1, MaxStatementBytes: -1}).Validate(); err == nil || strings.Count(err.Error(), "negative") != 4 {
		t.Errorf("negative options: %v, want four complaints", err)
	}
}
