// Command goclient is the Go HTTP client the e2e tests trace. Each argument
// is one request, "METHOD PATH" or "METHOD PATH BODYBYTES", sent in order to
// -base. For each response it prints one JSON line on stdout: the request,
// the status, the local port of the connection and the wall-clock window
// around the exchange (from before the request is sent to after the
// response body is read).
//
// -mode http (default) uses one net/http client, so requests share a
// keep-alive connection. -mode pipeline opens one TCP connection, writes
// all requests with a single write, then reads the responses in order.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"time"
)

type result struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	LocalPort int    `json:"local_port"`
	Reused    bool   `json:"reused"`
	StartNs   int64  `json:"start_ns"`
	EndNs     int64  `json:"end_ns"`
	BodyBytes int64  `json:"body_bytes"`
}

func main() {
	base := flag.String("base", "", "server base URL, http://127.0.0.1:PORT")
	mode := flag.String("mode", "http", "http or pipeline")
	ua := flag.String("ua", "weft-e2e-goclient/1", "User-Agent")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("goclient: ")
	var reqs []*http.Request
	for _, arg := range flag.Args() {
		req, err := parse(*base, arg)
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("User-Agent", *ua)
		reqs = append(reqs, req)
	}
	var err error
	switch *mode {
	case "http":
		err = sequential(reqs)
	case "pipeline":
		err = pipeline(*base, reqs)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func parse(base, arg string) (*http.Request, error) {
	f := strings.Fields(arg)
	if len(f) != 2 && len(f) != 3 {
		return nil, fmt.Errorf("request %q: want METHOD PATH [BODYBYTES]", arg)
	}
	var body io.Reader
	if len(f) == 3 {
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("request %q: %w", arg, err)
		}
		body = bytes.NewReader(bytes.Repeat([]byte("x"), n))
	}
	return http.NewRequest(f[0], base+f[1], body)
}

func sequential(reqs []*http.Request) error {
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
	}
	for _, req := range reqs {
		var r result
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			r.LocalPort = ci.Conn.LocalAddr().(*net.TCPAddr).Port
			r.Reused = ci.Reused
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		end := time.Now()
		if err != nil {
			return fmt.Errorf("%s %s: read body: %w", req.Method, req.URL, err)
		}
		r.Method, r.Path, r.Status, r.BodyBytes = req.Method, req.URL.RequestURI(), resp.StatusCode, n
		r.StartNs, r.EndNs = start.UnixNano(), end.UnixNano()
		emit(r)
	}
	return nil
}

func pipeline(base string, reqs []*http.Request) error {
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var all bytes.Buffer
	for _, req := range reqs {
		if err := req.Write(&all); err != nil {
			return err
		}
	}
	local := conn.LocalAddr().(*net.TCPAddr).Port
	start := time.Now()
	if _, err := conn.Write(all.Bytes()); err != nil { // one write, all requests
		return err
	}
	br := bufio.NewReader(conn)
	for i, req := range reqs {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return fmt.Errorf("response %d: %w", i+1, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		end := time.Now()
		if err != nil {
			return fmt.Errorf("response %d: read body: %w", i+1, err)
		}
		emit(result{
			Method: req.Method, Path: req.URL.RequestURI(), Status: resp.StatusCode,
			LocalPort: local, Reused: i > 0, StartNs: start.UnixNano(), EndNs: end.UnixNano(), BodyBytes: n,
		})
	}
	return nil
}

func emit(r result) {
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
}
