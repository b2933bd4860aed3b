// Command record captures the fixtures in ../: what real clients (curl, Go
// net/http, a raw socket) and servers (nginx, python http.server, Go
// net/http) send each other over one TCP connection, through a loopback
// proxy that logs every read in the order it happened. Run it from the
// repository root, with nginx, curl and python3 installed:
//
//	go run ./protocols/http1/testdata/record -out protocols/http1/testdata
//
// The file format is described in ../README.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weftrace/weft/protocols/recording"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func main() {
	out := flag.String("out", "protocols/http1/testdata", "directory for the .rec files")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	dir, err := os.MkdirTemp("", "weft-record")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "www")
	if err := site(root); err != nil {
		return fmt.Errorf("make site: %w", err)
	}
	nginx, stopNginx, err := startNginx(dir, root)
	if err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	defer stopNginx()
	py10, stop10, err := startPython(root, "HTTP/1.0")
	if err != nil {
		return fmt.Errorf("start python: %w", err)
	}
	defer stop10()
	py11, stop11, err := startPython(root, "HTTP/1.1")
	if err != nil {
		return fmt.Errorf("start python: %w", err)
	}
	defer stop11()
	goSrv, stopGo, err := startGo()
	if err != nil {
		return fmt.Errorf("start go server: %w", err)
	}
	defer stopGo()

	index := filepath.Join(root, "index.html")
	upload := filepath.Join(dir, "upload.bin")
	if err := os.WriteFile(upload, payload(1<<20), 0o644); err != nil {
		return err
	}
	tp := "traceparent: " + traceparent
	scenarios := []struct {
		name     string
		upstream string
		client   func(addr string) error
	}{
		{"curl-nginx-keepalive", nginx, curl("-H", tp, "-H", "tracestate: weft=1",
			"{}/index.html?x=1", "{}/missing", "{}/big.txt")},
		{"curl-nginx-head-304", nginx, curl("-I", "{}/index.html", "--next", "-z", index, "{}/index.html")},
		{"curl-nginx-gzip-chunked", nginx, curl("--compressed", "{}/text.txt", "{}/text.txt")},
		{"curl-python10", py10, curl("{}/index.html")},
		{"curl-python11-keepalive", py11, curl("{}/index.html", "{}/big.txt", "{}/nope")},
		{"curl-go-expect-100", goSrv, curl("--data-binary", "@"+upload, "-H", "Expect: 100-continue", "{}/upload")},
		{"curl-go-http10-close", goSrv, curl("--http1.0", "{}/stream")},
		{"go-go-keepalive", goSrv, goClient},
		{"raw-nginx-pipelined", nginx, rawPipelined},
	}
	for _, sc := range scenarios {
		cs, err := recording.RecordOne(sc.upstream, sc.client)
		if err != nil {
			return fmt.Errorf("record %s: %w", sc.name, err)
		}
		rec := recording.Format(cs)
		if err := os.WriteFile(filepath.Join(out, sc.name+".rec"), rec, 0o644); err != nil {
			return err
		}
		log.Printf("%s: %d bytes", sc.name, len(rec))
	}
	return nil
}

// payload is n bytes of printable, varied text.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[(i*7+i/37)%37]
	}
	return b
}

func site(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"index.html": []byte("<!doctype html>\n<title>weft</title>\n<p>hello from a fixture</p>\n"),
		"big.txt":    payload(100 << 10),
		"text.txt":   bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 2000),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startNginx(dir, root string) (string, func(), error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	types { text/html html; text/plain txt; }
	server {
		listen %[2]s;
		root %[3]s;
		gzip on;
		gzip_types text/plain;
		gzip_min_length 0;
	}
}
`, dir, addr, root)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	return startProc(addr, "/usr/sbin/nginx", "-c", cf, "-p", dir)
}

func startPython(root, proto string) (string, func(), error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	return startProc(addr, "python3", "-m", "http.server", "--bind", host, "--directory", root, "--protocol", proto, port)
}

// startProc runs a server and waits until addr accepts connections.
func startProc(addr, name string, args ...string) (string, func(), error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("%s never listened on %s", name, addr)
}

func startGo() (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "got %d bytes\n", n)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		// Flushed pieces: chunked for HTTP/1.1, delimited by close for 1.0.
		w.Header().Set("Trailer", "X-Checksum")
		f := w.(http.Flusher)
		for i := range 5 {
			fmt.Fprintf(w, "piece %d %s\n", i, strings.Repeat("z", 3000))
			f.Flush()
		}
		w.Header().Set("X-Checksum", "42")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Shutdown(context.Background()) }, nil
}

// curl runs curl with args, "{}" replaced by the base URL.
func curl(args ...string) func(addr string) error {
	return func(addr string) error {
		a := []string{"-s", "-S", "-o", "/dev/null", "-A", "curl/7.88.1"}
		for _, s := range args {
			if strings.HasPrefix(s, "{}") {
				s = "http://" + addr + s[2:]
			}
			if s == "--next" {
				a = append(a, s, "-s", "-S", "-o", "/dev/null")
				continue
			}
			a = append(a, s)
		}
		out, err := exec.Command("/usr/bin/curl", a...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("curl %v: %w: %s", a, err, out)
		}
		return nil
	}
}

func goClient(addr string) error {
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}}
	defer c.CloseIdleConnections()
	base := "http://" + addr
	do := func(method, path string, body io.Reader, n int64) error {
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			return err
		}
		req.ContentLength = n
		req.Header.Set("traceparent", traceparent)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	// An io.Reader of unknown length makes Go send a chunked body.
	chunked := io.MultiReader(strings.NewReader(strings.Repeat("a", 5000)), strings.NewReader(strings.Repeat("b", 3000)))
	return errors.Join(
		do("GET", "/hello", nil, 0),
		do("POST", "/upload", bytes.NewReader(payload(64<<10)), 64<<10),
		do("POST", "/upload", chunked, -1),
		do("GET", "/stream", nil, 0),
		do("HEAD", "/hello", nil, 0),
		do("GET", "/nothing-here", nil, 0),
	)
}

// rawPipelined writes three requests in one write, then reads until the
// server closes (the last request asks it to).
func rawPipelined(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	host := "Host: " + addr + "\r\n"
	req := "GET /index.html HTTP/1.1\r\n" + host + "User-Agent: raw\r\n\r\n" +
		"HEAD /big.txt HTTP/1.1\r\n" + host + "User-Agent: raw\r\n\r\n" +
		"GET /missing HTTP/1.1\r\n" + host + "User-Agent: raw\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, bufio.NewReader(c))
	return err
}
