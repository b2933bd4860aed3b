package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Docker test runs Debian's Docker Engine (docker.io) with a data
// root, exec root, pidfile and unix socket of its own in a temporary
// directory, so it never meets another engine on the machine; no bridge
// and no iptables rules either: the container uses the host's network.

const (
	dockerd   = "/usr/sbin/dockerd"
	dockerCLI = "/usr/bin/docker" // Debian's, the engine's own version
)

// dockerEngine is a running dockerd on a private socket.
type dockerEngine struct {
	dir    string // the temporary directory everything lives in
	socket string
	proc   *process
}

// needDocker installs docker.io when dockerd is missing (as .ci/run does).
func needDocker(t *testing.T) {
	t.Helper()
	_, errD := os.Stat(dockerd)
	_, errC := os.Stat(dockerCLI)
	if errD == nil && errC == nil {
		return
	}
	t.Logf("docker.io is not installed: installing it")
	for _, args := range [][]string{
		{"update", "-qq"},
		{"install", "-y", "-qq", "--no-install-recommends", "docker.io"},
	} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = childEnv("DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, p := range []string{dockerd, dockerCLI} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("docker.io installed but %s is missing: %v", p, err)
		}
	}
}

// startDocker starts dockerd in a fresh temporary directory and waits
// until it answers; when the test ends it stops it (and whatever it
// left mounted) and removes the directory, failed or not. extra dockerd
// flags come after the defaults, so they win (e.g. --userland-proxy=true).
func startDocker(t *testing.T, extra ...string) *dockerEngine {
	t.Helper()
	needDocker(t)
	// Not t.TempDir: unix socket paths are at most 107 bytes, and the
	// containerd and shim sockets nest under the exec root.
	dir, err := os.MkdirTemp("", "weft-docker-")
	if err != nil {
		t.Fatal(err)
	}
	e := &dockerEngine{dir: dir, socket: filepath.Join(dir, "docker.sock")}
	t.Cleanup(func() {
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	logPath := filepath.Join(dir, "dockerd.log")
	e.proc, err = spawn("dockerd", dir, logPath, childEnv(), nil, append([]string{dockerd,
		"--storage-driver=overlay2",
		"-H", "unix://" + e.socket,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
		"--userland-proxy=false"}, extra...)...)
	if err != nil {
		t.Fatalf("dockerd cannot start: %v", err)
	}
	t.Cleanup(func() {
		// dockerd stops its containerd on SIGTERM; its containers are
		// removed before (cleanups run last-registered first).
		if _, timedOut := e.proc.stop(syscall.SIGTERM, 30*time.Second); timedOut {
			t.Errorf("dockerd did not exit within 30 s of SIGTERM (killed it)")
		}
		if t.Failed() {
			t.Logf("dockerd log (%s):\n%s", logPath, tail(logPath, 40))
		}
	})
	if err := waitUntil(60*time.Second, e.proc, func() error {
		_, err := e.try("version", "--format", "{{.Server.Version}}")
		return err
	}); err != nil {
		t.Fatalf("dockerd (Debian's docker.io, on its own socket %s) did not start: %v\ndockerd log:\n%s", e.socket, err, tail(logPath, 40))
	}
	return e
}

// try runs the docker CLI against the engine and returns its stdout.
func (e *dockerEngine) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = e.env("DOCKER_BUILDKIT=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// env is the environment of a docker or compose client of the engine.
func (e *dockerEngine) env(extra ...string) []string {
	return childEnv(append([]string{"DOCKER_HOST=unix://" + e.socket, "DOCKER_CONFIG=" + filepath.Join(e.dir, "cli")}, extra...)...)
}

// docker is try that fails the test.
func (e *dockerEngine) docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unmountUnder lazily unmounts every mount point under dir, deepest first
// (overlays and netns bind mounts a killed dockerd may leave).
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Logf("unmount %s: %v", points[i], err)
		}
	}
}

var containerIDRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestDockerContainerMetadata: a weft given the engine's socket puts the
// Docker container's id, name and image on the spans of the process in it,
// and, with no OTEL_SERVICE_NAME anywhere, names the service after the
// container. The server is gosrv, static, in a FROM scratch image, on the
// host's network; curl calls it from the host.
func TestDockerContainerMetadata(t *testing.T) {
	s := needWeft(t)
	e := startDocker(t)

	build := t.TempDir()
	bin := filepath.Join(build, "gosrv")
	cmd := exec.Command("go", "build", "-o", bin, "./e2e/testdata/gosrv")
	cmd.Dir = s.root
	cmd.Env = childEnv("CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build gosrv: %v\n%s", err, out)
	}
	writeFile(t, build, "Dockerfile", []byte("FROM scratch\nCOPY gosrv /gosrv\nENTRYPOINT [\"/gosrv\"]\n"))
	name := uniqueName("e2e-docker")
	image, tag := "weft-e2e/gosrv-"+token(6), "1.0"
	e.docker(t, "build", "-q", "-t", image+":"+tag, build)

	// weft first, so the container's first connection finds the engine.
	w := startSecondWeft(t, childEnv("OTEL_BSP_SCHEDULE_DELAY=200"),
		"--exporter", "otlp", "--otlp-endpoint", "http://"+s.jaeger.otlpGRPC, "--otlp-protocol", "grpc",
		"--docker-socket", e.socket)

	id := strings.TrimSpace(e.docker(t, "run", "-d", "--name", name, "--network", "host", image+":"+tag))
	t.Cleanup(func() {
		if t.Failed() {
			if logs, err := e.try("logs", name); err == nil {
				t.Logf("container %s log:\n%s", name, logs)
			}
		}
		if _, err := e.try("rm", "-f", name); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if !containerIDRe.MatchString(id) {
		t.Fatalf("docker run printed %q, not a 64-hex container id", id)
	}
	if full := strings.TrimSpace(e.docker(t, "inspect", "--format", "{{.Id}}", name)); full != id {
		t.Fatalf("docker inspect says id %s, docker run %s", full, id)
	}
	// gosrv prints its port (on 127.0.0.1, the host's loopback) first.
	var port int
	if err := waitUntil(20*time.Second, nil, func() error {
		out, err := e.try("logs", name)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(out, "\n")
		port, err = strconv.Atoi(strings.TrimSpace(first))
		return err
	}); err != nil {
		t.Fatalf("the container's gosrv printed no port: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(e.docker(t, "inspect", "--format", "{{.State.Pid}}", name)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err != nil || !strings.Contains(string(b), id) {
		t.Fatalf("gosrv (pid %d) is not in a cgroup of container %s: %v\n%s", pid, id, err, b)
	}

	// The engine is asked in the background: the first exchanges may be
	// exported before the name is known (under the executable's name), so
	// curl until three spans carry the container's.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := Query{Service: name, Kind: "server"}
	var spans []Span
	requests := 0
	err = poll(spanTimeout+30*time.Second, 500*time.Millisecond, w.process, func() error {
		url := fmt.Sprintf("http://127.0.0.1:%d/items/%d", port, requests+1)
		out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", url).CombinedOutput()
		if err != nil || string(out) != "200" {
			return fmt.Errorf("curl %s: %v %s", url, err, out)
		}
		requests++
		if spans, err = s.jaeger.client.find(ctx, q); err != nil {
			return err
		}
		if len(spans) < 3 {
			return fmt.Errorf("%d of 3 server spans after %d requests", len(spans), requests)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("spans of service %q: %v", name, err)
	}
	want := map[string]string{
		"container.id":            id,
		"container.name":          name,
		"container.image.name":    image,
		"container.runtime.name":  "docker",
		"process.executable.name": "gosrv",
	}
	for i, sp := range spans {
		if sp.Service != name {
			t.Errorf("server span %d: service.name %q, want the container's name %q", i+1, sp.Service, name)
		}
		for k, v := range want {
			if got, _ := sp.Resource[k].V.(string); got != v {
				t.Errorf("server span %d (%s): resource %s = %v, want %q", i+1, sp.Name, k, sp.Resource[k], v)
			}
		}
		if got := sp.Resource["process.pid"].V; got != int64(pid) {
			t.Errorf("server span %d: resource process.pid = %v (%T), want %d", i+1, got, got, pid)
		}
		if sp.str("url.path") == "" || !strings.HasPrefix(sp.str("url.path"), "/items/") {
			t.Errorf("server span %d: url.path %q", i+1, sp.str("url.path"))
		}
	}
	if len(spans) > 0 {
		t.Logf("%d server spans of %d requests; the first's resource: %v", len(spans), requests, spans[0].Resource)
	}
}
