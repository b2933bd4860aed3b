package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Database attribute names (semconv), as Jaeger shows them.
var (
	attrDBSystem     = string(semconv.DBSystemNameKey)
	attrDBNamespace  = string(semconv.DBNamespaceKey)
	attrDBOperation  = string(semconv.DBOperationNameKey)
	attrDBQueryText  = string(semconv.DBQueryTextKey)
	attrDBStatusCode = string(semconv.DBResponseStatusCodeKey)
	attrDBRows       = string(semconv.DBResponseReturnedRowsKey)
	attrDBErrorType  = string(semconv.ErrorTypeKey)
)

// pgBin finds Debian's PostgreSQL server programs (apt-get install
// postgresql: initdb and postgres are not on PATH), the newest version
// installed; psql, pgbench and pg_isready are on PATH.
var pgBin = sync.OnceValues(func() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	best, bestVersion := "", -1
	for _, f := range found {
		dir := filepath.Dir(f)
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if _, serr := os.Stat(filepath.Join(dir, "initdb")); err == nil && serr == nil && v > bestVersion {
			best, bestVersion = dir, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin with initdb and postgres: apt-get install postgresql")
	}
	return best, nil
})

// postgresService is the service name of the server's spans: PostgreSQL
// rewrites its backends' process titles over their environment (as nginx
// does), so no OTEL_SERVICE_NAME set there can be read back, and spans
// carry the executable's name. Tests select them by db.namespace, a
// database name unique to the test.
const postgresService = "postgres"

// pgServer is a PostgreSQL server the test started in a temporary
// directory, listening on a loopback port and on a unix socket.
type pgServer struct {
	port    int
	socket  string // directory of the unix socket
	logPath string
}

// startPostgres initialises a cluster in a temporary directory (as the
// postgres user: initdb and postgres refuse root), starts it on a free
// loopback port and waits until it accepts connections; it is stopped
// (fast shutdown) and removed when the test ends.
func startPostgres(t *testing.T, serverArgs ...string) *pgServer {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgres user the server runs as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "weft-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // runs last: after the server stopped
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	initdb.Env = childEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s := &pgServer{port: ports[0], socket: dir, logPath: filepath.Join(dir, "postgres.log")}
	// setpriv execs the server (no process in between), so the stop
	// signal reaches it.
	argv := []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--",
		filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "lc_messages=C"}
	p, err := spawn("postgres", dir, s.logPath, childEnv(), nil, append(argv, serverArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, timedOut := p.stop(syscall.SIGINT, 20*time.Second); timedOut {
			t.Errorf("postgres did not stop within 20 s of SIGINT (killed it)")
		}
		if t.Failed() {
			t.Logf("postgres log (%s):\n%s", s.logPath, tail(s.logPath, 30))
		}
	})
	// pg_isready over the unix socket: no TCP connection for weft to see.
	err = waitUntil(60*time.Second, p, func() error {
		out, err := exec.Command("pg_isready", "-h", dir, "-p", strconv.Itoa(s.port)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("postgres did not become ready: %v\nlog:\n%s", err, tail(s.logPath, 30))
	}
	return s
}

// exec runs statements on db over the unix socket, which weft does not
// trace (TCP only): set-up that must not show up as spans. pgx is the
// client here too, which also keeps its modules in go.mod for tidy (the
// pgxclient program under testdata does not count).
func (s *pgServer) exec(t *testing.T, db string, sqls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s", s.socket, s.port, db))
	if err != nil {
		t.Fatalf("connect to %s over the unix socket: %v", db, err)
	}
	defer c.Close(ctx)
	for _, sql := range sqls {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%q (unix socket): %v", sql, err)
		}
	}
}

// createDB creates a database whose name is unique to this run: its
// spans are told apart by db.namespace.
func (s *pgServer) createDB(t *testing.T) string {
	t.Helper()
	db := "e2e_" + token(10)
	s.exec(t, "postgres", "CREATE DATABASE "+db)
	return db
}

// dsn is a libpq connection string for db over TCP.
func (s *pgServer) dsn(db, sslmode string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=%s", s.port, db, sslmode)
}

// pgStmt is one statement a test ran, with what its spans must say.
type pgStmt struct {
	op       string // db.operation.name
	text     string // db.query.text: the statement with literals replaced
	rows     int    // db.response.returned_rows; -1: absent
	sqlstate string // db.response.status_code and error.type of a failure
}

// pgWant is the span of st on database db, exported by service svc as
// kind, inside [from, to].
func pgWant(svc, kind, db string, port int, st pgStmt, from, to time.Time) Want {
	attrs := map[string]any{
		attrDBSystem:    "postgresql",
		attrDBNamespace: db,
		attrDBOperation: st.op,
		attrServerAddr:  loopback,
		attrServerPort:  port,
		attrPeerAddr:    loopback,
	}
	if st.text != "" {
		attrs[attrDBQueryText] = st.text
	}
	if kind == "client" {
		attrs[attrPeerPort] = port
	}
	if st.rows >= 0 {
		attrs[attrDBRows] = st.rows
	}
	if st.sqlstate != "" {
		attrs[attrDBStatusCode] = st.sqlstate
		attrs[attrDBErrorType] = st.sqlstate
	}
	return Want{Service: svc, Kind: kind, Name: st.op + " " + db, Error: st.sqlstate != "", Attrs: attrs, From: from, To: to}
}

// checkPgSpans checks spans (in time order) against stmts, and that none
// has a returned-rows count the statement should not have, nor any of
// the secrets (literal values, parameters, row data) in any tag.
func checkPgSpans(t *testing.T, label string, spans []Span, want func(i int) Want, stmts []pgStmt, secrets ...string) {
	t.Helper()
	for i, s := range spans {
		checkSpan(t, fmt.Sprintf("%s span %d of %d (%s)", label, i+1, len(spans), stmts[i].op), s, want(i))
		if _, ok := s.Tags[attrDBRows]; ok && stmts[i].rows < 0 {
			t.Errorf("%s span %d (%s): has %s = %s, but the statement returns no rows", label, i+1, stmts[i].op, attrDBRows, s.Tags[attrDBRows])
		}
		for k, v := range s.Tags {
			for _, secret := range secrets {
				if strings.Contains(fmt.Sprint(v.V), secret) {
					t.Errorf("%s span %d: tag %s = %q carries %q, which no span may", label, i+1, k, v.V, secret)
				}
			}
		}
	}
}

// TestPostgresPsql: psql runs a script over the simple query protocol
// (after asking for TLS, which the server refuses with 'N'): one CLIENT
// span (psql's service) and one SERVER span (the backend) per statement,
// named "{operation} {database}", with the literals of db.query.text
// replaced by ?, rows returned for the SELECT, and status Error with the
// SQLSTATE for the two statements the server rejects.
func TestPostgresPsql(t *testing.T) {
	needWeft(t)
	pg := startPostgres(t)
	db := pg.createDB(t)
	svc := uniqueName("e2e-psql")
	stmts := []struct {
		sql string
		pgStmt
	}{
		{"CREATE TABLE items (id int PRIMARY KEY, name text);", pgStmt{"CREATE", "CREATE TABLE items (id int PRIMARY KEY, name text);", -1, ""}},
		{"INSERT INTO items VALUES (1, 'weft-secret-one'), (2, 'weft-secret-two');", pgStmt{"INSERT", "INSERT INTO items VALUES (?, ?), (?, ?);", -1, ""}},
		{"SELECT id, name FROM items WHERE id >= 1 ORDER BY id;", pgStmt{"SELECT", "SELECT id, name FROM items WHERE id >= ? ORDER BY id;", 2, ""}},
		{"SELECT * FROM no_such_table;", pgStmt{"SELECT", "SELECT * FROM no_such_table;", -1, "42P01"}},
		{"SELECT 1/0;", pgStmt{"SELECT", "SELECT ?/?;", -1, "22012"}},
		{"UPDATE items SET name = 'weft-secret-uno' WHERE id = 1;", pgStmt{"UPDATE", "UPDATE items SET name = ? WHERE id = ?;", -1, ""}},
		{"DROP TABLE items;", pgStmt{"DROP", "DROP TABLE items;", -1, ""}},
	}
	var script strings.Builder
	var want []pgStmt
	for _, s := range stmts {
		script.WriteString(s.sql + "\n")
		want = append(want, s.pgStmt)
	}
	file := writeFile(t, t.TempDir(), "script.sql", []byte(script.String()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=verbose", "-o", "/dev/null", "-f", file,
		pg.dsn(db, "prefer")+" application_name=e2e")
	cmd.Env = childEnv("OTEL_SERVICE_NAME="+svc, "PGGSSENCMODE=disable")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	from := time.Now()
	err := cmd.Run()
	to := time.Now()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, &stderr)
	}
	// psql must have seen exactly the two failures the test expects.
	if got := regexp.MustCompile(`ERROR:  ([0-9A-Z]{5}):`).FindAllStringSubmatch(stderr.String(), -1); len(got) != 2 || got[0][1] != "42P01" || got[1][1] != "22012" {
		t.Fatalf("psql reported errors %q, the test expects 42P01 then 22012:\n%s", got, &stderr)
	}
	for _, kind := range []string{"client", "server"} {
		q := Query{Service: svc, Kind: kind}
		name := svc
		if kind == "server" {
			q = Query{Service: postgresService, Kind: kind, Tags: map[string]any{attrDBNamespace: db}}
			name = postgresService
		}
		spans := waitSpans(t, q, len(want), spanTimeout)
		checkPgSpans(t, kind, spans, func(i int) Want { return pgWant(name, kind, db, pg.port, want[i], from, to) }, want,
			"weft-secret")
	}
}

// pgxClient builds testdata/pgxclient once per run.
var pgxClient = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(suite.dir, "bin", "pgxclient")
	return bin, goBuild(suite.root, "./e2e/testdata/pgxclient", bin)
})

// pgxResult is pgxclient's output line.
type pgxResult struct {
	LocalPort int      `json:"local_port"`
	StartNs   int64    `json:"start_ns"`
	EndNs     int64    `json:"end_ns"`
	Rows      int      `json:"rows"`
	SQLStates []string `json:"sqlstates"`
}

func runPgx(t *testing.T, svc, dsn, mode string, n int) pgxResult {
	t.Helper()
	bin, err := pgxClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-dsn", dsn, "-mode", mode, "-n", strconv.Itoa(n))
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pgxclient -mode %s: %v\n%s", mode, err, &stderr)
	}
	var r pgxResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("pgxclient output %q: %v", &stdout, err)
	}
	return r
}

// TestPostgresPgx: a pgx program on the extended query protocol. A
// pipelined batch of 20 statements (one Sync) gives 20 spans on each side,
// 10 INSERT and 10 SELECT, which all start with the one write that
// carried them;
// a prepared statement executed 100 times gives 100 spans with the
// statement text from its Parse; statements the server rejects give Error
// spans with their SQLSTATE, one of them a statement that never parsed.
func TestPostgresPgx(t *testing.T) {
	needWeft(t)
	pg := startPostgres(t)
	setup := func(t *testing.T) string {
		db := pg.createDB(t)
		pg.exec(t, db, "CREATE TABLE items (id int PRIMARY KEY, name text, qty int)",
			"INSERT INTO items SELECT g, 'weft-row-' || g, g FROM generate_series(1, 100) g")
		return db
	}
	// check waits for the spans of want on both sides. byOperation
	// compares them grouped by operation (stable), for spans that time
	// cannot order (answers read in one read end together).
	check := func(t *testing.T, svc, db string, r pgxResult, want []pgStmt, byOperation bool) [2][]Span {
		t.Helper()
		from, to := time.Unix(0, r.StartNs), time.Unix(0, r.EndNs)
		var out [2][]Span
		for i, kind := range []string{"client", "server"} {
			q, name := Query{Service: svc, Kind: kind}, svc
			if kind == "server" {
				q, name = Query{Service: postgresService, Kind: kind, Tags: map[string]any{attrDBNamespace: db}}, postgresService
			}
			spans := waitSpans(t, q, len(want), spanTimeout)
			if byOperation {
				sort.SliceStable(spans, func(i, j int) bool { return spans[i].str(attrDBOperation) < spans[j].str(attrDBOperation) })
			}
			checkPgSpans(t, kind, spans, func(i int) Want {
				w := pgWant(name, kind, db, pg.port, want[i], from, to)
				if kind == "server" {
					w.Attrs[attrPeerPort] = r.LocalPort
				}
				return w
			}, want, "weft-row-", "batched")
			out[i] = spans
		}
		return out
	}
	t.Run("pipelined batch", func(t *testing.T) {
		db := setup(t)
		svc := uniqueName("e2e-pgx")
		r := runPgx(t, svc, pg.dsn(db, "disable"), "batch", 20)
		if r.Rows != 10 {
			t.Fatalf("pgxclient read %d rows, the test expects 10", r.Rows)
		}
		// The batch alternates INSERT and SELECT; grouped by operation,
		// the INSERTs come first.
		var want []pgStmt
		for i := range 20 {
			if i < 10 {
				want = append(want, pgStmt{"INSERT", "INSERT INTO items (id, name, qty) VALUES ($1, ?, ?)", -1, ""})
			} else {
				want = append(want, pgStmt{"SELECT", "SELECT name FROM items WHERE id = $1", 1, ""})
			}
		}
		for i, spans := range check(t, svc, db, r, want, true) {
			// One write carried the batch (one read on the server): every
			// span starts with it.
			for j, s := range spans {
				if s.StartUs != spans[0].StartUs {
					t.Errorf("%s span %d starts at %d µs, another at %d: a pipelined batch starts together", []string{"client", "server"}[i], j+1, s.StartUs, spans[0].StartUs)
				}
			}
		}
	})
	t.Run("prepared statement", func(t *testing.T) {
		db := setup(t)
		svc := uniqueName("e2e-pgx")
		r := runPgx(t, svc, pg.dsn(db, "disable"), "prepared", 100)
		if r.Rows != 100 {
			t.Fatalf("pgxclient read %d rows, the test expects 100", r.Rows)
		}
		var want []pgStmt
		for range 100 {
			want = append(want, pgStmt{"SELECT", "SELECT name, qty FROM items WHERE id = $1", 1, ""})
		}
		check(t, svc, db, r, want, false)
	})
	t.Run("errors", func(t *testing.T) {
		db := setup(t)
		svc := uniqueName("e2e-pgx")
		r := runPgx(t, svc, pg.dsn(db, "disable"), "errors", 0)
		if strings.Join(r.SQLStates, ",") != "23505,42601" {
			t.Fatalf("pgxclient saw SQLSTATEs %q, the test expects 23505 and 42601", r.SQLStates)
		}
		check(t, svc, db, r, []pgStmt{
			{"INSERT", "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", -1, "23505"},
			{"SELEKT", "SELEKT ?", -1, "42601"}, // the Parse failed: no Execute was ever sent
		}, false)
	})
}

// tpcb are the statements of pgbench's built-in TPC-B-like transaction,
// with literals replaced (a negative delta keeps its minus sign).
var tpcb = []struct {
	op   string
	text *regexp.Regexp
	rows int
}{
	{"BEGIN", regexp.MustCompile(`^BEGIN;$`), -1},
	{"UPDATE", regexp.MustCompile(`^UPDATE pgbench_accounts SET abalance = abalance \+ -?\? WHERE aid = \?;$`), -1},
	{"SELECT", regexp.MustCompile(`^SELECT abalance FROM pgbench_accounts WHERE aid = \?;$`), 1},
	{"UPDATE", regexp.MustCompile(`^UPDATE pgbench_tellers SET tbalance = tbalance \+ -?\? WHERE tid = \?;$`), -1},
	{"UPDATE", regexp.MustCompile(`^UPDATE pgbench_branches SET bbalance = bbalance \+ -?\? WHERE bid = \?;$`), -1},
	{"INSERT", regexp.MustCompile(`^INSERT INTO pgbench_history \(tid, bid, aid, delta, mtime\) VALUES \(\?, \?, \?, -?\?, CURRENT_TIMESTAMP\);$`), -1},
	{"END", regexp.MustCompile(`^END;$`), -1},
}

// pgbenchSetup are the queries pgbench's built-in scripts run before the
// transactions, on a connection of their own: the scale, then how
// pgbench_accounts is partitioned (literals replaced).
var pgbenchSetup = []*regexp.Regexp{
	regexp.MustCompile(`^select count\(\*\) from pgbench_branches$`),
	regexp.MustCompile(`^select o\.n, p\.partstrat, pg_catalog\.count\(i\.inhparent\) from .* where c\.relname = \? and o\.n is not null group by \?, \? order by \? asc limit \?$`),
}

// TestPostgresPgbench: pgbench runs 10 transactions of its default
// TPC-B-like script on one connection (simple protocol): 7 statements
// each, so 70 spans on the client side and 70 on the server side, in
// transaction order, after the two of pgbench's set-up queries.
func TestPostgresPgbench(t *testing.T) {
	needWeft(t)
	pg := startPostgres(t)
	db := pg.createDB(t)
	init := exec.Command("pgbench", "-i", "-q", "-h", pg.socket, "-p", strconv.Itoa(pg.port), "-U", "postgres", db)
	init.Env = childEnv()
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i (unix socket): %v\n%s", err, out)
	}
	const txs = 10
	svc := uniqueName("e2e-pgbench")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-t", strconv.Itoa(txs), "-c", "1", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", db)
	cmd.Env = childEnv("OTEL_SERVICE_NAME="+svc, "PGGSSENCMODE=disable")
	from := time.Now()
	out, err := cmd.CombinedOutput()
	to := time.Now()
	if err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("number of transactions actually processed: %d/%d", txs, txs)) {
		t.Fatalf("pgbench did not run the %d transactions the test expects:\n%s", txs, out)
	}
	for _, kind := range []string{"client", "server"} {
		q, name := Query{Service: svc, Kind: kind}, svc
		if kind == "server" {
			q, name = Query{Service: postgresService, Kind: kind, Tags: map[string]any{attrDBNamespace: db}}, postgresService
		}
		spans := waitSpans(t, q, len(pgbenchSetup)+txs*len(tpcb), spanTimeout)
		for i, re := range pgbenchSetup {
			label := fmt.Sprintf("%s set-up span %d", kind, i+1)
			checkSpan(t, label, spans[i], pgWant(name, kind, db, pg.port, pgStmt{"SELECT", "", 1, ""}, from, to))
			if text := spans[i].str(attrDBQueryText); !re.MatchString(text) {
				t.Errorf("%s: query %q, want one matching %s", label, text, re)
			}
		}
		for i, s := range spans[len(pgbenchSetup):] {
			st := tpcb[i%len(tpcb)]
			label := fmt.Sprintf("%s span %d (transaction %d, statement %d)", kind, len(pgbenchSetup)+i+1, i/len(tpcb)+1, i%len(tpcb)+1)
			checkSpan(t, label, s, pgWant(name, kind, db, pg.port, pgStmt{st.op, "", st.rows, ""}, from, to))
			if text := s.str(attrDBQueryText); !st.text.MatchString(text) {
				t.Errorf("%s: query %q, want one matching %s", label, text, st.text)
			}
			if _, ok := s.Tags[attrDBRows]; ok && st.rows < 0 {
				t.Errorf("%s: has %s, but the statement returns no rows", label, attrDBRows)
			}
		}
	}
}
