package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfSignedCert writes a fresh self-signed certificate and key for
// 127.0.0.1/localhost into dir and returns their paths.
func selfSignedCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "weft-e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = writeFile(t, dir, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPath = writeFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certPath, keyPath
}

// pythonTLSServer is python's http.server (HTTP/1.1) behind the ssl module,
// which uses the system's OpenSSL: the bytes on its socket are ciphertext.
const pythonTLSServer = `import http.server, ssl, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: H(*a, directory=sys.argv[1]))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("port", srv.server_address[1], flush=True)
srv.serve_forever()
`

// startPythonTLSServer serves dir over HTTPS and returns its port and process.
func startPythonTLSServer(t *testing.T, svc, dir, cert, key string) (int, *process) {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("find python3: %v", err)
	}
	lines := make(chan string, 16)
	p := startTestProc(t, "python-https-server", childEnv("OTEL_SERVICE_NAME="+svc), lines,
		strings.TrimSpace(string(out)), "-u", "-c", pythonTLSServer, dir, cert, key)
	portRE := regexp.MustCompile(`port (\d+)`)
	l := waitLine(t, p, lines, 15*time.Second, portRE.MatchString)
	port, _ := strconv.Atoi(portRE.FindStringSubmatch(l)[1])
	if err := waitUntil(5*time.Second, p, func() error { return tcpReady(fmt.Sprintf("127.0.0.1:%d", port)) }); err != nil {
		t.Fatalf("python https server: %v", err)
	}
	return port, p
}

// curlHTTPS runs curl -k against base for the files and checks curl
// stayed on one connection; the last path should be a 404 (python closes
// the connection after an error).
func curlHTTPS(t *testing.T, port int, paths []string, statuses []int) []exchange {
	t.Helper()
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	var ops []curlOp
	exs := make([]exchange, len(paths))
	for i, p := range paths {
		ops = append(ops, curlOp{url: base + p, args: []string{"-k", "--http1.1"}})
		exs[i] = exchange{method: "GET", path: p, name: "GET " + p, status: statuses[i], scheme: "https"}
	}
	res, from, to := runCurl(t, childEnv(), ops...)
	requireOneConnection(t, res)
	return curlExchanges(t, res, from, to, needCurlUA(t), exs)
}

// TestTLSPythonCurl: curl -k to python's HTTPS server, both using OpenSSL:
// the uprobes give the plaintext, so each request has a SERVER span from
// python and a CLIENT span from curl with url.scheme https, the right path
// and status, although the socket only carried ciphertext.
func TestTLSPythonCurl(t *testing.T) {
	needWeft(t)
	dir := t.TempDir()
	cert, key := selfSignedCert(t, t.TempDir())
	tok := token(8)
	writeFile(t, dir, "tls-"+tok+".txt", []byte("over tls\n"))
	svc := uniqueName("e2e-pytls")
	port, _ := startPythonTLSServer(t, svc, dir, cert, key)
	exs := curlHTTPS(t, port, []string{"/tls-" + tok + ".txt", "/tls-missing-" + tok}, []int{200, 404})
	checkExchanges(t, svc, "server", port, exs)
	checkExchangesByPath(t, "curl", "client", port, exs)
}

// TestTLSLibraryReuse: a process that maps libssl exits and a new one maps
// the same library: uprobes follow the file, so the second server (started
// after weft was ready, as every process here is) is traced just the same.
func TestTLSLibraryReuse(t *testing.T) {
	needWeft(t)
	dir := t.TempDir()
	cert, key := selfSignedCert(t, t.TempDir())
	for round := 1; round <= 2; round++ {
		tok := token(8)
		writeFile(t, dir, "r"+strconv.Itoa(round)+"-"+tok+".txt", []byte("round\n"))
		svc := uniqueName(fmt.Sprintf("e2e-pytls-r%d", round))
		port, p := startPythonTLSServer(t, svc, dir, cert, key)
		exs := curlHTTPS(t, port, []string{"/r" + strconv.Itoa(round) + "-" + tok + ".txt"}, []int{200})
		checkExchanges(t, svc, "server", port, exs)
		checkExchangesByPath(t, "curl", "client", port, exs)
		if err, timedOut := p.stop(syscall.SIGTERM, 5*time.Second); timedOut {
			t.Fatalf("python https server did not stop: %v", err)
		}
	}
}

// TestTLSNginx: curl -k to nginx with ssl on (OpenSSL from Debian).
func TestTLSNginx(t *testing.T) {
	needWeft(t)
	root := t.TempDir()
	tok := token(8)
	writeFile(t, root, "n-"+tok+".txt", []byte("nginx over tls\n"))
	cert, key := selfSignedCert(t, t.TempDir())
	svc := uniqueName("e2e-nginx-tls")
	port := startNginxTLS(t, childEnv("OTEL_SERVICE_NAME="+svc), root, cert, key)
	exs := curlHTTPS(t, port, []string{"/n-" + tok + ".txt", "/n-missing-" + tok}, []int{200, 404})
	checkExchanges(t, svc, "server", port, exs)
	checkExchangesByPath(t, "curl", "client", port, exs)
}

// TestTLSHTTP2Nginx: curl --http2 to nginx over TLS (ALPN h2): the
// plaintext the uprobes give starts with the HTTP/2 preface, so both spans
// are HTTP/2 spans with url.scheme https and network.protocol.version 2.
func TestTLSHTTP2Nginx(t *testing.T) {
	needWeft(t)
	root := t.TempDir()
	tok := token(8)
	writeFile(t, root, "h2-"+tok+".txt", []byte("h2 over tls\n"))
	cert, key := selfSignedCert(t, t.TempDir())
	svc, curlSvc := uniqueName("e2e-nginx-h2"), uniqueName("e2e-curl-h2")
	port := startNginxTLS(t, childEnv("OTEL_SERVICE_NAME="+svc), root, cert, key, "http2")
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	exs := []exchange{
		{method: "GET", path: "/h2-" + tok + ".txt", status: 200, scheme: "https"},
		{method: "GET", path: "/h2-missing-" + tok, status: 404, scheme: "https"},
	}
	var ops []curlOp
	for i := range exs {
		exs[i].name = "GET " + exs[i].path
		ops = append(ops, curlOp{url: base + exs[i].path, args: []string{"-k", "--http2"}})
	}
	res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), ops...)
	for _, r := range res {
		if !strings.HasPrefix(r.headers, "HTTP/2 ") {
			t.Fatalf("curl did not speak HTTP/2 over TLS; response headers:\n%s", r.headers)
		}
	}
	exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)
	for _, side := range []string{"server", "client"} {
		q := Query{Service: svc, Kind: side}
		if side == "client" {
			q.Service = curlSvc
		}
		spans := waitSpans(t, q, len(exs), spanTimeout)
		sortSpans(spans, []string{exs[0].path, exs[1].path})
		for i, ex := range exs {
			w := serverWant(q.Service, port, ex)
			if side == "client" {
				w = clientWant(q.Service, port, ex)
			}
			w.Attrs[attrProtoVersion] = "2"
			delete(w.Attrs, attrPeerPort) // curl may open a second connection; the port is checked by the h1 tests
			checkSpan(t, fmt.Sprintf("%s span %d (%s)", side, i+1, ex.path), spans[i], w)
		}
	}
}

// startNginxTLS is startNginx (single process) with ssl (and the listen
// options in extra, such as http2) on the listener.
func startNginxTLS(t *testing.T, env []string, root, cert, key string, extra ...string) int {
	t.Helper()
	return runNginx(t, "nginx-tls", env, func(prefix string, port int) []byte {
		conf := string(fmt.Appendf(nil, nginxConfig, prefix, port, root, "off"))
		listen := fmt.Sprintf("listen 127.0.0.1:%d;", port)
		if !strings.Contains(conf, listen) {
			t.Fatalf("nginx config has no %q", listen)
		}
		opts := strings.Join(append([]string{"ssl"}, extra...), " ")
		return []byte(strings.Replace(conf, listen, fmt.Sprintf("listen 127.0.0.1:%d %s;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;", port, opts, cert, key), 1))
	})
}

// TestTLSPostgres: psql with sslmode=require against a PostgreSQL started
// with ssl=on. After SSLRequest 'S' the socket carries TLS; libpq and the
// backend both use OpenSSL, so the uprobes give the wire protocol in
// plaintext and both sides get their statement spans.
func TestTLSPostgres(t *testing.T) {
	needWeft(t)
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgres user the server runs as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: its parent is root's and closed to the postgres user.
	certDir, err := os.MkdirTemp("", "weft-e2e-pgtls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(certDir) })
	cert, key := selfSignedCert(t, certDir)
	for _, f := range []string{certDir, cert, key} {
		if err := os.Chown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	pg := startPostgres(t, "-c", "ssl=on", "-c", "ssl_cert_file="+cert, "-c", "ssl_key_file="+key)
	db := pg.createDB(t)
	svc := uniqueName("e2e-psql-tls")
	want := []pgStmt{
		{"SELECT", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();", 1, ""},
		{"SELECT", "SELECT ?/?;", -1, "22012"},
	}
	script := "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\nSELECT 1/0;\n"
	file := writeFile(t, t.TempDir(), "script.sql", []byte(script))
	out := filepath.Join(t.TempDir(), "out.txt")
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-o", out, "-f", file, pg.dsn(db, "require"))
	cmd.Env = childEnv("OTEL_SERVICE_NAME="+svc, "PGGSSENCMODE=disable")
	from := time.Now()
	msg, err := cmd.CombinedOutput()
	to := time.Now()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, msg)
	}
	if got, _ := os.ReadFile(out); strings.TrimSpace(string(got)) != "t" {
		t.Fatalf("psql's connection was not TLS (pg_stat_ssl.ssl = %q)", got)
	}
	for _, kind := range []string{"client", "server"} {
		q := Query{Service: svc, Kind: kind}
		name := svc
		if kind == "server" {
			q = Query{Service: postgresService, Kind: kind, Tags: map[string]any{attrDBNamespace: db}}
			name = postgresService
		}
		spans := waitSpans(t, q, len(want), spanTimeout)
		checkPgSpans(t, kind, spans, func(i int) Want { return pgWant(name, kind, db, pg.port, want[i], from, to) }, want)
	}
}
