package bpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// warnLog records Warn calls.
type warnLog struct {
	mu    sync.Mutex
	warns []string
}

func (l *warnLog) Warn(msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprint(append([]any{msg}, args...)...))
}

// fakeSSL is an OpenSSL over a fake /proc tree whose attach records the
// paths it was asked for and fails with err (nil: succeeds).
type fakeSSL struct {
	*OpenSSL
	proc     string
	log      *warnLog
	attached []string
	err      error
	before   func() // run by the attach before it answers
}

func newFakeSSL(t *testing.T) *fakeSSL {
	t.Helper()
	f := &fakeSSL{proc: t.TempDir(), log: &warnLog{}}
	f.OpenSSL = newOpenSSLState(f.log, func(path string) ([]link.Link, error) {
		f.attached = append(f.attached, path)
		if f.before != nil {
			f.before()
		}
		if f.err != nil {
			return nil, f.err
		}
		return nil, nil
	})
	f.OpenSSL.proc = f.proc
	f.mountNS(t, "self", "mnt:[4026531841]")
	return f
}

// mountNS makes dir's ns/mnt link name the namespace ns.
func (f *fakeSSL) mountNS(t *testing.T, dir, ns string) {
	t.Helper()
	d := filepath.Join(f.proc, dir, "ns")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ns, filepath.Join(d, "mnt")); err != nil {
		t.Fatal(err)
	}
}

// process makes /proc/PID with maps listing libs, its mount namespace ns
// and its root (none when root is "": the process is exiting).
func (f *fakeSSL) process(t *testing.T, pid uint32, ns, root string, libs ...string) {
	t.Helper()
	dir := filepath.Join(f.proc, strconv.Itoa(int(pid)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var maps []byte
	for _, l := range libs {
		maps = fmt.Appendf(maps, "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234 %s\n", l)
	}
	if err := os.WriteFile(filepath.Join(dir, "maps"), maps, 0o644); err != nil {
		t.Fatal(err)
	}
	if ns != "" {
		f.mountNS(t, strconv.Itoa(int(pid)), ns)
	}
	if root != "" {
		if err := os.Symlink(root, filepath.Join(dir, "root")); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fakeSSL) check(t *testing.T, attached []string, libs int64, vanished, failed uint64, warns int) {
	t.Helper()
	if !slices.Equal(f.attached, attached) {
		t.Errorf("attached through %q, want %q", f.attached, attached)
	}
	if f.Attached() != libs || f.Vanished() != vanished || f.Failed() != failed || len(f.log.warns) != warns {
		t.Errorf("libraries %d vanished %d failed %d warnings %q; want %d, %d, %d and %d warnings",
			f.Attached(), f.Vanished(), f.Failed(), f.log.warns, libs, vanished, failed, warns)
	}
}

// hostLib makes a file standing for the host's libssl.
func hostLib(t *testing.T) string {
	t.Helper()
	lib := filepath.Join(t.TempDir(), "usr", "lib", "libssl.so.3")
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	return lib
}

// TestOpenSSLHostLibraryByHostPath: the host's libssl is attached once, by
// its host path, whether the process shares weft's mount namespace or
// sees the same file (device and inode) through its root; a short-lived
// process of weft's namespace needs no /proc/PID/root at all.
func TestOpenSSLHostLibraryByHostPath(t *testing.T) {
	f := newFakeSSL(t)
	lib := hostLib(t)
	f.process(t, 100, "mnt:[4026531841]", "", lib) // weft's namespace, already exiting: no root
	f.ScanProcess(100)
	f.check(t, []string{lib}, 1, 0, 0, 0)

	f.process(t, 101, "mnt:[4026532999]", "/", lib) // another namespace, the same file
	f.ScanProcess(101)
	f.check(t, []string{lib}, 1, 0, 0, 0)

	// Both are users: the library (in a temp dir, not a system directory)
	// is detached when the last one exits.
	f.ProcessExit(100)
	if f.Attached() != 1 {
		t.Errorf("libraries %d after the first user exited, want 1", f.Attached())
	}
	f.ProcessExit(101)
	if f.Attached() != 0 {
		t.Errorf("libraries %d after the last user exited, want 0", f.Attached())
	}
}

// TestOpenSSLContainerCopy: a container's own libssl (another file at the
// same path) is attached through /proc/PID/root; when the process exits
// before the attach opens it, that is counted as vanished, not warned
// about, and not counted as a failure.
func TestOpenSSLContainerCopy(t *testing.T) {
	f := newFakeSSL(t)
	host := hostLib(t)
	croot := t.TempDir()
	own := filepath.Join(croot, host) // the same path inside the container's root
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, []byte("\x7fELF other"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.process(t, 200, "mnt:[4026532999]", croot, host)
	through := filepath.Join(f.proc, "200", "root", host)
	f.ScanProcess(200)
	f.check(t, []string{through}, 1, 0, 0, 0)

	// Another container's copy; the process exits between the stat and
	// the attach, which then finds no file.
	croot2 := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(croot2, host)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(croot2, host), []byte("\x7fELF third"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.process(t, 201, "mnt:[4026533000]", croot2, host)
	f.err = &os.PathError{Op: "open", Path: host, Err: unix.ENOENT}
	f.before = func() { _ = os.RemoveAll(filepath.Join(f.proc, "201")) }
	f.ScanProcess(201)
	f.check(t, []string{through, filepath.Join(f.proc, "201", "root", host)}, 1, 1, 0, 0)
}

// TestOpenSSLVanishedProcess: a process gone before its maps are read is
// counted, without a warning; a kernel thread (no exe) is not gone.
func TestOpenSSLVanishedProcess(t *testing.T) {
	f := newFakeSSL(t)
	f.ScanProcess(300) // no /proc/300 at all
	f.check(t, nil, 0, 1, 0, 0)

	// A kernel thread: no libraries, no exe, but not gone either.
	f.process(t, 301, "", "")
	f.ScanProcess(301)
	f.check(t, nil, 0, 1, 0, 0)
}

// TestOpenSSLAttachFailureWarns: a failure other than a vanished process
// is still a warning and a failure.
func TestOpenSSLAttachFailureWarns(t *testing.T) {
	f := newFakeSSL(t)
	lib := hostLib(t)
	f.process(t, 400, "mnt:[4026531841]", "", lib)
	f.err = errors.New("attach uprobe SSL_write: symbol not found")
	f.ScanProcess(400)
	f.check(t, []string{lib}, 0, 0, 1, 1)
	// Through the host path, even "no such file" is a real failure.
	f.err = &os.PathError{Op: "open", Path: lib, Err: unix.ENOENT}
	f.ScanProcess(400)
	f.check(t, []string{lib, lib}, 0, 0, 2, 2)
}

// TestOpenSSLResolveRealProcess: against the real /proc, a child in weft's
// mount namespace resolves to the host path; once it has exited, a scan
// counts it as vanished and warns about nothing.
func TestOpenSSLResolveRealProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/mnt"); err != nil {
		t.Skipf("no procfs: %v", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	o := newOpenSSLState(&warnLog{}, func(string) ([]link.Link, error) { return nil, nil })
	target, _, err := o.resolve(pid, sleep)
	if err != nil || target != sleep {
		t.Errorf("resolve = %q, %v; want the host path %q", target, err, sleep)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	log := &warnLog{}
	o = newOpenSSLState(log, func(string) ([]link.Link, error) { return nil, nil })
	o.ScanProcess(pid)
	if o.Vanished() != 1 || len(log.warns) != 0 || o.Failed() != 0 {
		t.Errorf("vanished %d failed %d warnings %q; want 1, 0, none", o.Vanished(), o.Failed(), log.warns)
	}
}
