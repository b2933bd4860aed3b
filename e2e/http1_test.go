package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
)

const goClientUA = "weft-e2e-goclient/1" // goclient's default -ua

// goExchanges turns goclient results into exchanges, checking first that the
// client saw the statuses the test expects (else the test, not weft, is wrong).
func goExchanges(t *testing.T, res []goResult, want []exchange) []exchange {
	t.Helper()
	for i, r := range res {
		if r.Status != want[i].status {
			t.Fatalf("goclient request %d (%s %s): status %d, the test expects %d", i+1, r.Method, r.Path, r.Status, want[i].status)
		}
		want[i].from, want[i].to = time.Unix(0, r.StartNs), time.Unix(0, r.EndNs)
		want[i].clientPort = r.LocalPort
		want[i].userAgent = goClientUA
	}
	return want
}

// curlExchanges fills the curl command's window, connection and User-Agent
// into want, checking first that curl saw the statuses the test expects.
func curlExchanges(t *testing.T, res []curlResult, from, to time.Time, ua string, want []exchange) []exchange {
	t.Helper()
	for i, r := range res {
		if r.status != want[i].status {
			t.Fatalf("curl transfer %d (%s %s): status %d, the test expects %d", i+1, want[i].method, want[i].path, r.status, want[i].status)
		}
		want[i].from, want[i].to = from, to
		want[i].clientPort = r.localPort
		want[i].userAgent = ua
	}
	return want
}

// TestGoServerGoClient: a Go net/http client makes requests on one keep-alive
// connection to a Go net/http server; each yields one SERVER span (server's
// service) and one CLIENT span (client's service) with the path template as
// name, the semconv attributes, the status (server: Error for 5xx only;
// client: for 4xx and 5xx) and times inside the window the client measured
// around that request.
func TestGoServerGoClient(t *testing.T) {
	needWeft(t)
	srvSvc, cliSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-goclient")
	port := startGoServer(t, srvSvc)
	reqs := []struct {
		arg string
		ex  exchange
	}{
		{"GET /items/1", exchange{method: "GET", path: "/items/1", name: "GET /items/{id}", status: 200}},
		{"GET /items/42?verbose=1", exchange{method: "GET", path: "/items/42", name: "GET /items/{id}", status: 200}},
		{"GET /items/6ba7b810-9dad-11d1-80b4-00c04fd430c8", exchange{method: "GET", path: "/items/6ba7b810-9dad-11d1-80b4-00c04fd430c8", name: "GET /items/{id}", status: 200}},
		{"GET /items/507f1f77bcf86cd799439011", exchange{method: "GET", path: "/items/507f1f77bcf86cd799439011", name: "GET /items/{id}", status: 200}},
		{"GET /status/201", exchange{method: "GET", path: "/status/201", name: "GET /status/{id}", status: 201}},
		{"GET /status/404", exchange{method: "GET", path: "/status/404", name: "GET /status/{id}", status: 404}},
		{"GET /status/503", exchange{method: "GET", path: "/status/503", name: "GET /status/{id}", status: 503}},
		{"POST /upload 4096", exchange{method: "POST", path: "/upload", name: "POST /upload", status: 200}},
		{"GET /chunked", exchange{method: "GET", path: "/chunked", name: "GET /chunked", status: 200}},
	}
	var args []string
	var exs []exchange
	for _, r := range reqs {
		args = append(args, r.arg)
		exs = append(exs, r.ex)
	}
	res := runGoClient(t, cliSvc, port, "http", args...)
	exs = goExchanges(t, res, exs)
	checkExchanges(t, srvSvc, "server", port, exs)
	checkExchanges(t, cliSvc, "client", port, exs)
}

// TestCurlPythonKeepAlive: curl fetches several URLs from python's
// http.server (HTTP/1.1) in one command, on one keep-alive connection, the
// last a 404: one server span and one curl client span per request; the 404
// is Error on curl's span and not on the server's. curl runs without
// OTEL_SERVICE_NAME, so its spans are named after its executable: "curl".
func TestCurlPythonKeepAlive(t *testing.T) {
	needWeft(t)
	pySvc := uniqueName("e2e-python")
	dir := t.TempDir()
	tok := token(8)
	writeFile(t, dir, "a-"+tok+".txt", []byte("first file\n"))
	writeFile(t, dir, "b-"+tok+".json", []byte(`{"second": "file"}`+"\n"))
	port := startPythonServer(t, pySvc, dir)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// python's send_error closes the connection: the 404 goes last.
	exs := []exchange{
		{method: "GET", path: "/a-" + tok + ".txt", status: 200},
		{method: "GET", path: "/b-" + tok + ".json", status: 200},
		{method: "GET", path: "/missing-" + tok + ".txt", status: 404},
	}
	var ops []curlOp
	for i := range exs {
		exs[i].name = "GET " + exs[i].path
		ops = append(ops, curlOp{url: base + exs[i].path})
	}
	res, from, to := runCurl(t, childEnv(), ops...)
	requireOneConnection(t, res)
	exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)

	checkExchanges(t, pySvc, "server", port, exs) // the 404 is not Error here
	// "curl" is shared by every curl run without OTEL_SERVICE_NAME: select
	// this test's spans by their unique paths.
	checkExchangesByPath(t, "curl", "client", port, exs) // the 404 is Error here
}

// TestNginx: curl fetches static files from nginx (sendfile on) on one
// keep-alive connection, among them a 1 MiB file nginx sends with
// sendfile(2), whose bytes the agent never sees in a write, and a 404; the
// spans after the big file prove the agent kept its place in the stream.
//
// single-process: master_process off, OTEL_SERVICE_NAME set (and kept by
// "env OTEL_SERVICE_NAME;"), so the spans carry it.
//
// master-worker: the production shape, a forked worker process serves the
// requests. No OTEL_SERVICE_NAME: nginx's process title overwrites the
// environment block of the master and the workers (/proc/PID/environ reads
// back as zeros), so a name set there cannot be observed; the spans carry
// the executable name, "nginx", and are selected by their unique paths.
func TestNginx(t *testing.T) {
	needWeft(t)
	for _, tc := range []struct {
		name   string
		master bool
	}{
		{"single-process", false},
		{"master-worker", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, curlSvc, env := uniqueName("e2e-nginx"), uniqueName("e2e-curl"), childEnv()
			if tc.master {
				svc = "nginx"
			} else {
				env = childEnv("OTEL_SERVICE_NAME=" + svc)
			}
			tok := token(8)
			root := t.TempDir()
			big := make([]byte, 1<<20)
			rand.Read(big)
			exs := []exchange{
				{method: "GET", path: "/index-" + tok + ".txt", status: 200},
				{method: "GET", path: "/big-" + tok + ".bin", status: 200},
				{method: "GET", path: "/missing-" + tok + ".txt", status: 404},
				{method: "GET", path: "/small-" + tok + ".txt", status: 200},
			}
			writeFile(t, root, exs[0].path[1:], []byte("hello from nginx\n"))
			writeFile(t, root, exs[1].path[1:], big)
			writeFile(t, root, exs[3].path[1:], []byte("small\n"))
			port := startNginx(t, env, tc.master, root)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			var ops []curlOp
			for i := range exs {
				exs[i].name = "GET " + exs[i].path
				ops = append(ops, curlOp{url: base + exs[i].path})
			}
			res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), ops...)
			requireOneConnection(t, res)
			if !bytes.Equal(res[1].body, big) {
				t.Fatalf("nginx served %d bytes of %s, want the 1 MiB file", len(res[1].body), exs[1].path)
			}
			exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)
			checkExchangesByPath(t, svc, "server", port, exs)
			checkExchanges(t, curlSvc, "client", port, exs)
		})
	}
}

// TestPipelined: a client (goclient -mode pipeline, a separate process)
// writes three requests to the Go server in ONE write on one connection,
// then reads the three responses: three server spans and three client spans,
// in request order, each with its own path and status.
func TestPipelined(t *testing.T) {
	needWeft(t)
	srvSvc, cliSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-pipeline")
	port := startGoServer(t, srvSvc)
	res := runGoClient(t, cliSvc, port, "pipeline", "GET /items/101", "GET /status/404", "GET /items/103")
	exs := goExchanges(t, res, []exchange{
		{method: "GET", path: "/items/101", name: "GET /items/{id}", status: 200},
		{method: "GET", path: "/status/404", name: "GET /status/{id}", status: 404},
		{method: "GET", path: "/items/103", name: "GET /items/{id}", status: 200},
	})
	checkExchanges(t, srvSvc, "server", port, exs)
	checkExchanges(t, cliSvc, "client", port, exs)
}

// TestChunkedResponse: curl gets /chunked (Transfer-Encoding: chunked) and
// then another URL on the same connection: both exchanges are right, which
// proves the chunked body was skipped exactly.
func TestChunkedResponse(t *testing.T) {
	needWeft(t)
	srvSvc, curlSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-curl")
	port := startGoServer(t, srvSvc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	exs := []exchange{
		{method: "GET", path: "/chunked", name: "GET /chunked", status: 200},
		{method: "GET", path: "/items/77", name: "GET /items/{id}", status: 200},
	}
	res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), curlOp{url: base + exs[0].path}, curlOp{url: base + exs[1].path})
	requireOneConnection(t, res)
	if !strings.Contains(strings.ToLower(res[0].headers), "transfer-encoding: chunked") {
		t.Fatalf("/chunked was not sent chunked; response headers:\n%s", res[0].headers)
	}
	if want := "chunk 1 of 5\nchunk 2 of 5\nchunk 3 of 5\nchunk 4 of 5\nchunk 5 of 5\n"; string(res[0].body) != want {
		t.Fatalf("/chunked body %q, want %q", res[0].body, want)
	}
	exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)
	checkExchanges(t, srvSvc, "server", port, exs)
	checkExchanges(t, curlSvc, "client", port, exs)
}

// TestLargeUpload: curl POSTs a 1 MiB body to /upload (far more than the
// agent captures per syscall), then GETs another URL on the same connection:
// both exchanges are right. Once plainly, once with "Expect: 100-continue",
// where the server sends an interim 100 response before the final one.
func TestLargeUpload(t *testing.T) {
	needWeft(t)
	body := make([]byte, 1<<20)
	rand.Read(body)
	file := writeFile(t, t.TempDir(), "upload.bin", body)
	for _, tc := range []struct {
		name, expect string
	}{
		{"plain", "Expect:"}, // an empty value removes curl's own Expect header
		{"expect-100-continue", "Expect: 100-continue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvSvc, curlSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-curl")
			port := startGoServer(t, srvSvc)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			exs := []exchange{
				{method: "POST", path: "/upload", name: "POST /upload", status: 200},
				{method: "GET", path: "/items/88", name: "GET /items/{id}", status: 200},
			}
			res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc),
				curlOp{url: base + exs[0].path, args: []string{"--data-binary", "@" + file, "-H", "Content-Type: application/octet-stream", "-H", tc.expect}},
				curlOp{url: base + exs[1].path})
			requireOneConnection(t, res)
			if want := fmt.Sprintf(`{"bytes":%d}`, len(body)); strings.TrimSpace(string(res[0].body)) != want {
				t.Fatalf("/upload answered %q, want %s", res[0].body, want)
			}
			if got100 := strings.Contains(res[0].headers, " 100 Continue"); got100 != (tc.expect != "Expect:") {
				t.Fatalf("interim 100 Continue response seen: %v, the test expects %v; response headers:\n%s", got100, !got100, res[0].headers)
			}
			exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)
			checkExchanges(t, srvSvc, "server", port, exs)
			checkExchanges(t, curlSvc, "client", port, exs)
		})
	}
}
