// Command record captures the fixtures in ../: what real PostgreSQL clients
// (psql, pgbench, pgx) and a real PostgreSQL 15 server send each other over
// one TCP connection, through a loopback proxy that logs every read in the
// order it happened. Run it as root from the repository root, with
// PostgreSQL 15 installed (Debian: postgresql-15, postgresql-client-15):
//
//	go run ./protocols/postgres/testdata/record -out protocols/postgres/testdata
//
// The server runs as the postgres user in a temporary directory; the file
// format is described in ../README.md.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weftrace/weft/protocols/recording"
)

const pgBin = "/usr/lib/postgresql/15/bin"

func main() {
	out := flag.String("out", "protocols/postgres/testdata", "directory for the .rec files")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	srv, err := startPostgres()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer srv.stop()
	if err := setupDB(srv.addr); err != nil {
		return fmt.Errorf("set up database: %w", err)
	}
	scenarios := []struct {
		name   string
		client func(addr string) error
	}{
		{"psql-simple", psqlScript(simpleScript)},
		{"psql-multi", psql("-c", "SELECT 1 AS one; SELECT 2 AS two, 'two'; UPDATE items SET qty = qty + 1 WHERE id < 3")},
		{"psql-copy", psqlScript(copyScript)},
		{"pgx-extended", pgxExtended},
		{"pgx-batch-error", pgxBatchError},
		{"pgx-scram", pgxScram},
		{"pgbench-simple", pgbench("-M", "simple")},
		{"pgbench-prepared", pgbench("-M", "prepared")},
		// Last: it turns TLS on for the rest of the server's life.
		{"psql-tls", psqlTLS},
	}
	for _, sc := range scenarios {
		rec, err := record(srv.addr, sc.client)
		if err != nil {
			return fmt.Errorf("record %s: %w", sc.name, err)
		}
		if err := os.WriteFile(filepath.Join(out, sc.name+".rec"), rec, 0o644); err != nil {
			return err
		}
		log.Printf("%s: %d bytes", sc.name, len(rec))
	}
	return nil
}

// server is a PostgreSQL server in a temporary directory.
type server struct {
	dir  string
	addr string
	cmd  *exec.Cmd
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// asPostgres runs commands as the postgres user: initdb and postgres
// refuse to run as root.
func asPostgres(cmd *exec.Cmd) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return nil
}

func chownPostgres(paths ...string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func startPostgres() (*server, error) {
	dir, err := os.MkdirTemp("", "weft-pg-record")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := chownPostgres(dir); err != nil {
		return nil, err
	}
	initdb := exec.Command(pgBin+"/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	if err := asPostgres(initdb); err != nil {
		return nil, err
	}
	if b, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, b)
	}
	// A SCRAM user for the authentication fixture; a self-signed
	// certificate for the one that hands over to TLS (psqlTLS turns it on).
	hba := "local all all trust\nhost all scram 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	if err := selfSigned(data); err != nil {
		return nil, err
	}
	if err := chownPostgres(filepath.Join(data, "pg_hba.conf"), filepath.Join(data, "server.crt"), filepath.Join(data, "server.key")); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(pgBin+"/postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "TimeZone=UTC", "-c", "lc_messages=C")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := asPostgres(cmd); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	for range 200 {
		if exec.Command("/usr/bin/pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() == nil {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("postgres never became ready")
}

func selfSigned(data string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(data, "server.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(data, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// psqlDirect runs statements on the server itself, not through a proxy,
// so they are not recorded.
func psqlDirect(addr, db string, sqls ...string) error {
	host, port, _ := net.SplitHostPort(addr)
	for _, sql := range sqls {
		if b, err := exec.Command("/usr/bin/psql", "-X", "-q", "-h", host, "-p", port, "-U", "postgres", "-d", db, "-c", sql).CombinedOutput(); err != nil {
			return fmt.Errorf("psql %q: %w: %s", sql, err, b)
		}
	}
	return nil
}

// setupDB creates the fixtures' database, table and users (not recorded).
func setupDB(addr string) error {
	if err := psqlDirect(addr, "postgres", "CREATE DATABASE weft", "CREATE USER scram PASSWORD 'weft-secret'"); err != nil {
		return err
	}
	if err := psqlDirect(addr, "weft",
		"CREATE TABLE items (id int PRIMARY KEY, name text, qty int)",
		"INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 5) g",
		"GRANT ALL ON items TO scram"); err != nil {
		return err
	}
	// pgbench's tables, scale 1.
	host, port, _ := net.SplitHostPort(addr)
	if b, err := exec.Command("/usr/bin/pgbench", "-i", "-q", "-h", host, "-p", port, "-U", "postgres", "weft").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w: %s", err, b)
	}
	return nil
}

// simpleScript is run by psql statement by statement: the simple query
// protocol, one Query message per statement.
const simpleScript = `SELECT id, name FROM items WHERE id <= 3 AND name <> 'nobody' ORDER BY id;
INSERT INTO items (id, name, qty) VALUES (100, 'it''s new', 42);
UPDATE items SET qty = qty + 1 WHERE id IN (1, 2, 3);
SELECT 1/0;
SELECT * FROM no_such_table;
COMMIT;
BEGIN;
DELETE FROM items WHERE id = 100;
SELECT repeat('x', 20000) AS big;
SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
COMMIT;
`

const copyScript = `CREATE TEMP TABLE t (a int, b text);
COPY t FROM STDIN;
1	one
2	two
3	three
\.
COPY t TO STDOUT;
COPY (SELECT g, repeat('y', 100) FROM generate_series(1, 200) g) TO STDOUT;
`

// psql runs psql with args against the proxy. sslmode=prefer makes it ask
// for TLS first; the server (ssl=off) answers 'N' and the session goes on
// in plaintext.
func psql(args ...string) func(addr string) error {
	return func(addr string) error {
		host, port, _ := net.SplitHostPort(addr)
		conn := fmt.Sprintf("host=%s port=%s user=postgres dbname=weft application_name=weft-fixture sslmode=prefer", host, port)
		a := append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=0", "-o", "/dev/null", conn}, args...)
		cmd := exec.Command("/usr/bin/psql", a...)
		cmd.Env = append(os.Environ(), "PGGSSENCMODE=disable")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("psql %v: %w: %s", a, err, out)
		}
		return nil
	}
}

// psqlScript runs a script with psql -f: one Query message per statement.
func psqlScript(script string) func(addr string) error {
	return func(addr string) error {
		f, err := os.CreateTemp("", "weft-script-*.sql")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		f.WriteString(script)
		f.Close()
		return psql("-f", f.Name())(addr)
	}
}

// psqlTLS turns TLS on (a reload, not recorded) and connects with
// sslmode=require: the SSLRequest is answered 'S' and TLS follows.
func psqlTLS(addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	if err := psqlDirect(addr, "postgres", "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	conn := fmt.Sprintf("host=%s port=%s user=postgres dbname=weft sslmode=require", host, port)
	var out []byte
	var err error
	for range 100 { // the reload takes effect asynchronously
		cmd := exec.Command("/usr/bin/psql", "-X", "-q", "-o", "/dev/null", "-c", "SELECT 1", conn)
		cmd.Env = append(os.Environ(), "PGGSSENCMODE=disable")
		if out, err = cmd.CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("psql (tls): %w: %s", err, out)
}

func pgxConnect(ctx context.Context, addr, user, password string) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=weft sslmode=disable application_name=weft-pgx", host, port, user)
	if password != "" {
		dsn += " password=" + password
	}
	return pgx.Connect(ctx, dsn)
}

// pgxExtended: a prepared statement executed several times, a pipelined
// batch, a large parameter (more than one capture's worth), and a query
// returning many rows, all over the extended protocol.
func pgxExtended(addr string) error {
	ctx := context.Background()
	c, err := pgxConnect(ctx, addr, "postgres", "")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Prepare(ctx, "get_item", "SELECT name, qty FROM items WHERE id = $1"); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		var name string
		var qty int
		if err := c.QueryRow(ctx, "get_item", i).Scan(&name, &qty); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue("INSERT INTO items (id, name, qty) VALUES ($1, $2, 7)", 200, "batched")
	b.Queue("UPDATE items SET qty = qty * 2 WHERE id = $1", 200)
	b.Queue("SELECT count(*) FROM items WHERE qty > 5")
	b.Queue("DELETE FROM items WHERE id = $1", 200)
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	big := strings.Repeat("z", 20000)
	var n int
	if err := c.QueryRow(ctx, "SELECT length($1::text)", big).Scan(&n); err != nil {
		return err
	}
	rows, err := c.Query(ctx, "SELECT g, repeat('r', 50) FROM generate_series(1, 2000) g")
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = c.Exec(ctx, "SELECT 'literal', 42, 4.5e3 WHERE $1::int > 0", 1)
	return err
}

// pgxBatchError: a pipelined batch whose second statement fails, so the
// server skips the rest until Sync; then a statement that fails to parse.
func pgxBatchError(addr string) error {
	ctx := context.Background()
	c, err := pgxConnect(ctx, addr, "postgres", "")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("INSERT INTO items (id, name, qty) VALUES (1, 'dup', 0)") // duplicate key
	b.Queue("SELECT 3")
	if err := c.SendBatch(ctx, b).Close(); err == nil {
		return errors.New("batch with a duplicate key did not fail")
	}
	if _, err := c.Exec(ctx, "SELEKT 1"); err == nil {
		return errors.New("syntax error did not fail")
	}
	_, err = c.Exec(ctx, "SELECT 2")
	return err
}

func pgxScram(addr string) error {
	ctx := context.Background()
	c, err := pgxConnect(ctx, addr, "scram", "weft-secret")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var n int
	return c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
}

// pgbench runs 3 transactions of the default (TPC-B like) script on one
// connection; its first connection only checks the tables and is not kept.
func pgbench(args ...string) func(addr string) error {
	return func(addr string) error {
		host, port, _ := net.SplitHostPort(addr)
		a := append([]string{"-n", "-t", "3", "-c", "1", "-h", host, "-p", port, "-U", "postgres"}, args...)
		a = append(a, "weft")
		cmd := exec.Command("/usr/bin/pgbench", a...)
		cmd.Env = append(os.Environ(), "PGGSSENCMODE=disable", "PGSSLMODE=disable")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench %v: %w: %s", a, err, out)
		}
		return nil
	}
}

// record proxies the client's connections to upstream and returns every
// read each way of the last connection, in the order the reads returned.
func record(upstream string, client func(addr string) error) ([]byte, error) {
	conns, err := recording.Record(upstream, client)
	if err != nil {
		return nil, err
	}
	if len(conns) == 0 {
		return nil, errors.New("the client made no connection")
	}
	return recording.Format(conns[len(conns)-1]), nil
}
