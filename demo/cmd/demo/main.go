// Command demo runs the weft demo shop on this host, no containers: a
// PostgreSQL cluster in a temporary directory, an all-in-one Jaeger
// (memory storage), the shop's services (frontend, catalog, checkout,
// payments, and the dns server they find each other through), a load
// generator, and weft exporting OTLP gRPC to that Jaeger. It prints the
// addresses to open and stops everything, in order, on SIGINT or SIGTERM
// (Ctrl-C). It must run as root: weft loads eBPF programs, and PostgreSQL
// is run as the postgres user. `make demo` builds everything and runs it.
//
// The services are found in -bin (by default the directory of this
// program): frontend, catalog, payments, dns, loadgen and weft; checkout
// is Python, written out from the checkout package. When no PostgreSQL
// server is installed, it is installed with apt-get.
package main

import (
	"bufio"
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
	"os/signal"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weftrace/weft/demo/checkout"

	"github.com/weftrace/weft/internal/jaeger"
)

type options struct {
	bin, jaeger, jaegerUI, dir, readyFile string
	suffix                                string
	freePorts, keep                       bool
	rate                                  float64
	workers                               int
	duration                              time.Duration
	weftArgs                              []string
}

// ports are every listener of the demo.
type ports struct {
	Frontend, Catalog, Checkout, Payments, DNS, Postgres int
	JaegerUI, JaegerGRPC, OTLPGRPC, OTLPHTTP, Weft       int
}

var fixedPorts = ports{Frontend: 8080, Catalog: 50051, Checkout: 8081, Payments: 8082, DNS: 10053, Postgres: 55432,
	JaegerUI: 16686, JaegerGRPC: 16685, OTLPGRPC: 4317, OTLPHTTP: 4318, Weft: 9464}

// Ready is what -ready-file receives once everything runs (for tests).
type Ready struct {
	Frontend  string `json:"frontend"`   // base URL
	JaegerAPI string `json:"jaeger_api"` // base URL of the query API and UI
	OTLPGRPC  string `json:"otlp_grpc"`  // host:port
	Weft      string `json:"weft"`       // base URL of /map, /metrics
	Postgres  int    `json:"postgres_port"`
	Dir       string `json:"dir"`
	StartupMS int64  `json:"startup_ms"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "directory of the demo binaries and weft (default: this program's directory)")
	flag.StringVar(&o.jaeger, "jaeger", "", "Jaeger binary (default $WEFT_JAEGER_BIN, else ~/.cache/weft/jaeger-"+jaeger.Version+": make jaeger)")
	flag.StringVar(&o.jaegerUI, "jaeger-ui", os.Getenv("WEFT_JAEGER_UI"), "directory of built Jaeger UI assets, for a Jaeger built without them ($WEFT_JAEGER_UI)")
	flag.StringVar(&o.dir, "dir", "", "working directory: database, logs (default: a new temporary directory, removed at exit)")
	flag.StringVar(&o.readyFile, "ready-file", "", "write the addresses as JSON to this file once everything runs")
	flag.BoolVar(&o.freePorts, "free-ports", false, "listen on free ports instead of the fixed ones (8080, 16686, 4317, 9464...)")
	flag.StringVar(&o.suffix, "service-suffix", "", "appended to every demo service's name (OTEL_SERVICE_NAME), to tell two runs apart")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory at exit")
	flag.Float64Var(&o.rate, "rate", 5, "load generator requests per second")
	flag.IntVar(&o.workers, "c", 4, "load generator concurrency")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	flag.Func("weft-arg", "extra argument for weft (repeatable)", func(s string) error { o.weftArgs = append(o.weftArgs, s); return nil })
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	began := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("run as root (weft loads eBPF programs): sudo make demo")
	}
	if o.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.bin = filepath.Dir(exe)
	}
	for _, b := range []string{"weft", "frontend", "catalog", "payments", "dns", "loadgen"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s not found in %s: build with make demo", b, o.bin)
		}
	}
	jaegerBin, err := jaeger.Binary(o.jaeger)
	if err != nil {
		return err
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return errors.New("python3 not found (checkout is a Python service): apt-get install python3")
	}
	pgDir, err := postgresBin()
	if err != nil {
		return err
	}

	p := fixedPorts
	if o.freePorts {
		if p, err = pickPorts(); err != nil {
			return err
		}
	} else if busy := busyPorts(p); len(busy) > 0 {
		return fmt.Errorf("ports already in use: %s (another demo or Jaeger running?); use -free-ports", strings.Join(busy, ", "))
	}

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weft-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	d := &demo{dir: dir, logs: logs}
	failed := true
	defer func() {
		d.stopAll()
		if o.keep || failed {
			fmt.Printf("demo: logs kept in %s\n", logs)
		} else if o.dir == "" {
			os.RemoveAll(dir)
		}
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	// A closed stdout (Ctrl-C also ends a `| tee`) must not kill the demo
	// before it stopped its children: with SIGPIPE handled, writes fail
	// instead. (Handled, not ignored: an ignored signal stays ignored in
	// the children.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	// Jaeger, PostgreSQL and weft start side by side; the services start
	// once weft is ready, so it sees their first connections.
	fmt.Printf("demo: starting PostgreSQL, Jaeger and weft (logs in %s)\n", logs)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errs[0] = d.startJaeger(jaegerBin, o.jaegerUI, p) }()
	go func() { defer wg.Done(); errs[1] = d.startPostgres(pgDir, p.Postgres) }()
	go func() { defer wg.Done(); errs[2] = d.startWeft(filepath.Join(o.bin, "weft"), p, o.weftArgs) }()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := d.seed(p.Postgres); err != nil {
		return err
	}

	pyPath := filepath.Join(dir, "checkout.py")
	if err := os.WriteFile(pyPath, checkout.Source, 0o644); err != nil {
		return err
	}
	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=shop sslmode=disable", p.Postgres)
	services := []struct {
		name  string
		port  int
		env   []string
		argv  []string
		isUDP bool
	}{
		{"dns", p.DNS, nil, []string{filepath.Join(o.bin, "dns"), "-addr", loop(p.DNS)}, true},
		{"catalog", p.Catalog, nil, []string{filepath.Join(o.bin, "catalog"), "-addr", loop(p.Catalog), "-db", dsn}, false},
		{"payments", p.Payments, nil, []string{filepath.Join(o.bin, "payments"), "-addr", loop(p.Payments), "-db", dsn}, false},
		{"checkout", p.Checkout, []string{"CHECKOUT_ADDR=" + loop(p.Checkout), "PAYMENTS_URL=http://" + loop(p.Payments)},
			[]string{python, "-u", pyPath}, false},
		{"frontend", p.Frontend, nil, []string{filepath.Join(o.bin, "frontend"), "-addr", loop(p.Frontend),
			"-catalog", fmt.Sprintf("catalog.demo.local:%d", p.Catalog),
			"-checkout", fmt.Sprintf("http://checkout.demo.local:%d", p.Checkout),
			"-dns", loop(p.DNS)}, false},
	}
	for _, s := range services {
		env := append(cleanEnv("OTEL_SERVICE_NAME="+s.name+o.suffix), s.env...)
		proc, err := d.spawn(s.name, env, nil, s.argv...)
		if err != nil {
			return err
		}
		ready := func() error { return tcpReady(loop(s.port)) }
		if s.isUDP {
			// Its start-up line, not a query: a query of the demo's own
			// would be on the service map.
			ready = func() error { return logSays(proc.log, "answering") }
		}
		if err := waitFor(15*time.Second, proc, ready); err != nil {
			return fmt.Errorf("%s: %w\n%s", s.name, err, tail(proc.log, 20))
		}
	}
	lines := make(chan string, 64)
	_, err = d.spawn("loadgen", cleanEnv("OTEL_SERVICE_NAME=loadgen"+o.suffix), lines, filepath.Join(o.bin, "loadgen"),
		"-url", "http://"+loop(p.Frontend), "-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-c", strconv.Itoa(o.workers))
	if err != nil {
		return err
	}
	go func() {
		for l := range lines {
			fmt.Println(l)
		}
	}()

	startup := time.Since(began)
	ready := Ready{
		Frontend:  "http://" + loop(p.Frontend),
		JaegerAPI: "http://" + loop(p.JaegerUI),
		OTLPGRPC:  loop(p.OTLPGRPC),
		Weft:      "http://" + loop(p.Weft),
		Postgres:  p.Postgres,
		Dir:       dir,
		StartupMS: startup.Milliseconds(),
	}
	ui := ready.JaegerAPI + "/search?service=frontend" + o.suffix
	if o.jaegerUI == "" {
		ui = ready.JaegerAPI + "/api/traces?service=frontend" + o.suffix + "&limit=20 (this Jaeger build has no UI assets: see -jaeger-ui)"
	}
	fmt.Printf(`
weft demo shop is running (started in %.1fs):

  Jaeger         %s
  service map    %s/map        (weft; data at /map.json, metrics at /metrics)
  shop           %s/
  Jaeger API     %s/api/dependencies?endTs=%d&lookback=3600000

loadgen sends %.4g req/s (browse, product pages, checkouts); 5%% of product
look-ups are slow (300 ms), 3%% of checkouts fail. Ctrl-C stops everything.

`, startup.Seconds(), ui, ready.Weft, ready.Frontend, ready.JaegerAPI, time.Now().Add(24*time.Hour).UnixMilli(), o.rate)
	if o.readyFile != "" {
		b, _ := json.Marshal(ready)
		if err := os.WriteFile(o.readyFile, b, 0o644); err != nil {
			return err
		}
	}

	var end <-chan time.Time
	if o.duration > 0 {
		end = time.After(o.duration)
	}
	died := make(chan *proc, len(d.procs))
	for _, pr := range d.procs {
		go func() { <-pr.exited; died <- pr }()
	}
	select {
	case s := <-sig:
		fmt.Printf("\ndemo: %v: stopping\n", s)
	case <-end:
		fmt.Println("demo: duration reached: stopping")
	case pr := <-died:
		return fmt.Errorf("%s exited (%v) while the demo ran:\n%s", pr.name, pr.err, tail(pr.log, 30))
	}
	if err := d.stopAll(); err != nil {
		return err
	}
	failed = false
	fmt.Println("demo: stopped")
	return nil
}

// proc is a child process of the demo.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	stopSig   syscall.Signal
	exited    chan struct{}
	err       error
}

type demo struct {
	dir, logs string
	pg        string // the cluster and its socket: a directory of its own the postgres user can reach
	mu        sync.Mutex
	procs     []*proc // in start order
	halted    bool
	stopErr   error
}

// spawn starts argv in its own process group (so a terminal's Ctrl-C
// reaches only the demo, which stops its children in order), output to
// logs/NAME.log; lines, when not nil, also gets each stdout line.
func (d *demo) spawn(name string, env []string, lines chan<- string, argv ...string) (*proc, error) {
	logPath := filepath.Join(d.logs, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = d.dir
	cmd.Env = env
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if lines != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			lf.Close()
			return nil, err
		}
	} else {
		cmd.Stdout = lf
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, stopSig: syscall.SIGTERM, exited: make(chan struct{})}
	var copying sync.WaitGroup
	if stdout != nil {
		copying.Add(1)
		go func() {
			defer copying.Done()
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				fmt.Fprintln(lf, sc.Text())
				select {
				case lines <- sc.Text():
				default:
				}
			}
			io.Copy(lf, stdout)
		}()
	}
	go func() {
		copying.Wait()
		p.err = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return p, nil
}

// stopAll stops the children in reverse start order (the load first,
// Jaeger and PostgreSQL last, so weft flushes its spans into a running
// Jaeger), each with its stop signal and 10 s of grace before SIGKILL.
// weft must exit 0. Later calls return the first call's result.
func (d *demo) stopAll() error {
	d.mu.Lock()
	if d.halted {
		d.mu.Unlock()
		return d.stopErr
	}
	d.halted = true
	procs := append([]*proc(nil), d.procs...)
	d.mu.Unlock()
	// weft is stopped after every service and before Jaeger.
	sort.SliceStable(procs, func(i, j int) bool { return rank(procs[i].name) < rank(procs[j].name) })
	var errs []error
	for _, p := range procs {
		select {
		case <-p.exited:
			continue
		default:
		}
		p.cmd.Process.Signal(p.stopSig)
		select {
		case <-p.exited:
			if p.name == "weft" && p.err != nil {
				errs = append(errs, fmt.Errorf("weft exited with %v after SIGTERM:\n%s", p.err, tail(p.log, 20)))
			}
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
			errs = append(errs, fmt.Errorf("%s did not stop within 10 s (killed it)", p.name))
		}
	}
	if d.pg != "" {
		os.RemoveAll(d.pg) // PostgreSQL has stopped
	}
	d.stopErr = errors.Join(errs...)
	return d.stopErr
}

// rank orders the stop: load, services, weft, then the backends.
func rank(name string) int {
	switch name {
	case "loadgen":
		return 0
	case "frontend":
		return 1
	case "weft":
		return 3
	case "jaeger", "postgres":
		return 4
	}
	return 2
}

// cleanEnv is the environment without OTEL_* variables (a developer's
// settings must not leak into the services), plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func (d *demo) startWeft(bin string, p ports, extra []string) error {
	addr := fmt.Sprintf("127.0.0.1:%d", p.Weft)
	argv := append([]string{bin,
		"--otlp-endpoint", fmt.Sprintf("http://127.0.0.1:%d", p.OTLPGRPC),
		"--otlp-protocol", "grpc",
		"--http-addr", addr,
	}, extra...)
	env := os.Environ()
	if os.Getenv("OTEL_BSP_SCHEDULE_DELAY") == "" {
		env = append(env, "OTEL_BSP_SCHEDULE_DELAY=1000") // spans in Jaeger a second after they are emitted
	}
	w, err := d.spawn("weft", env, nil, argv...)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitFor(90*time.Second, w, func() error {
		resp, err := hc.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("weft did not become ready: %w\n%s", err, tail(w.log, 30))
	}
	return nil
}

func (d *demo) startJaeger(bin, uiDir string, p ports) error {
	cfg := filepath.Join(d.dir, "jaeger.yaml")
	conf := jaeger.Config(jaeger.Ports{Query: p.JaegerUI, QueryGRPC: p.JaegerGRPC, OTLPGRPC: p.OTLPGRPC, OTLPHTTP: p.OTLPHTTP}, 50000, uiDir)
	if err := os.WriteFile(cfg, conf, 0o644); err != nil {
		return err
	}
	j, err := d.spawn("jaeger", cleanEnv("OTEL_SERVICE_NAME=jaeger"), nil, bin, "--config", "file:"+cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitFor(60*time.Second, j, func() error {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/api/services", p.JaegerUI))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return tcpReady(fmt.Sprintf("127.0.0.1:%d", p.OTLPGRPC))
	})
	if err != nil {
		return fmt.Errorf("jaeger did not become ready: %w\n%s", err, tail(j.log, 20))
	}
	return nil
}

// postgresBin finds Debian's PostgreSQL server programs, installing the
// postgresql package with apt-get when there are none.
func postgresBin() (string, error) {
	find := func() string {
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		best, bestV := "", -1
		for _, f := range found {
			dir := filepath.Dir(f)
			v, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
			if _, serr := os.Stat(filepath.Join(dir, "postgres")); err == nil && serr == nil && v > bestV {
				best, bestV = dir, v
			}
		}
		return best
	}
	if dir := find(); dir != "" {
		return dir, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("no PostgreSQL server in /usr/lib/postgresql and no apt-get to install one")
	}
	fmt.Println("demo: PostgreSQL is not installed: apt-get install postgresql")
	for _, argv := range [][]string{{"apt-get", "update", "-qq"}, {"apt-get", "install", "-y", "-qq", "postgresql"}} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	if dir := find(); dir != "" {
		return dir, nil
	}
	return "", errors.New("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb is there")
}

// startPostgres makes a cluster in dir/pg as the postgres user (initdb and
// postgres refuse root) and runs it on port and a unix socket in dir/pg,
// as the e2e tests do.
func (d *demo) startPostgres(bin string, port int) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("the postgres user the server runs as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not under d.dir: the postgres user must reach it, and the parents
	// of a directory a caller chose may be closed to it.
	pg, err := os.MkdirTemp("", "weft-demo-pg-")
	if err != nil {
		return err
	}
	d.pg = pg
	if err := os.Chown(pg, uid, gid); err != nil {
		return err
	}
	data := filepath.Join(pg, "data")
	{
		initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
		initdb.Dir = pg
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if out, err := initdb.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %w\n%s", err, out)
		}
	}
	// setpriv execs the server, so the stop signal reaches it.
	p, err := d.spawn("postgres", cleanEnv(), nil, "setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--clear-groups", "--",
		filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", pg,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "lc_messages=C")
	if err != nil {
		return err
	}
	p.stopSig = syscall.SIGINT // fast shutdown
	err = waitFor(60*time.Second, p, func() error {
		out, err := exec.Command("pg_isready", "-h", pg, "-p", strconv.Itoa(port)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres did not become ready: %w\n%s", err, tail(p.log, 20))
	}
	return nil
}

var products = []struct {
	name         string
	price, stock int
}{
	{"Loom shuttle", 1299, 40}, {"Linen thread, 500 m", 899, 120}, {"Warp beam", 4999, 8},
	{"Heddle set", 2450, 25}, {"Reed, 60 dent", 3100, 12}, {"Tapestry needle", 350, 300},
	{"Bobbin winder", 2799, 15}, {"Wool yarn, indigo", 1150, 60}, {"Cotton warp, 1 kg", 1999, 30},
	{"Inkle loom", 6900, 5}, {"Weaving sword", 1590, 22}, {"Pattern book", 2200, 18},
}

// seed creates the shop's tables over the unix socket, which weft does not
// trace (TCP only): set-up is not part of the demo's traffic.
func (d *demo) seed(port int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg := d.pg
	admin, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", pg, port))
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'shop')").Scan(&exists); err != nil {
		admin.Close(ctx)
		return err
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE shop"); err != nil {
			admin.Close(ctx)
			return err
		}
	}
	admin.Close(ctx)
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=shop", pg, port))
	if err != nil {
		return fmt.Errorf("connect to shop: %w", err)
	}
	defer c.Close(ctx)
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL, stock int NOT NULL)",
		"CREATE TABLE IF NOT EXISTS payments (id bigserial PRIMARY KEY, product_id int NOT NULL, quantity int NOT NULL, amount_cents bigint NOT NULL, email text NOT NULL, created timestamptz NOT NULL DEFAULT now())",
	}
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	for i, p := range products {
		if _, err := c.Exec(ctx, "INSERT INTO products VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING", i+1, p.name, p.price, p.stock); err != nil {
			return fmt.Errorf("insert product: %w", err)
		}
	}
	return nil
}

func pickPorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	next := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0
		}
		ls = append(ls, l)
		return l.Addr().(*net.TCPAddr).Port
	}
	p := ports{Frontend: next(), Catalog: next(), Checkout: next(), Payments: next(), DNS: next(), Postgres: next(),
		JaegerUI: next(), JaegerGRPC: next(), OTLPGRPC: next(), OTLPHTTP: next(), Weft: next()}
	if p.Weft == 0 || p.Frontend == 0 {
		return p, errors.New("no free loopback ports")
	}
	return p, nil
}

func busyPorts(p ports) []string {
	var busy []string
	for name, port := range map[string]int{"frontend": p.Frontend, "catalog": p.Catalog, "checkout": p.Checkout,
		"payments": p.Payments, "postgres": p.Postgres, "jaeger ui": p.JaegerUI, "jaeger grpc": p.JaegerGRPC,
		"otlp grpc": p.OTLPGRPC, "otlp http": p.OTLPHTTP, "weft": p.Weft} {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			busy = append(busy, fmt.Sprintf("%d (%s)", port, name))
		} else {
			l.Close()
		}
	}
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.DNS}); err != nil {
		busy = append(busy, fmt.Sprintf("udp %d (dns)", p.DNS))
	} else {
		c.Close()
	}
	sort.Strings(busy)
	return busy
}

func waitFor(timeout time.Duration, p *proc, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) before it was ready (last check: %v)", p.name, p.err, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tcpReady(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// logSays reports whether the log at path has the word yet.
func logSays(path, word string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), word) {
		return fmt.Errorf("%s does not say %q yet", path, word)
	}
	return nil
}

// tail returns the last n lines of the file at path, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
