package k8smeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// inspectSleeperID is the container in testdata/docker/inspect-sleeper.json,
// the daemon's answer for a container run on this machine with
// OTEL_SERVICE_NAME=sleepy-svc from image local/sleeper:1.
const inspectSleeperID = "efe4203a4941bd77f7ba4c18ca3cd4924872e0e2632bd9565e0e559a00f926a8"

// fakeDocker serves the Engine API's inspect on a unix socket: the
// fixture for inspectSleeperID, 404 for anything else. Requests wait while
// gate is non-nil and open.
type fakeDocker struct {
	socket   string
	requests atomic.Int64
	gate     chan struct{}
	status   atomic.Int64 // when non-zero, every answer has this status
}

func newFakeDocker(t *testing.T) *fakeDocker {
	t.Helper()
	body, err := os.ReadFile("testdata/docker/inspect-sleeper.json")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "weftdocker") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDocker{socket: filepath.Join(dir, "docker.sock")}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-r.Context().Done():
				return
			}
		}
		if s := f.status.Load(); s != 0 {
			http.Error(w, `{"message":"boom"}`, int(s))
			return
		}
		if r.Method != http.MethodGet {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		id, ok := strings.CutPrefix(r.URL.Path, "/containers/")
		id, ok2 := strings.CutSuffix(id, "/json")
		if !ok || !ok2 || id != inspectSleeperID {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDockerInspect(t *testing.T) {
	f := newFakeDocker(t)
	d := NewDocker(DockerConfig{Socket: f.socket})
	defer d.Close()
	c, err := d.Inspect(context.Background(), inspectSleeperID)
	if err != nil {
		t.Fatal(err)
	}
	want := Container{ID: inspectSleeperID, Name: "weft-k8smeta-test", ImageName: "local/sleeper", ImageTag: "1", ServiceName: "sleepy-svc"}
	if c != want {
		t.Errorf("Inspect = %+v, want %+v", c, want)
	}
	_, err = d.Inspect(context.Background(), strings.Repeat("0", 64))
	if !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("Inspect of an unknown container: %v, want ErrNoSuchContainer", err)
	}
	if _, err := d.Inspect(context.Background(), "../../info"); err == nil {
		t.Errorf("Inspect accepted a path as an id")
	}
}

func TestDockerLookupNeverBlocks(t *testing.T) {
	f := newFakeDocker(t)
	f.gate = make(chan struct{})
	d := NewDocker(DockerConfig{Socket: f.socket})
	defer d.Close()

	for i := 0; i < 100; i++ {
		start := time.Now()
		if _, ok := d.Lookup(inspectSleeperID); ok {
			t.Fatal("Lookup answered before the daemon did")
		}
		if el := time.Since(start); el > 100*time.Millisecond {
			t.Fatalf("Lookup took %s while the daemon hangs", el)
		}
	}
	eventually(t, "the fetch to reach the daemon", func() bool { return f.requests.Load() == 1 })
	close(f.gate)
	var c Container
	eventually(t, "the fetch to land", func() bool {
		var ok bool
		c, ok = d.Lookup(inspectSleeperID)
		return ok
	})
	if c.Name != "weft-k8smeta-test" || c.ServiceName != "sleepy-svc" {
		t.Errorf("Lookup = %+v", c)
	}
	s := d.Stats()
	if f.requests.Load() != 1 || s.Fetches != 1 {
		t.Errorf("%d requests, %d fetches: want one of each for 100 lookups", f.requests.Load(), s.Fetches)
	}
	if s.Misses < 100 || s.Hits < 1 {
		t.Errorf("stats %+v: want >= 100 misses and a hit", s)
	}
}

func TestDockerUnknownAndFailing(t *testing.T) {
	f := newFakeDocker(t)
	now := time.Unix(1000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	d := NewDocker(DockerConfig{Socket: f.socket, RetryAfter: time.Minute, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	defer d.Close()

	// Unknown to the daemon: asked once, never again.
	unknown := strings.Repeat("ab", 32)
	d.Lookup(unknown)
	eventually(t, "the 404", func() bool { return d.Stats().NotFound == 1 })
	for i := 0; i < 10; i++ {
		if _, ok := d.Lookup(unknown); ok {
			t.Fatal("unknown container found")
		}
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests for an unknown container, want 1", n)
	}

	// Not an id: never asked.
	d.Lookup("not-an-id")
	if n := f.requests.Load(); n != 1 {
		t.Errorf("a non-id was fetched")
	}

	// Daemon failing: retried after RetryAfter, not before.
	f.status.Store(http.StatusInternalServerError)
	d.Lookup(inspectSleeperID)
	eventually(t, "the failure", func() bool { return d.Stats().Failed == 1 })
	d.Lookup(inspectSleeperID)
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2: a failed fetch is not retried at once", n)
	}
	f.status.Store(0)
	clock.Add(int64(2 * time.Minute))
	d.Lookup(inspectSleeperID)
	eventually(t, "the retry", func() bool { _, ok := d.Lookup(inspectSleeperID); return ok })

	// Forget drops it; the next Lookup fetches again.
	d.Forget(inspectSleeperID)
	if _, ok := d.Lookup(inspectSleeperID); ok {
		t.Error("Lookup after Forget answered from the cache")
	}
	eventually(t, "the refetch", func() bool { _, ok := d.Lookup(inspectSleeperID); return ok })
}

func TestDockerDaemonAbsent(t *testing.T) {
	d := NewDocker(DockerConfig{Socket: filepath.Join(t.TempDir(), "none.sock")})
	defer d.Close()
	d.Lookup(inspectSleeperID)
	eventually(t, "the failure", func() bool { return d.Stats().Failed == 1 })
	if _, err := d.Inspect(context.Background(), inspectSleeperID); err == nil || !strings.Contains(err.Error(), "inspect container") {
		t.Errorf("Inspect with no daemon: %v", err)
	}
}

func TestDockerBounded(t *testing.T) {
	f := newFakeDocker(t)
	d := NewDocker(DockerConfig{Socket: f.socket, MaxContainers: 4, MaxInFlight: 1})
	defer d.Close()
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("%064x", i+1)
		d.Lookup(id)
		eventually(t, "the fetch", func() bool { return d.Stats().Fetches == uint64(i+1) && d.Stats().NotFound == uint64(i+1) })
		if n := d.Stats().Containers; n > 4 {
			t.Fatalf("cache holds %d, bound 4", n)
		}
	}
	if d.Stats().Evictions == 0 {
		t.Error("no evictions")
	}
}

func TestDockerCloseStopsFetches(t *testing.T) {
	f := newFakeDocker(t)
	f.gate = make(chan struct{}) // never opened: the fetch hangs until Close
	d := NewDocker(DockerConfig{Socket: f.socket, Timeout: time.Minute})
	d.Lookup(inspectSleeperID)
	eventually(t, "the fetch to reach the daemon", func() bool { return f.requests.Load() == 1 })
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the fetch in flight")
	}
	d.Lookup(strings.Repeat("cd", 32))
	if n := f.requests.Load(); n != 1 {
		t.Errorf("a Lookup after Close fetched")
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ ref, name, tag string }{
		{"nginx", "nginx", ""},
		{"nginx:1.25", "nginx", "1.25"},
		{"docker.io/library/nginx:1.25", "docker.io/library/nginx", "1.25"},
		{"registry:5000/team/app", "registry:5000/team/app", ""},
		{"registry:5000/team/app:v2", "registry:5000/team/app", "v2"},
		{"ghcr.io/a/b:v1@sha256:0123", "ghcr.io/a/b", "v1"},
		{"ghcr.io/a/b@sha256:0123", "ghcr.io/a/b", ""},
		{"sha256:114c92e5271e", "sha256:114c92e5271e", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if n, tag := SplitImage(tt.ref); n != tt.name || tag != tt.tag {
			t.Errorf("SplitImage(%q) = %q, %q; want %q, %q", tt.ref, n, tag, tt.name, tt.tag)
		}
	}
}

// TestDockerRealDaemon asks a running dockerd about each of its running
// containers and checks the answer against the daemon's own listing and
// the container's first process's cgroup. It runs when the socket exists:
// WEFT_DOCKER_SOCKET, else /var/run/docker.sock.
func TestDockerRealDaemon(t *testing.T) {
	socket := os.Getenv("WEFT_DOCKER_SOCKET")
	if socket == "" {
		socket = DefaultDockerSocket
	}
	if _, err := os.Stat(socket); err != nil {
		t.Skipf("no Docker daemon: %v", err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	defer hc.CloseIdleConnections()
	get := func(path string, v any) {
		t.Helper()
		resp, err := hc.Get("http://docker" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var list []struct {
		ID    string `json:"Id"`
		Names []string
		Image string
	}
	get("/containers/json", &list)
	if len(list) == 0 {
		t.Skip("the daemon runs no containers")
	}
	d := NewDocker(DockerConfig{Socket: socket})
	defer d.Close()
	cgroups := NewCgroupCache(CgroupConfig{})
	for _, lc := range list {
		var c Container
		eventually(t, "lookup of "+lc.ID, func() bool {
			var ok bool
			c, ok = d.Lookup(lc.ID)
			return ok
		})
		if len(lc.Names) == 0 || c.Name != strings.TrimPrefix(lc.Names[0], "/") {
			t.Errorf("container %s: name %q, listing says %q", lc.ID, c.Name, lc.Names)
		}
		if name, _ := SplitImage(lc.Image); c.ImageName != name {
			t.Errorf("container %s: image %q, listing says %q", lc.ID, c.ImageName, lc.Image)
		}
		var in struct{ State struct{ Pid int } }
		get("/containers/"+lc.ID+"/json", &in)
		if in.State.Pid > 0 && os.Geteuid() == 0 {
			if cg := cgroups.Lookup(uint32(in.State.Pid)); cg.ContainerID != lc.ID {
				t.Errorf("container %s: its pid %d's cgroup says %+v", lc.ID, in.State.Pid, cg)
			}
		}
		t.Logf("%s: %+v", lc.ID[:12], c)
	}
}
