package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/weftrace/weft/bench/load"
)

// workload is one line of the table: a server started once, and a load
// run against it, baseline and traced in turn.
type workload struct {
	name, desc string
	spansNote  string
	rounds     int      // baseline+traced pairs; 0 = the driver's default
	needs      []string // programs on PATH
	start      func(dir string) (port int, stop func(), err error)
	// load runs the load for d and calls ready once its processes exist
	// and before the first request.
	load func(port int, d time.Duration, ready func()) (loadOut, error)
}

func workloads() []workload {
	const both = "2 expected: the load generator's client span and the server's span of each request"
	http := func(rate float64, conns int) func(int, time.Duration, func()) (loadOut, error) {
		return func(port int, d time.Duration, ready func()) (loadOut, error) {
			return runLoad("load-http", port, load.Config{Conns: conns, Rate: rate, Duration: d}, "/items/1", ready)
		}
	}
	return []workload{
		{name: "nginx", desc: "nginx (1 worker) serving a 6-byte file to wrk -t1 -c32, keep-alive, saturated", spansNote: both,
			needs: []string{"nginx", "wrk"}, start: startNginx, load: wrkLoad},
		{name: "nginx-5k", desc: "the same nginx at a fixed 5k req/s (weftbench open-loop, 32 keep-alive connections)", spansNote: both,
			needs: []string{"nginx"}, start: startNginx, load: func(port int, d time.Duration, ready func()) (loadOut, error) {
				return runLoad("load-http", port, load.Config{Conns: 32, Rate: 5000, Duration: d}, "/index.html", ready)
			}},
		{name: "gohttp", desc: "Go net/http server, GET /items/1 (small JSON), 32 keep-alive connections closed-loop, saturated", spansNote: both,
			start: startGoHTTP, load: http(0, 32)},
		{name: "gohttp-5k", desc: "the same Go server at a fixed 5k req/s, 32 connections", spansNote: both,
			start: startGoHTTP, load: http(5000, 32)},
		{name: "grpc", desc: "grpc-go unary echo, 32 concurrent calls on one h2c connection, closed-loop, saturated", spansNote: both,
			start: startGRPC, load: func(port int, d time.Duration, ready func()) (loadOut, error) {
				return runLoad("load-grpc", port, load.Config{Conns: 32, Duration: d}, "", ready)
			}},
		{name: "pgbench", desc: "pgbench -S (select-only, simple protocol) -c8 -j2 against PostgreSQL on loopback, saturated", spansNote: both + " (a transaction is one SELECT; plus a few set-up queries per connection)",
			needs: []string{"pgbench", "pg_isready", "setpriv"}, start: startPostgres, load: pgbenchLoad},
		{name: "gohttp-20k", desc: "scale check: the Go server at a fixed 20k req/s, 64 connections (target: 0 lost, spans = 2 x requests)", spansNote: both,
			rounds: 1, start: startGoHTTP, load: http(20000, 64)},
		{name: "gohttp-10k-1kc", desc: "scale check: the Go server at a fixed 10k req/s over 1000 open connections (target: weft RSS < 128 MiB)", spansNote: both,
			rounds: 1, start: startGoHTTP, load: http(10000, 1000)},
	}
}

func startNginx(dir string) (int, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644); err != nil {
		return 0, nil, err
	}
	conf := fmt.Sprintf(`daemon off; master_process on; worker_processes 1; user root;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path %[1]s/b; proxy_temp_path %[1]s/p; fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s;
  server { listen 127.0.0.1:%[2]d; root %[1]s; } }
`, dir, port)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return 0, nil, err
	}
	c, err := startChild("nginx", dir, nil, "nginx", "-p", dir, "-c", confPath)
	if err != nil {
		return 0, nil, err
	}
	if err := c.waitTCP(port, 20*time.Second); err != nil {
		c.stop(syscall.SIGQUIT)
		return 0, nil, err
	}
	return port, func() { c.stop(syscall.SIGQUIT) }, nil
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)

func wrkLoad(port int, d time.Duration, ready func()) (loadOut, error) {
	ready()
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c32", "-d"+strconv.Itoa(secs)+"s", fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadOut{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads the request count and duration from wrk's summary line
// ("411113 requests in 10.00s, 95.66MB read").
func parseWrk(out string) (loadOut, error) {
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return loadOut{}, fmt.Errorf("wrk: no request count in its output: %s", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	v, _ := strconv.ParseFloat(m[2], 64)
	unit := map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m[3]]
	return loadOut{requests: n, seconds: v * unit}, nil
}

func startGoHTTP(dir string) (int, func(), error) {
	return startSelf(dir, "http-server")
}

func startGRPC(dir string) (int, func(), error) {
	return startSelf(dir, "grpc-server")
}

func startSelf(dir, sub string) (int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	c, err := startChild(sub, dir, []string{"OTEL_SERVICE_NAME=bench-" + sub}, self, sub, "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0, nil, err
	}
	if err := c.waitTCP(port, 20*time.Second); err != nil {
		c.stop(syscall.SIGTERM)
		return 0, nil, err
	}
	return port, func() { c.stop(syscall.SIGTERM) }, nil
}

// pgBinDir finds Debian's PostgreSQL server programs (not on PATH), the
// newest version installed.
func pgBinDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	best, bestVersion := "", -1
	for _, f := range found {
		bin := filepath.Dir(f)
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
		if _, serr := os.Stat(filepath.Join(bin, "initdb")); err == nil && serr == nil && v > bestVersion {
			best, bestVersion = bin, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin with initdb and postgres")
	}
	return best, nil
}

// startPostgres initialises a private cluster in dir as the postgres user
// (initdb and postgres refuse root), as the e2e tests do, starts it on a
// free loopback port and fills a pgbench database (scale 1) over the unix
// socket, which weft does not trace.
func startPostgres(dir string) (int, func(), error) {
	bin, err := pgBinDir()
	if err != nil {
		return 0, nil, err
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, nil, fmt.Errorf("the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The postgres user must reach its directory through the workload's
	// and the driver's temporary directories (made 0700).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			return 0, nil, err
		}
	}
	pgdir := filepath.Join(dir, "pg")
	if err := os.Mkdir(pgdir, 0o755); err != nil {
		return 0, nil, err
	}
	if err := os.Chown(pgdir, uid, gid); err != nil {
		return 0, nil, err
	}
	data := filepath.Join(pgdir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := initdb.CombinedOutput(); err != nil {
		return 0, nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	c, err := startChild("postgres", dir, nil, "setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--clear-groups", "--",
		filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", pgdir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "lc_messages=C")
	if err != nil {
		return 0, nil, err
	}
	stop := func() { c.stop(syscall.SIGINT) }
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("pg_isready", "-h", pgdir, "-p", strconv.Itoa(port)).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-c.exited:
			return 0, nil, fmt.Errorf("postgres exited: %s", tailFile(c.logPath, 10))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return 0, nil, fmt.Errorf("postgres not ready within 60 s: %s", bytes.TrimSpace(out))
		}
		time.Sleep(200 * time.Millisecond)
	}
	initb := exec.Command("pgbench", "-i", "-q", "-s", "1", "-h", pgdir, "-p", strconv.Itoa(port), "-U", "postgres", "postgres")
	if out, err := initb.CombinedOutput(); err != nil {
		stop()
		return 0, nil, fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	return port, stop, nil
}

var (
	pgbenchTxs = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchTPS = regexp.MustCompile(`tps = ([\d.]+) \(without initial connection time\)`)
)

func pgbenchLoad(port int, d time.Duration, ready func()) (loadOut, error) {
	ready()
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-S", "-c", "8", "-j", "2", "-T", strconv.Itoa(secs),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "postgres")
	cmd.Env = append(os.Environ(), "PGGSSENCMODE=disable", "PGSSLMODE=disable", "OTEL_SERVICE_NAME=bench-pgbench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadOut{}, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	return parsePgbench(string(out))
}

// parsePgbench reads the transactions and the rate pgbench reports; the
// time is their ratio (pgbench's own, without connection set-up).
func parsePgbench(out string) (loadOut, error) {
	n, tps := pgbenchTxs.FindStringSubmatch(out), pgbenchTPS.FindStringSubmatch(out)
	if n == nil || tps == nil {
		return loadOut{}, fmt.Errorf("pgbench: no transaction count or tps in its output: %s", out)
	}
	txs, _ := strconv.ParseInt(n[1], 10, 64)
	rate, _ := strconv.ParseFloat(tps[1], 64)
	if rate <= 0 {
		return loadOut{}, fmt.Errorf("pgbench: tps %v", rate)
	}
	return loadOut{requests: txs, seconds: float64(txs) / rate}, nil
}
