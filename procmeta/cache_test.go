package procmeta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProc is one process in a fake /proc tree.
type fakeProc struct {
	exe     string // symlink target; "" for no exe link (kernel thread, zombie)
	cmdline []string
	environ []string
	comm    string // /proc/PID/comm, the leader's name; "" for no file
}

func writeProc(t *testing.T, root string, pid uint32, p fakeProc) {
	t.Helper()
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if p.exe != "" {
		// Readlink works on dangling links, as on a real /proc.
		if err := os.Symlink(p.exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, parts []string) {
		var b []byte
		for _, s := range parts {
			b = append(append(b, s...), 0)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cmdline", p.cmdline)
	write("environ", p.environ)
	if p.comm != "" {
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func removeProc(t *testing.T, root string, pid uint32) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, strconv.FormatUint(uint64(pid), 10))); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func newTestCache(t *testing.T, cfg Config) (*Cache, string, *fakeClock) {
	t.Helper()
	root := t.TempDir()
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg.ProcRoot = root
	if cfg.HostName == "" {
		cfg.HostName = "node-1"
	}
	cfg.Now = clock.Now
	return NewCache(cfg), root, clock
}

// attrStrings renders attributes as "key=value" in order, for diffs.
func attrStrings(kvs []attribute.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key) + "=" + kv.Value.String()
	}
	return out
}

func TestObserveReadsProc(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 4242, fakeProc{
		exe:     "/usr/local/bin/orders",
		cmdline: []string{"/usr/local/bin/orders", "--db-password=hunter2"},
		environ: []string{
			"PATH=/usr/bin",
			"DB_PASSWORD=hunter2",
			"OTEL_SERVICE_NAME=orders-api",
			"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=prod, team = pay%2Cments ,service.name=ignored",
			"OTEL_EXPORTER_OTLP_HEADERS=api-key=hunter2",
		},
	})
	c.Observe(4242, "orders")
	p := c.Lookup(4242, "orders")

	if p.PID != 4242 || p.ServiceName != "orders-api" || p.ExeName != "orders" ||
		p.ExePath != "/usr/local/bin/orders" || p.Command != "/usr/local/bin/orders" {
		t.Errorf("process = %+v", *p)
	}
	want := []string{
		"service.name=orders-api",
		"process.pid=4242",
		"process.executable.name=orders",
		"process.executable.path=/usr/local/bin/orders",
		"process.command=/usr/local/bin/orders",
		"host.name=node-1",
		"deployment.environment.name=prod",
		"team=pay,ments",
	}
	if got := attrStrings(p.Attributes); !slices.Equal(got, want) {
		t.Errorf("attributes\n got %q\nwant %q", got, want)
	}
	if dump := fmt.Sprintf("%#v", *p); strings.Contains(dump, "hunter2") {
		t.Errorf("process keeps a secret from its environment or arguments: %s", dump)
	}
	s := c.Stats()
	if s.Hits != 1 || s.Misses != 0 || s.Fallbacks != 0 || s.ReadsFound != 1 || s.Processes != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestServiceNamePrecedence(t *testing.T) {
	tests := []struct {
		name string
		proc fakeProc
		comm string
		want string
	}{
		{"OTEL_SERVICE_NAME wins", fakeProc{exe: "/bin/app", cmdline: []string{"app"},
			environ: []string{"OTEL_RESOURCE_ATTRIBUTES=service.name=from-attrs", "OTEL_SERVICE_NAME=from-env"}}, "app", "from-env"},
		{"blank OTEL_SERVICE_NAME ignored", fakeProc{exe: "/bin/app", cmdline: []string{"app"},
			environ: []string{"OTEL_SERVICE_NAME=  "}}, "app-comm", "app"},
		{"service.name in resource attributes", fakeProc{exe: "/bin/app", cmdline: []string{"app"},
			environ: []string{"OTEL_RESOURCE_ATTRIBUTES=a=b,service.name=from%20attrs"}}, "app", "from attrs"},
		{"malformed resource attributes ignored", fakeProc{exe: "/bin/app", cmdline: []string{"app"},
			environ: []string{"OTEL_RESOURCE_ATTRIBUTES=service.name=x,broken"}}, "app-comm", "app"},
		{"executable base name", fakeProc{exe: "/opt/svc/bin/billing", cmdline: []string{"billing"}}, "bill-comm", "billing"},
		{"deleted executable", fakeProc{exe: "/opt/svc/bin/billing (deleted)", cmdline: []string{"billing"}}, "x", "billing"},
		{"no exe link: argv[0]", fakeProc{cmdline: []string{"/usr/bin/python3", "app.py"}, comm: "gunicorn"}, "worker-1", "python3"},
		{"rewritten argv: its first word", fakeProc{cmdline: []string{"nginx: worker process"}}, "x", "nginx"},
		{"login shell argv[0]", fakeProc{cmdline: []string{"-bash"}}, "x", "bash"},
		// An empty cmdline with a comm is a zombie: /proc no longer knows
		// it, so Lookup falls back, but to the leader's comm from /proc.
		{"no exe, no argv: leader's comm", fakeProc{comm: "dig"}, "isc-net-0000", "dig"},
		{"nothing at all", fakeProc{}, "", unknownService},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, root, _ := newTestCache(t, Config{})
			pid := uint32(100 + i)
			writeProc(t, root, pid, tt.proc)
			if got := c.Lookup(pid, tt.comm); got.ServiceName != tt.want {
				t.Errorf("service name = %q, want %q", got.ServiceName, tt.want)
			} else if got.Attributes[0] != attribute.String("service.name", tt.want) {
				t.Errorf("first attribute = %v, want service.name", got.Attributes[0])
			}
		})
	}
}

func TestResourceAttributesOverride(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 7, fakeProc{exe: "/bin/app", cmdline: []string{"app"},
		environ: []string{"OTEL_RESOURCE_ATTRIBUTES=host.name=pod-host,process.pid=1,k8s.pod.name=web-0"}})
	got := attrStrings(c.Lookup(7, "app").Attributes)
	want := []string{
		"service.name=app",
		"process.pid=7", // weft's pid, not the namespaced one
		"process.executable.name=app",
		"process.executable.path=/bin/app",
		"process.command=app",
		"host.name=pod-host", // the process's own claim, in weft's place
		"k8s.pod.name=web-0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("attributes\n got %q\nwant %q", got, want)
	}
}

func TestLookupUnobservedReadsProcOnce(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 9, fakeProc{exe: "/usr/bin/curl", cmdline: []string{"curl", "-H", "Authorization: x"}})
	first := c.Lookup(9, "curl")
	removeProc(t, root, 9) // a second read would now find nothing
	second := c.Lookup(9, "curl")
	if first != second || first.ExePath != "/usr/bin/curl" {
		t.Errorf("lookups = %+v, %+v; want the same process read from /proc", first, second)
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != 1 || s.ReadsFound != 1 || s.ReadsNotFound != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestLookupExitedFallsBackToComm(t *testing.T) {
	c, _, clock := newTestCache(t, Config{ExitGrace: time.Minute})
	p := c.Lookup(31337, "curl")
	want := []string{"service.name=curl", "process.pid=31337", "process.executable.name=curl", "host.name=node-1"}
	if p.ServiceName != "curl" || p.ExePath != "" || !slices.Equal(attrStrings(p.Attributes), want) {
		t.Errorf("fallback = %+v", *p)
	}
	if again := c.Lookup(31337, "curl"); again != p {
		t.Errorf("second lookup made a new fallback")
	}
	if s := c.Stats(); s.Fallbacks != 1 || s.Hits != 1 || s.ReadsNotFound != 1 {
		t.Errorf("stats = %+v", s)
	}
	// The fallback is cached as exiting, so it does not stay for ever.
	if n := c.Sweep(clock.Now().Add(time.Minute)); n != 1 || c.Len() != 0 {
		t.Errorf("sweep removed %d, %d left; want the fallback gone", n, c.Len())
	}
}

func TestZombieIsNotFound(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 12, fakeProc{environ: []string{"OTEL_SERVICE_NAME=ghost"}}) // no exe, empty cmdline
	if p := c.Lookup(12, "defunct"); p.ServiceName != "defunct" {
		t.Errorf("service name = %q, want the comm", p.ServiceName)
	}
	if s := c.Stats(); s.Fallbacks != 1 {
		t.Errorf("stats = %+v, want one fallback", s)
	}
}

func TestObserveCachedIsNotReread(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 5, fakeProc{exe: "/bin/a", cmdline: []string{"a"}})
	c.Observe(5, "a")
	writeProc(t, root, 5, fakeProc{exe: "/bin/b", cmdline: []string{"b"}})
	c.Observe(5, "b")
	if p := c.Lookup(5, "b"); p.ExeName != "a" {
		t.Errorf("exe = %q, want the first observation kept", p.ExeName)
	}
	if s := c.Stats(); s.ReadsFound != 1 {
		t.Errorf("reads = %d, want 1", s.ReadsFound)
	}
}

func TestForgetKeepsForGrace(t *testing.T) {
	c, root, clock := newTestCache(t, Config{ExitGrace: 30 * time.Second})
	writeProc(t, root, 5, fakeProc{exe: "/bin/a", cmdline: []string{"a"}})
	c.Observe(5, "a")
	exit := clock.Now()
	c.Forget(5)
	removeProc(t, root, 5)

	clock.Set(exit.Add(10 * time.Second))
	c.Forget(5) // a repeated exit does not restart the grace
	if n := c.Sweep(exit.Add(30*time.Second - 1)); n != 0 {
		t.Fatalf("swept %d before the grace ended", n)
	}
	if p := c.Lookup(5, "a"); p.ExePath != "/bin/a" {
		t.Errorf("during grace: %+v, want the cached process", *p)
	}
	if n := c.Sweep(exit.Add(30 * time.Second)); n != 1 {
		t.Fatalf("swept %d at the end of the grace, want 1", n)
	}
	if p := c.Lookup(5, "a"); p.ExePath != "" {
		t.Errorf("after grace: %+v, want a fallback", *p)
	}
	if s := c.Stats(); s.Expired != 1 || s.Hits != 1 || s.Fallbacks != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestObserveAfterForgetRereads(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 5, fakeProc{exe: "/bin/old", cmdline: []string{"old"}})
	c.Observe(5, "old")
	c.Forget(5)
	// The pid is reused by a new process before the sweep.
	writeProc(t, root, 5, fakeProc{exe: "/bin/new", cmdline: []string{"new"}})
	c.Observe(5, "new")
	if p := c.Lookup(5, "new"); p.ExeName != "new" {
		t.Errorf("exe = %q, want the new process", p.ExeName)
	}
	// A live process is not swept.
	if n := c.Sweep(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); n != 0 {
		t.Errorf("swept %d live processes", n)
	}
}

func TestObserveExitedKeepsOldIdentity(t *testing.T) {
	c, root, _ := newTestCache(t, Config{})
	writeProc(t, root, 5, fakeProc{exe: "/bin/old", cmdline: []string{"old"}})
	c.Observe(5, "old")
	c.Forget(5)
	removeProc(t, root, 5)
	c.Observe(5, "old") // a late connection event of the exited process
	if p := c.Lookup(5, "old"); p.ExePath != "/bin/old" {
		t.Errorf("process = %+v, want the one read while it lived", *p)
	}
}

func TestEvictionLeastRecentlyUsed(t *testing.T) {
	c, root, _ := newTestCache(t, Config{MaxProcesses: 3})
	for pid := uint32(1); pid <= 5; pid++ {
		writeProc(t, root, pid, fakeProc{exe: fmt.Sprintf("/bin/p%d", pid), cmdline: []string{"p"}})
	}
	c.Observe(1, "p")
	c.Observe(2, "p")
	c.Observe(3, "p")
	c.Lookup(1, "p") // 2 is now the least recently used
	c.Observe(4, "p")
	if c.Len() != 3 {
		t.Fatalf("len = %d, want 3", c.Len())
	}
	if s := c.Stats(); s.Evictions != 1 {
		t.Errorf("evictions = %d, want 1", s.Evictions)
	}
	hitsBefore := c.Stats().Hits
	for _, pid := range []uint32{1, 3, 4} {
		c.Lookup(pid, "p")
	}
	if s := c.Stats(); s.Hits-hitsBefore != 3 {
		t.Errorf("pids 1, 3, 4 not all cached: %+v", s)
	}
	// An exiting entry goes before live ones, however recently used.
	c.Forget(4)
	c.Observe(5, "p")
	for _, pid := range []uint32{1, 3, 5} {
		if p := c.Lookup(pid, "p"); p.ExePath != fmt.Sprintf("/bin/p%d", pid) {
			t.Errorf("pid %d = %+v, want cached", pid, *p)
		}
	}
	if s := c.Stats(); s.Evictions != 2 || s.Fallbacks != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	err := Config{ExitGrace: -time.Second, MaxProcesses: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ExitGrace") || !strings.Contains(err.Error(), "MaxProcesses") {
		t.Errorf("negative config: %v", err)
	}
	d := Config{}.withDefaults()
	if d.ProcRoot != "/proc" || d.ExitGrace != DefaultExitGrace || d.MaxProcesses != DefaultMaxProcesses || d.Now == nil {
		t.Errorf("defaults = %+v", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	c, root, clock := newTestCache(t, Config{MaxProcesses: 8})
	for pid := uint32(1); pid <= 16; pid++ {
		writeProc(t, root, pid, fakeProc{exe: "/bin/p", cmdline: []string{"p"}})
	}
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				pid := uint32((w*rounds+i)%20 + 1) // 17..20 have no /proc entry
				switch i % 4 {
				case 0:
					c.Observe(pid, "p")
				case 1:
					c.Forget(pid)
				case 2:
					c.Sweep(clock.Now().Add(time.Hour))
				}
				if p := c.Lookup(pid, "p"); p == nil || p.PID != pid {
					t.Errorf("lookup %d = %+v", pid, p)
				}
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	if got := s.Hits + s.Misses + s.Fallbacks; got != workers*rounds {
		t.Errorf("lookup outcomes sum to %d, want %d", got, workers*rounds)
	}
	if s.Processes > 8 {
		t.Errorf("cache holds %d, bound is 8", s.Processes)
	}
}

// TestRealProcSelf reads the test binary's own /proc entry.
func TestRealProcSelf(t *testing.T) {
	c := NewCache(Config{})
	pid := uint32(os.Getpid())
	p := c.Lookup(pid, "comm-unused")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	wantService := os.Getenv(envServiceName) // the environment as exec'd; tests do not change it
	if wantService == "" {
		wantService = filepath.Base(exe)
	}
	if p.PID != pid || p.ExePath != exe || p.ExeName != filepath.Base(exe) ||
		p.Command != os.Args[0] || p.ServiceName != wantService {
		t.Errorf("process = %+v; want exe %s, command %s, service %s", *p, exe, os.Args[0], wantService)
	}
	if i := indexKey(p.Attributes, "host.name"); i < 0 || p.Attributes[i].Value.AsString() != host {
		t.Errorf("attributes %q lack host.name=%s", attrStrings(p.Attributes), host)
	}
	if s := c.Stats(); s.Misses != 1 {
		t.Errorf("stats = %+v, want one miss", s)
	}
}

func TestRegisterMetrics(t *testing.T) {
	c, root, _ := newTestCache(t, Config{MaxProcesses: 1})
	writeProc(t, root, 1, fakeProc{exe: "/bin/a", cmdline: []string{"a"}})
	writeProc(t, root, 2, fakeProc{exe: "/bin/b", cmdline: []string{"b"}})
	c.Lookup(1, "a") // miss
	c.Lookup(1, "a") // hit
	c.Lookup(2, "b") // miss, evicts 1
	c.Lookup(3, "c") // fallback, evicts 2

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	if err := c.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", m.Name)
				}
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
			for _, dp := range points {
				name := m.Name
				if v, ok := dp.Attributes.Value(resultKey); ok {
					name += "{" + v.AsString() + "}"
				}
				got[name] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"weft_procmeta_lookups{hit}":      1,
		"weft_procmeta_lookups{miss}":     2,
		"weft_procmeta_lookups{fallback}": 1,
		"weft_procmeta_reads{found}":      2,
		"weft_procmeta_reads{not_found}":  1,
		"weft_procmeta_evictions":         2,
		"weft_procmeta_expired":           0,
		"weft_procmeta_enrich_refreshes":  0,
		"weft_procmeta_processes":         1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
}

// TestObserveBlocksAfterExit: a process gone from /proc is still named by
// the blocks the kernel copied while it lived; other variables are dropped
// and a value cut short by the copy is not used.
func TestObserveBlocksAfterExit(t *testing.T) {
	c := NewCache(Config{ProcRoot: t.TempDir(), HostName: "h"})
	argv := []byte("/usr/bin/goclient\x00-n\x003\x00")
	env := []byte("SECRET=hunter2\x00OTEL_SERVICE_NAME=checkout\x00OTEL_RESOURCE_ATTRIBUTES=team=pay\x00")
	c.ObserveBlocks(42, argv, env)
	p := c.Lookup(42, "goclient")
	if p.ServiceName != "checkout" || p.Command != "/usr/bin/goclient" {
		t.Fatalf("got service %q command %q", p.ServiceName, p.Command)
	}
	for _, kv := range p.Attributes {
		if strings.Contains(kv.Value.String(), "hunter2") {
			t.Fatalf("secret kept in %s", kv.Key)
		}
	}
	if !hasAttr(p, "team", "pay") {
		t.Fatalf("OTEL_RESOURCE_ATTRIBUTES not applied: %v", p.Attributes)
	}

	c.ObserveBlocks(43, []byte("curl\x00"), []byte("A=1\x00OTEL_SERVICE_NAME=trunc"))
	if got := c.Lookup(43, "curl").ServiceName; got != "curl" {
		t.Fatalf("cut-short OTEL_SERVICE_NAME used: service %q", got)
	}
}

func hasAttr(p *Process, key, value string) bool {
	for _, kv := range p.Attributes {
		if string(kv.Key) == key && kv.Value.String() == value {
			return true
		}
	}
	return false
}

// TestObserveBlocksWorkerThreadComm: dig makes its queries from threads it
// renames isc-net-0000 and exits before /proc can be read; the kernel's
// comm at its first connection is the worker's. The process is named by
// its argv[0], and a block with nothing in it leaves the name to Lookup
// rather than to the worker's comm.
func TestObserveBlocksWorkerThreadComm(t *testing.T) {
	c := NewCache(Config{ProcRoot: t.TempDir(), HostName: "h"})
	c.ObserveBlocks(42, []byte("dig\x00@127.0.0.1\x00-p\x005353\x00example.com\x00"), nil)
	p := c.Lookup(42, "")
	if p.ServiceName != "dig" || p.ExeName != "dig" || !hasAttr(p, "process.executable.name", "dig") {
		t.Fatalf("process = %+v, want service and executable dig", *p)
	}

	c.ObserveBlocks(43, nil, nil) // the kernel could not read the blocks
	if c.Len() != 1 {
		t.Fatalf("an empty block cached an entry: %d entries", c.Len())
	}
	if got := c.Lookup(43, "").ServiceName; got != unknownService {
		t.Fatalf("service %q, want %q", got, unknownService)
	}
}

// TestRenamedWorkerThread: a live multi-threaded process (this test)
// whose worker thread renames itself with prctl(PR_SET_NAME). /proc says
// the worker's name under task/TID/comm only; the process is named by its
// executable, and the comm read from /proc is the leader's.
func TestRenamedWorkerThread(t *testing.T) {
	const worker = "isc-net-0000"
	pid := os.Getpid()
	leader, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Skipf("no procfs: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	renamed := make(chan int)
	release := make(chan struct{})
	defer close(release)
	var rename func()
	rename = func() {
		// The goroutine keeps its thread locked and returns without
		// unlocking, so the runtime ends the renamed thread with it.
		runtime.LockOSThread()
		tid := unix.Gettid()
		if tid == pid {
			go rename() // the leader thread: hold it and try another
			<-release
			return
		}
		name, _ := unix.BytePtrFromString(worker)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
			t.Error(err)
		}
		renamed <- tid
		<-release
	}
	go rename()
	tid := <-renamed
	if got, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", pid, tid)); strings.TrimSpace(string(got)) != worker {
		t.Fatalf("thread %d is named %q, want %q", tid, got, worker)
	}

	info := readProc("/proc", uint32(pid))
	if info.comm != strings.TrimSpace(string(leader)) || info.comm == worker {
		t.Errorf("comm from /proc = %q, want the leader's %q", info.comm, leader)
	}
	c := NewCache(Config{HostName: "h"})
	p := c.Lookup(uint32(pid), worker) // a caller that wrongly passes the worker's comm
	if want := filepath.Base(exe); p.ServiceName != want || p.ExeName != want {
		t.Errorf("service %q executable %q, want %q", p.ServiceName, p.ExeName, want)
	}
	// Without exe and argv, the name is still the leader's, not the worker's.
	if got := processName(procInfo{comm: info.comm}, worker); got != info.comm {
		t.Errorf("name = %q, want the leader's comm %q", got, info.comm)
	}
}
