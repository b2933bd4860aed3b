package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secrets are random words a test sends through traced programs where no
// span may carry them; they are unique to the run, so finding one
// anywhere in Jaeger (or in weft's log) is a leak.
type secrets map[string]string // where it was sent -> the secret

func newSecrets(where ...string) secrets {
	s := secrets{}
	for _, w := range where {
		s[w] = "weftsecret" + token(16)
	}
	return s
}

// leaks returns, for each secret found in b, where it was sent.
func (s secrets) leaks(b []byte) []string {
	var out []string
	for w, v := range s {
		if bytes.Contains(b, []byte(v)) {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// rawJaeger does one GET on Jaeger's query API and returns the body as is:
// every field of every span (tags, logs, references, warnings, process
// tags, operation names), undecoded, so nothing can be missed by a model.
func rawJaeger(t *testing.T, path string, q url.Values) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := suite.jaeger.client.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := suite.jaeger.client.hc.Do(req)
	if err != nil {
		t.Fatalf("jaeger api: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("jaeger api: GET %s: %s %v", u, resp.Status, err)
	}
	return b
}

// requireNoLeak greps everything the test can see for the secrets: the
// whole of each trace the spans belong to (GET /api/traces/{id}), every
// trace of every service Jaeger knows (so a leak into a span the test did
// not count is found too), and weft's own log.
func requireNoLeak(t *testing.T, sec secrets, spans []Span) {
	t.Helper()
	traces := map[string]bool{}
	for _, s := range spans {
		traces[s.TraceID] = true
	}
	for id := range traces {
		b := rawJaeger(t, "/api/traces/"+id, nil)
		if !bytes.Contains(b, []byte(id)) {
			t.Fatalf("trace %s: Jaeger's answer does not name it:\n%s", id, firstLines(b, 10))
		}
		if l := sec.leaks(b); len(l) > 0 {
			t.Errorf("trace %s carries the secrets sent in %q:\n%.4000s", id, l, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svcs, err := suite.jaeger.client.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, svc := range svcs {
		b := rawJaeger(t, "/api/traces", url.Values{
			"service": {svc},
			"start":   {strconv.FormatInt(now.Add(-6*time.Hour).UnixMicro(), 10)},
			"end":     {strconv.FormatInt(now.Add(time.Hour).UnixMicro(), 10)},
			"limit":   {"10000"},
		})
		if l := sec.leaks(b); len(l) > 0 {
			t.Errorf("traces of service %q carry the secrets sent in %q", svc, l)
		}
		if l := sec.leaks([]byte(svc)); len(l) > 0 {
			t.Errorf("service name %q carries the secrets sent in %q", svc, l)
		}
	}
	b, err := os.ReadFile(suite.weft.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if l := sec.leaks(b); len(l) > 0 {
		t.Errorf("weft's log (%s) carries the secrets sent in %q", suite.weft.logPath, l)
	}
}

// TestPrivacyHTTP: curl sends secrets to the Go server in a query string,
// in Authorization (Bearer), Cookie and X-Api-Key headers and in request
// bodies, and the server sends one back in a response body and a
// Set-Cookie header; curl's command line carries them all. The spans are
// exactly the three exchanges on each side, with url.path (no query),
// the method and the User-Agent (a header weft does export), and no
// secret appears anywhere in Jaeger or in weft's log.
func TestPrivacyHTTP(t *testing.T) {
	needWeft(t)
	sec := newSecrets("query string", "Authorization header", "Cookie header", "X-Api-Key header",
		"request body", "echoed request and response body")
	srvSvc, curlSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-curl")
	port := startGoServer(t, srvSvc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const ua = "weft-e2e-privacy/1" // User-Agent is exported: the control
	exs := []exchange{
		{method: "GET", path: "/items/42", name: "GET /items/{id}", status: 200},
		{method: "POST", path: "/upload", name: "POST /upload", status: 200},
		{method: "POST", path: "/echo", name: "POST /echo", status: 200},
	}
	res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc),
		curlOp{url: base + "/items/42?token=" + sec["query string"] + "&user=alice", args: []string{"-A", ua,
			"-H", "Authorization: Bearer " + sec["Authorization header"],
			"-H", "Cookie: session=" + sec["Cookie header"],
			"-H", "X-Api-Key: " + sec["X-Api-Key header"]}},
		curlOp{url: base + "/upload", args: []string{"-A", ua, "-H", "Expect:", "-H", "Content-Type: application/x-www-form-urlencoded",
			"--data-binary", "user=alice&password=" + sec["request body"]}},
		curlOp{url: base + "/echo", args: []string{"-A", ua, "-H", "Content-Type: text/plain",
			"--data-binary", sec["echoed request and response body"]}},
	)
	requireOneConnection(t, res)
	// The secrets really went over the wire: the server answered them.
	if got := string(res[2].body); got != sec["echoed request and response body"] || !strings.Contains(res[2].headers, "weft_echo="+got) {
		t.Fatalf("/echo answered body %q, headers:\n%s\nthe test expects the secret it sent in both", got, res[2].headers)
	}
	exs = curlExchanges(t, res, from, to, ua, exs)
	var spans []Span
	for _, kind := range []string{"server", "client"} {
		svc := srvSvc
		if kind == "client" {
			svc = curlSvc
		}
		checkExchanges(t, svc, kind, port, exs) // exact count, url.path, method, user agent
		got := waitSpans(t, Query{Service: svc, Kind: kind}, len(exs), spanTimeout)
		for _, s := range got {
			for k := range s.Tags {
				if strings.HasPrefix(k, "url.query") || strings.HasPrefix(k, "http.request.header") ||
					strings.HasPrefix(k, "http.response.header") || strings.HasPrefix(k, "url.full") {
					t.Errorf("%s span %q has %s = %s: weft exports no query string, URL or header map", kind, s.Name, k, s.Tags[k])
				}
			}
		}
		spans = append(spans, got...)
	}
	if t.Failed() {
		t.FailNow()
	}
	requireNoLeak(t, sec, spans)
}

// TestPrivacyPostgres: psql sends secrets to PostgreSQL in string,
// escape-string and dollar-quoted literals and in comments, and the
// server sends one back in a row. The spans are exactly one per
// statement on each side, db.query.text has every literal replaced by ?
// and no comment, and no secret appears anywhere in Jaeger or in weft's
// log (weft runs without --db-query-literals).
func TestPrivacyPostgres(t *testing.T) {
	needWeft(t)
	sec := newSecrets("INSERT literal", "WHERE literal", "block comment", "line comment", "E'' literal", "dollar-quoted literal")
	pg := startPostgres(t, "-c", "log_statement=all") // the log proves what went over the wire
	db := pg.createDB(t)
	pg.exec(t, db, "CREATE TABLE vault (owner text PRIMARY KEY, secret text)")
	svc := uniqueName("e2e-psql")
	stmts := []struct {
		sql string
		pgStmt
	}{
		{"INSERT INTO vault (owner, secret) VALUES ('alice', '" + sec["INSERT literal"] + "');",
			pgStmt{"INSERT", "INSERT INTO vault (owner, secret) VALUES (?, ?);", -1, ""}},
		// The row sent back carries the INSERT's secret: row data is never exported.
		{"SELECT secret FROM vault WHERE owner = 'alice';",
			pgStmt{"SELECT", "SELECT secret FROM vault WHERE owner = ?;", 1, ""}},
		{"SELECT owner FROM vault WHERE secret = '" + sec["WHERE literal"] + "' /* " + sec["block comment"] + " */;",
			pgStmt{"SELECT", "SELECT owner FROM vault WHERE secret = ?  ;", 0, ""}},
		{"UPDATE vault SET secret = E'" + sec["E'' literal"] + "\\n' WHERE owner = 'alice'; -- " + sec["line comment"],
			pgStmt{"UPDATE", "UPDATE vault SET secret = ? WHERE owner = ?; ", -1, ""}},
		{"SELECT length($tag$" + sec["dollar-quoted literal"] + "$tag$);",
			pgStmt{"SELECT", "SELECT length(?);", 1, ""}},
	}
	var want []pgStmt
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"}
	for _, s := range stmts {
		args = append(args, "-c", s.sql) // one Query message per -c
		want = append(want, s.pgStmt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", append(args, pg.dsn(db, "disable"))...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME="+svc, "PGGSSENCMODE=disable")
	from := time.Now()
	out, err := cmd.CombinedOutput()
	to := time.Now()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	// Every secret reached the server (psql strips nothing from -c).
	if logged, err := os.ReadFile(pg.logPath); err != nil {
		t.Fatal(err)
	} else if n := len(sec.leaks(logged)); n != len(sec) {
		t.Fatalf("the server logged %d of the %d secrets sent (%q), the test expects all:\n%s", n, len(sec), sec.leaks(logged), tail(pg.logPath, 20))
	}
	var spans []Span
	for _, kind := range []string{"client", "server"} {
		q, name := Query{Service: svc, Kind: kind}, svc
		if kind == "server" {
			q, name = Query{Service: postgresService, Kind: kind, Tags: map[string]any{attrDBNamespace: db}}, postgresService
		}
		got := waitSpans(t, q, len(want), spanTimeout)
		checkPgSpans(t, kind, got, func(i int) Want { return pgWant(name, kind, db, pg.port, want[i], from, to) }, want)
		spans = append(spans, got...)
	}
	if t.Failed() {
		t.FailNow()
	}
	requireNoLeak(t, sec, spans)
}
