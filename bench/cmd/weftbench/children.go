package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/weftrace/weft/bench"
	"github.com/weftrace/weft/bench/load"
)

// The driver re-runs its own binary for the programs weft traces, so each
// is a process of its own (weft sees the load generator's and the
// server's ends apart, and never the driver's bookkeeping in theirs).

// subcommand runs one of them when args name it; ok is false otherwise.
func subcommand(args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "http-server":
		return true, httpServer(args[1:])
	case "grpc-server":
		return true, grpcServer(args[1:])
	case "load-http", "load-grpc":
		return true, loadMain(args[0], args[1:])
	}
	return false, nil
}

// httpServer is the Go net/http server: GET /items/{id} answers a small
// JSON object.
func httpServer(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: weftbench http-server host:port")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "name": "item " + r.PathValue("id")}) // the client may be gone
	})
	return http.ListenAndServe(args[0], mux)
}

func grpcServer(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: weftbench grpc-server host:port")
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	return load.GRPCServe(ln)
}

// loadMain runs a load generator and prints its load.Result as JSON.
func loadMain(kind string, args []string) error {
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	addr := fs.String("addr", "", "server host:port")
	path := fs.String("path", "/", "HTTP path")
	var cfg load.Config
	fs.IntVar(&cfg.Conns, "conns", 32, "connections (HTTP) or concurrent calls (gRPC)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests per second, 0 = closed loop")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Wait for the driver's word: weft's work on a new process (reading
	// a Go binary's symbols) is over by then and not counted as load.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start line on stdin: %w", err)
	}
	var res load.Result
	var err error
	if kind == "load-http" {
		res, err = load.HTTP(*addr, *path, cfg)
	} else {
		res, err = load.GRPC(*addr, cfg)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(&res)
}

// runLoad runs a load generator child and reads its result; ready is
// called once the child exists, before it sends anything.
func runLoad(kind string, port int, cfg load.Config, path string, ready func()) (loadOut, error) {
	self, err := os.Executable()
	if err != nil {
		return loadOut{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+60*time.Second)
	defer cancel()
	args := []string{kind, "-addr", "127.0.0.1:" + strconv.Itoa(port), "-conns", strconv.Itoa(cfg.Conns),
		"-rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64), "-duration", cfg.Duration.String()}
	if path != "" {
		args = append(args, "-path", path)
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME=bench-"+kind)
	var stdout bytes.Buffer
	var stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return loadOut{}, err
	}
	if err := cmd.Start(); err != nil {
		return loadOut{}, fmt.Errorf("%s: %w", kind, err)
	}
	ready()
	_, werr := io.WriteString(stdin, "go\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		return loadOut{}, fmt.Errorf("%s: %w: %s", kind, errors.Join(err, werr), stderr.String())
	}
	var res load.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return loadOut{}, fmt.Errorf("%s: result: %w", kind, err)
	}
	if res.Dropped > 0 || res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "  note: %s: %d errors, %d requests dropped (every connection behind)\n", kind, res.Errors, res.Dropped)
	}
	return loadOut{requests: res.Requests, seconds: res.Seconds, hist: &res.Latency, latency: cfg.Rate > 0}, nil
}

// loadOut is one load run's outcome as the driver keeps it.
type loadOut struct {
	requests int64
	seconds  float64
	hist     *bench.Histogram
	latency  bool // open loop: the latencies are the figure
}

// limitedBuffer keeps the first 8 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 8<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// child is a long-running program of a workload (a server), its output
// in a log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

func startChild(name, dir string, env []string, argv ...string) (*child, error) {
	c := &child{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	c.cmd.Env = append(os.Environ(), env...)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }() // reported by exited
	return c, nil
}

// stop signals the child and kills it after 20 s.
func (c *child) stop(sig syscall.Signal) {
	c.cmd.Process.Signal(sig) // may be gone
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		fmt.Fprintf(os.Stderr, "  %s did not stop within 20 s (killed)\n", c.name)
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// waitTCP waits until port accepts connections or c exits (bounded).
func (c *child) waitTCP(port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited: %s", c.name, tailFile(c.logPath, 10))
		default:
		}
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %d within %v: %s", c.name, port, within, tailFile(c.logPath, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
