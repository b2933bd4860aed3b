package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startGoServer starts testdata/gosrv with OTEL_SERVICE_NAME=svc and returns
// its port; it is listening when this returns.
func startGoServer(t *testing.T, svc string) int {
	t.Helper()
	lines := make(chan string, 16)
	p := startTestProc(t, "gosrv", childEnv("OTEL_SERVICE_NAME="+svc), lines, suite.bin["gosrv"])
	l := waitLine(t, p, lines, 10*time.Second, func(l string) bool {
		_, err := strconv.Atoi(strings.TrimSpace(l))
		return err == nil
	})
	port, _ := strconv.Atoi(strings.TrimSpace(l))
	return port
}

// goResult is one line of goclient's output: one exchange.
type goResult struct {
	Method    string `json:"method"`
	Path      string `json:"path"` // request URI, with the query
	Status    int    `json:"status"`
	LocalPort int    `json:"local_port"`
	Reused    bool   `json:"reused"`
	StartNs   int64  `json:"start_ns"`
	EndNs     int64  `json:"end_ns"`
	BodyBytes int64  `json:"body_bytes"`
}

// runGoClient runs testdata/goclient with OTEL_SERVICE_NAME=svc against
// port and returns one result per request, failing the test if it fails.
func runGoClient(t *testing.T, svc string, port int, mode string, reqs ...string) []goResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-base", fmt.Sprintf("http://127.0.0.1:%d", port), "-mode", mode}, reqs...)
	cmd := exec.CommandContext(ctx, suite.bin["goclient"], args...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("goclient %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, &stdout, &stderr)
	}
	var res []goResult
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r goResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("goclient output %q: %v", line, err)
		}
		res = append(res, r)
	}
	if len(res) != len(reqs) {
		t.Fatalf("goclient printed %d results for %d requests:\n%s", len(res), len(reqs), &stdout)
	}
	return res
}

// curlOp is one transfer of a curl command: a URL and its own options.
type curlOp struct {
	url  string
	args []string
}

// curlResult is what curl reported for one transfer.
type curlResult struct {
	status       int
	numConnects  int // 1: opened a connection, 0: reused one
	localPort    int
	sizeDownload int64
	body         []byte
	headers      string // response headers (-D)
}

// runCurl runs ONE curl command doing ops in order (separated by --next, so
// each has its own options while curl keeps reusing its connection) and
// returns what curl reported for each, with the window around the command.
// env is the environment of curl (childEnv(...)).
func runCurl(t *testing.T, env []string, ops ...curlOp) (res []curlResult, from, to time.Time) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	for i, op := range ops {
		if i > 0 {
			args = append(args, "--next")
		}
		args = append(args, "-sS", "--max-time", "20",
			"-o", filepath.Join(dir, fmt.Sprintf("body-%d", i)),
			"-D", filepath.Join(dir, fmt.Sprintf("headers-%d", i)),
			"-w", "%{http_code} %{num_connects} %{local_port} %{size_download}\n")
		args = append(args, op.args...)
		args = append(args, op.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	from = time.Now()
	err := cmd.Run()
	to = time.Now()
	if err != nil {
		t.Fatalf("curl %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(ops) {
		t.Fatalf("curl printed %d result lines for %d transfers:\n%s", len(lines), len(ops), &stdout)
	}
	for i, line := range lines {
		var r curlResult
		if _, err := fmt.Sscanf(line, "%d %d %d %d", &r.status, &r.numConnects, &r.localPort, &r.sizeDownload); err != nil {
			t.Fatalf("curl result line %q: %v", line, err)
		}
		r.body, _ = os.ReadFile(filepath.Join(dir, fmt.Sprintf("body-%d", i)))
		h, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("headers-%d", i)))
		r.headers = string(h)
		res = append(res, r)
	}
	return res, from, to
}

// requireOneConnection fails the test unless curl made all transfers on
// one connection (the exchanges must share a keep-alive connection).
func requireOneConnection(t *testing.T, res []curlResult) {
	t.Helper()
	for i, r := range res {
		wantConnects := 0
		if i == 0 {
			wantConnects = 1
		}
		if r.numConnects != wantConnects || r.localPort != res[0].localPort {
			t.Fatalf("curl did not make its %d transfers on one keep-alive connection (transfer %d: num_connects %d, local port %d; first local port %d): %+v",
				len(res), i+1, r.numConnects, r.localPort, res[0].localPort, res)
		}
	}
}

// curlUserAgent is curl's default User-Agent, "curl/VERSION".
var curlUserAgent = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("curl", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("curl --version: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "curl" {
		return "", fmt.Errorf("curl --version: unexpected output %q", out)
	}
	return "curl/" + f[1], nil
})

func needCurlUA(t *testing.T) string {
	t.Helper()
	ua, err := curlUserAgent()
	if err != nil {
		t.Fatal(err)
	}
	return ua
}

// startPythonServer serves dir with python's http.server speaking HTTP/1.1
// (keep-alive) as service svc and returns its port.
func startPythonServer(t *testing.T, svc, dir string) int {
	t.Helper()
	// Run the interpreter itself, not a wrapper such as a pyenv shim.
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("find python3: %v", err)
	}
	python := strings.TrimSpace(string(out))
	lines := make(chan string, 16)
	p := startTestProc(t, "python-http-server", childEnv("OTEL_SERVICE_NAME="+svc), lines,
		python, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "--protocol", "HTTP/1.1", "0")
	portRE := regexp.MustCompile(`port (\d+)`)
	l := waitLine(t, p, lines, 15*time.Second, portRE.MatchString)
	port, _ := strconv.Atoi(portRE.FindStringSubmatch(l)[1])
	if err := waitUntil(5*time.Second, p, func() error { return tcpReady(fmt.Sprintf("127.0.0.1:%d", port)) }); err != nil {
		t.Fatalf("python http.server: %v", err)
	}
	return port
}

// nginxConfig runs nginx in the foreground, every file in the prefix
// directory (%[1]s), serving %[3]s on 127.0.0.1:%[2]d with sendfile;
// master_process is %[4]s. "env" keeps OTEL_SERVICE_NAME in the environment
// of the process serving requests (nginx clears it otherwise).
const nginxConfig = `daemon off;
master_process %[4]s;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
env OTEL_SERVICE_NAME;
events {
	worker_connections 64;
}
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	sendfile on;
	keepalive_timeout 60s;
	default_type application/octet-stream;
	types {
		text/plain txt;
	}
	server {
		listen 127.0.0.1:%[2]d;
		server_name localhost;
		root %[3]s;
	}
}
`

// startNginx serves root with nginx and returns its port. With master,
// requests are served by a worker process the master forks (as in
// production); without, by the process started. env is nginx's environment.
func startNginx(t *testing.T, env []string, master bool, root string) int {
	t.Helper()
	onOff := "off"
	if master {
		onOff = "on"
	}
	return runNginx(t, "nginx", env, func(prefix string, port int) []byte {
		return fmt.Appendf(nil, nginxConfig, prefix, port, root, onOff)
	})
}

// runNginx starts nginx (named name in the test's logs) with the
// configuration conf writes for its prefix directory and a free port, and
// returns the port once it accepts connections.
func runNginx(t *testing.T, name string, env []string, conf func(prefix string, port int) []byte) int {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nginx is not installed (apt-get install nginx-light): %v", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, conf(prefix, ports[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(prefix, "error.log")
	p := startTestProc(t, name, env, nil, bin, "-p", prefix, "-c", confPath, "-e", errLog)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s error log:\n%s", name, tail(errLog, 20))
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := waitUntil(10*time.Second, p, func() error { return tcpReady(addr) }); err != nil {
		t.Fatalf("%s on %s: %v\nerror log:\n%s", name, addr, err, tail(errLog, 20))
	}
	return ports[0]
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
