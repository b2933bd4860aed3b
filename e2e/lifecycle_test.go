package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// startSecondWeft starts another weft (the suite's binary) for one test,
// in the test's own directory and on its own --http-addr; it is stopped
// with SIGTERM (and must exit 0) when the test ends, unless the test
// already stopped it.
func startSecondWeft(t *testing.T, env []string, args ...string) *weftProc {
	t.Helper()
	s := needWeft(t)
	dir := t.TempDir()
	w, err := startWeftArgs(s.weftBin, dir, env, args...)
	if w != nil {
		t.Cleanup(func() {
			if w.running() {
				if err := w.shutdown(); err != nil {
					t.Errorf("second weft: %v", err)
				}
			}
			if t.Failed() {
				t.Logf("second weft log (%s):\n%s", w.logPath, tail(w.logPath, 60))
			}
		})
	}
	if err != nil {
		t.Fatalf("second weft: %v", err)
	}
	return w
}

// bpfObjects are the kernel BPF objects a process holds file descriptors
// to, by id.
type bpfObjects struct {
	progs, maps, links []uint32
}

func (o bpfObjects) String() string {
	return fmt.Sprintf("%d programs %v, %d maps %v, %d links %v", len(o.progs), o.progs, len(o.maps), o.maps, len(o.links), o.links)
}

// ownedBPF reads /proc/PID/fdinfo: a BPF program, map or link fd says
// prog_id, map_id or link_id there (a link fd also names its program).
func ownedBPF(pid int) (bpfObjects, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return bpfObjects{}, err
	}
	seen := map[string]map[uint32]bool{"prog_id": {}, "map_id": {}, "link_id": {}}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ids, known := seen[k]; ok && known {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil && id != 0 {
					ids[uint32(id)] = true
				}
			}
		}
		f.Close()
	}
	sorted := func(m map[uint32]bool) []uint32 {
		var out []uint32
		for id := range m {
			out = append(out, id)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	return bpfObjects{progs: sorted(seen["prog_id"]), maps: sorted(seen["map_id"]), links: sorted(seen["link_id"])}, nil
}

// stillLoaded returns the objects of o the kernel still has.
func stillLoaded(o bpfObjects) (bpfObjects, error) {
	var left bpfObjects
	exists := func(err error, c interface{ Close() error }) (bool, error) {
		if err == nil {
			c.Close()
			return true, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	for _, id := range o.progs {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if ok, err := exists(err, p); err != nil {
			return left, fmt.Errorf("look up program %d: %w", id, err)
		} else if ok {
			left.progs = append(left.progs, id)
		}
	}
	for _, id := range o.maps {
		m, err := ebpf.NewMapFromID(ebpf.MapID(id))
		if ok, err := exists(err, m); err != nil {
			return left, fmt.Errorf("look up map %d: %w", id, err)
		} else if ok {
			left.maps = append(left.maps, id)
		}
	}
	for _, id := range o.links {
		l, err := link.NewFromID(link.ID(id))
		if ok, err := exists(err, l); err != nil {
			return left, fmt.Errorf("look up link %d: %w", id, err)
		} else if ok {
			left.links = append(left.links, id)
		}
	}
	return left, nil
}

// tracefsEvents returns the dynamic probe events defined in tracefs
// (uprobe_events, kprobe_events): one a probe library falls back to
// writing there outlives a killed process.
func tracefsEvents(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range []string{"/sys/kernel/tracing/uprobe_events", "/sys/kernel/tracing/kprobe_events"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // kprobes are not built into our kernels
		}
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				out[filepath.Base(f)+": "+l] = true
			}
		}
	}
	return out
}

// TestLifecycleSIGKILL: a second weft is SIGKILLed while attached (its
// uprobes on every Go and OpenSSL process, its tracepoints, its ring
// buffer): every BPF program, map and link it held is gone from the
// kernel within a few seconds, and no tracefs probe event it made is
// left behind. Nothing is pinned, so nothing outlives the process.
func TestLifecycleSIGKILL(t *testing.T) {
	before := tracefsEvents(t)
	w := startSecondWeft(t, childEnv(), "--exporter", "none")
	pid := w.cmd.Process.Pid
	owned, err := ownedBPF(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("weft %d holds %s", pid, owned)
	// Its tracepoints alone are dozens of programs and links; the maps
	// include the ring buffer and the connection table.
	if len(owned.progs) < 10 || len(owned.maps) < 5 || len(owned.links) < 10 {
		t.Fatalf("weft %d holds too few BPF objects for an attached agent: %s", pid, owned)
	}
	if left, err := stillLoaded(owned); err != nil || len(left.progs)+len(left.maps)+len(left.links) != len(owned.progs)+len(owned.maps)+len(owned.links) {
		t.Fatalf("the kernel does not list what weft holds (a broken check): %s, %v", left, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("weft %d did not die within 5 s of SIGKILL", pid)
	}
	killed := time.Now()
	var left bpfObjects
	err = poll(5*time.Second, 20*time.Millisecond, nil, func() error {
		var err error
		if left, err = stillLoaded(owned); err != nil {
			return err
		}
		if n := len(left.progs) + len(left.maps) + len(left.links); n > 0 {
			return fmt.Errorf("%d objects left: %s", n, left)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after SIGKILL, the BPF objects weft %d held are still loaded: %v", pid, err)
	}
	t.Logf("all gone %v after the kill", time.Since(killed).Round(time.Millisecond))
	for ev := range tracefsEvents(t) {
		if !before[ev] {
			t.Errorf("tracefs probe event left after SIGKILL: %s", ev)
		}
	}
}

// instanceKey is the resource attribute a second weft adds to its spans
// (--resource-attributes) so that they are told from the suite agent's.
const instanceKey = "weft.e2e.instance"

// taggedSpans returns the spans of q whose resource has instanceKey=
// instance ("": does not have it).
func taggedSpans(ctx context.Context, q Query, instance string) ([]Span, error) {
	all, err := suite.jaeger.client.find(ctx, q)
	var out []Span
	for _, s := range all {
		if v, _ := s.Resource[instanceKey].V.(string); v == instance {
			out = append(out, s)
		}
	}
	return out, err
}

// waitTagged waits for exactly want spans of q from the weft instance
// (see taggedSpans), in the order of paths.
func waitTagged(t *testing.T, q Query, instance string, want int, paths []string) []Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []Span
	err := poll(spanTimeout, 100*time.Millisecond, nil, func() error {
		var err error
		if got, err = taggedSpans(ctx, q, instance); err != nil {
			return err
		}
		if len(got) < want {
			return fmt.Errorf("%d of %d spans", len(got), want)
		}
		return nil
	})
	if err == nil {
		time.Sleep(settleTime)
		got, err = taggedSpans(ctx, q, instance)
	}
	if err == nil && len(got) != want {
		err = fmt.Errorf("%d spans, want exactly %d", len(got), want)
	}
	if err != nil {
		t.Fatalf("spans {%s} of weft instance %q: %v: %v", q, instance, err, got)
	}
	sortSpans(got, paths)
	return got
}

// TestLifecycleSIGTERMFlush: a second weft that would hold its spans for
// a minute (join wait) and export them only every ten minutes is sent
// SIGTERM right after curl's requests return: it exits 0 within 10 s
// and every span of those exchanges, both ends, reaches Jaeger. Its spans
// are told from the suite's agent's by a resource attribute of its own.
func TestLifecycleSIGTERMFlush(t *testing.T) {
	s := needWeft(t)
	instance := token(12)
	w := startSecondWeft(t, childEnv("OTEL_BSP_SCHEDULE_DELAY=600000"),
		"--exporter", "otlp", "--otlp-endpoint", "http://"+s.jaeger.otlpGRPC, "--otlp-protocol", "grpc",
		"--join-wait", "1m", "--resource-attributes", instanceKey+"="+instance)
	srvSvc, curlSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-curl")
	port := startGoServer(t, srvSvc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	paths := []string{"/items/1", "/status/404", "/items/3"}
	var ops []curlOp
	for _, p := range paths {
		ops = append(ops, curlOp{url: base + p})
	}
	res, _, _ := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), ops...)
	requireOneConnection(t, res)
	// The premise: nothing of this weft's has been exported yet.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []Query{{Service: srvSvc}, {Service: curlSvc}} {
		if early, err := taggedSpans(ctx, q, instance); err != nil || len(early) > 0 {
			t.Fatalf("spans of the second weft reached Jaeger before SIGTERM (%v): %v", err, early)
		}
	}
	signalled := time.Now()
	if err := w.shutdown(); err != nil {
		t.Fatal(err)
	}
	t.Logf("second weft exited 0 %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	for _, c := range []struct{ svc, kind string }{{srvSvc, "server"}, {curlSvc, "client"}} {
		got := waitTagged(t, Query{Service: c.svc, Kind: c.kind}, instance, len(paths), paths)
		for i, sp := range got {
			if sp.str(attrPath) != paths[i] {
				t.Errorf("%s span %d: url.path %q, want %q: %s", c.kind, i+1, sp.str(attrPath), paths[i], sp)
			}
		}
	}
}

// TestLifecycleSecondInstance: a second weft on the same host runs (it is
// not refused: a DaemonSet rolling update overlaps two) and both trace
// everything independently: both export to Jaeger, and each exports
// exactly one correct span per end of each exchange, told apart by the
// second's resource attribute; neither crashes; and each filters only
// itself: the suite's agent traces the second's OTLP exports (the
// second's fresh connection to Jaeger), the second never its own.
func TestLifecycleSecondInstance(t *testing.T) {
	s := needWeft(t)
	instance, secondSvc := token(12), uniqueName("e2e-weft2")
	w := startSecondWeft(t, childEnv("OTEL_BSP_SCHEDULE_DELAY=200", "OTEL_SERVICE_NAME="+secondSvc),
		"--exporter", "otlp", "--otlp-endpoint", "http://"+s.jaeger.otlpGRPC, "--otlp-protocol", "grpc",
		"--resource-attributes", instanceKey+"="+instance)
	srvSvc, curlSvc := uniqueName("e2e-gosrv"), uniqueName("e2e-curl")
	port := startGoServer(t, srvSvc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	exs := []exchange{
		{method: "GET", path: "/items/7", name: "GET /items/{id}", status: 200},
		{method: "GET", path: "/status/503", name: "GET /status/{id}", status: 503},
	}
	var ops []curlOp
	var paths []string
	for _, ex := range exs {
		ops = append(ops, curlOp{url: base + ex.path})
		paths = append(paths, ex.path)
	}
	res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), ops...)
	requireOneConnection(t, res)
	exs = curlExchanges(t, res, from, to, needCurlUA(t), exs)
	for _, inst := range []string{"", instance} {
		for _, c := range []struct{ svc, kind string }{{srvSvc, "server"}, {curlSvc, "client"}} {
			got := waitTagged(t, Query{Service: c.svc, Kind: c.kind}, inst, len(exs), paths)
			for i, ex := range exs {
				w := serverWant(c.svc, port, ex)
				if c.kind == "client" {
					w = clientWant(c.svc, port, ex)
				}
				checkSpan(t, fmt.Sprintf("weft instance %q: %s span %d", inst, c.kind, i+1), got[i], w)
			}
		}
	}
	// The second's exports, as the suite's agent saw them; none as the
	// second saw them.
	secondPid := int64(w.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seen []Span
	err := poll(spanTimeout, 100*time.Millisecond, nil, func() error {
		var err error
		if seen, err = taggedSpans(ctx, Query{Service: secondSvc, Kind: "client"}, ""); err != nil {
			return err
		}
		if len(seen) == 0 {
			return errors.New("no span")
		}
		return nil
	})
	if err != nil {
		t.Errorf("the suite's agent exported no client span of the second weft's exports (service %s): %v", secondSvc, err)
	}
	for _, sp := range seen {
		if pid, _ := sp.Resource["process.pid"].V.(int64); pid != secondPid {
			t.Errorf("span of service %s has process.pid %d, want the second weft's %d: %s", secondSvc, pid, secondPid, sp)
		}
	}
	if self, err := taggedSpans(ctx, Query{Service: secondSvc}, instance); err != nil || len(self) > 0 {
		t.Errorf("the second weft traced itself (%v): %v", err, self)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, a := range []*weftProc{s.weft, w} {
		if code, _, err := httpGetStatus(hc, a.url("/healthz")); !a.running() || err != nil || code != http.StatusOK {
			t.Errorf("weft pid %d: running %v, /healthz %d %v", a.cmd.Process.Pid, a.running(), code, err)
		}
	}
}
