package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is a child process whose stdout and stderr go to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{} // closed once Wait returned
	waitErr error         // valid after exited is closed
}

// spawn starts argv with env in dir, output appended to logPath. When lines is
// not nil, every line the process writes on stdout is also sent to it (the
// channel is closed when stdout closes; lines are dropped when nobody reads).
func spawn(name, dir, logPath string, env []string, lines chan<- string, argv ...string) (*process, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stderr = lf
	// Own process group, so a stop signal never reaches the test binary and
	// the test binary's terminal signals never reach the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if lines != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			lf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	} else {
		cmd.Stdout = lf
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: lf, exited: make(chan struct{})}
	var copying sync.WaitGroup
	if stdout != nil {
		copying.Add(1)
		go func() {
			defer copying.Done()
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				fmt.Fprintf(lf, "%s\n", sc.Bytes())
				select {
				case lines <- sc.Text():
				default:
				}
			}
			// Drain whatever a too-long line left, so the child never blocks.
			io.Copy(lf, stdout)
		}()
	}
	go func() {
		copying.Wait() // Wait must not run before the stdout pipe is read to EOF
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to grace for the exit, then kills the process
// group. It returns Wait's error and whether the grace period ran out.
func (p *process) stop(sig syscall.Signal, grace time.Duration) (waitErr error, timedOut bool) {
	if p.running() {
		p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.exited:
		return p.waitErr, false
	case <-time.After(grace):
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	return p.waitErr, true
}

// describeExit renders Wait's error for messages.
func (p *process) describeExit() string {
	if p.running() {
		return "still running"
	}
	if p.waitErr == nil {
		return "exited with status 0"
	}
	return p.waitErr.Error()
}

// startTestProc starts a workload process for one test: it is stopped (SIGTERM,
// then SIGKILL after 5 s) when the test ends, and its log is printed when the
// test failed. The log lives in the test's temporary directory.
func startTestProc(t *testing.T, name string, env []string, lines chan<- string, argv ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	p, err := spawn(name, t.TempDir(), logPath, env, lines, argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, logPath, tail(logPath, 40))
		}
	})
	return p
}

// waitLine returns the first line from lines for which match is true, failing
// the test when the process exits or timeout passes first.
func waitLine(t *testing.T, p *process, lines <-chan string, timeout time.Duration, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				select {
				case <-p.exited:
				case <-time.After(2 * time.Second):
				}
				t.Fatalf("%s closed stdout before printing what the test waits for (%s); log:\n%s", p.name, p.describeExit(), tail(p.logPath, 40))
			}
			if match(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("%s printed nothing the test waits for within %v; log:\n%s", p.name, timeout, tail(p.logPath, 40))
		}
	}
}

// tail returns the last n lines of the file at path (at most 64 KiB).
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(empty)"
	}
	return "  | " + strings.Join(lines, "\n  | ")
}

// childEnv is the test's environment without any OTEL_* variable or
// Kubernetes client setting (so a developer's settings cannot leak into
// weft or the workloads), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "KUBERNETES_SERVICE_") && !strings.HasPrefix(kv, "NODE_NAME=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago, for programs that cannot listen on port 0 and report the port they got
// (Jaeger, nginx).
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close() // held until all are picked, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitUntil polls cond every 50 ms until it returns nil, the process p (if
// not nil) exits, or timeout passes; it returns cond's last error.
func waitUntil(timeout time.Duration, p *process, cond func() error) error {
	return poll(timeout, 50*time.Millisecond, p, cond)
}

// poll is waitUntil with the given interval.
func poll(timeout, interval time.Duration, p *process, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var exited <-chan struct{} // nil (never ready) without a process
	if p != nil {
		exited = p.exited
	}
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if p != nil && !p.running() {
			return fmt.Errorf("%s %s before it was ready (last check: %v)", p.name, p.describeExit(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		select {
		case <-tick.C:
		case <-exited:
		}
	}
}

// httpGetStatus does one GET with a short timeout and returns status and body.
func httpGetStatus(client *http.Client, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// tcpReady reports whether something accepts connections on addr.
func tcpReady(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// repoRoot finds the module root (the directory with go.mod) above the
// test's working directory (go test runs tests in the package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// goBuild builds the package pkg (relative to root, e.g. ./cmd/weft) into out.
func goBuild(root, pkg, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = childEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, bytes.TrimSpace(b))
	}
	return nil
}

// token returns a random lowercase word of n letters that are neither hex
// digits nor digits, so a path segment made of it is never templated to {id}.
func token(n int) string {
	const letters = "ghjkmnpqrstvwxyz"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// uniqueName makes a service name unique to this run: prefix-<random>.
func uniqueName(prefix string) string { return prefix + "-" + token(8) }
