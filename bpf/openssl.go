package bpf

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// sslProbe is one OpenSSL function weft hooks at entry and return. The
// _ex variants are OpenSSL 1.1.1+; a library without them still gets the
// others.
type sslProbe struct {
	symbol      string
	enter, exit func(*weftPrograms) *ebpf.Program
	optional    bool
}

var sslProbes = []sslProbe{
	{"SSL_write", func(p *weftPrograms) *ebpf.Program { return p.UprobeSslWrite }, func(p *weftPrograms) *ebpf.Program { return p.UretprobeSslWrite }, false},
	{"SSL_read", func(p *weftPrograms) *ebpf.Program { return p.UprobeSslRead }, func(p *weftPrograms) *ebpf.Program { return p.UretprobeSslRead }, false},
	{"SSL_write_ex", func(p *weftPrograms) *ebpf.Program { return p.UprobeSslWriteEx }, func(p *weftPrograms) *ebpf.Program { return p.UretprobeSslWriteEx }, true},
	{"SSL_read_ex", func(p *weftPrograms) *ebpf.Program { return p.UprobeSslReadEx }, func(p *weftPrograms) *ebpf.Program { return p.UretprobeSslReadEx }, true},
}

// systemSSLDirs hold the distribution's libssl: libraries found there stay
// attached for weft's whole life, so a process started later is traced from
// its first byte (a uprobe follows the file, not the process).
var systemSSLDirs = []string{"/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/", "/usr/local/lib/"}

// fileID names a library file whatever path or mount namespace it is seen
// through.
type fileID struct{ dev, ino uint64 }

type sslLib struct {
	path   string
	links  []link.Link
	users  map[uint32]struct{}
	pinned bool
}

// OpenSSL attaches the SSL_read/SSL_write uprobes to every libssl (and every
// executable that links OpenSSL statically, found by its symbols) that
// processes map: once per file, detached when the last process using a
// non-system copy exits.
type OpenSSL struct {
	log interface{ Warn(string, ...any) }
	// proc is the procfs mount ("/proc"; tests point it at a fake tree).
	proc string
	// attachFile hooks the OpenSSL functions of the file at path.
	attachFile func(path string) ([]link.Link, error)

	mu      sync.Mutex
	libs    map[fileID]*sslLib
	pids    map[uint32][]fileID
	noSSL   map[fileID]bool // executables already found to have no OpenSSL
	work    chan sslWork
	quit    chan struct{} // closed by close; work is never closed, so Notify is always safe
	done    chan struct{}
	dropped atomic.Uint64

	attached atomic.Int64
	failed   atomic.Uint64
	vanished atomic.Uint64
}

type sslWork struct {
	pid  uint32
	exit bool
}

func newOpenSSL(progs *weftPrograms, log interface{ Warn(string, ...any) }) *OpenSSL {
	o := newOpenSSLState(log, func(path string) ([]link.Link, error) { return attachSSL(progs, path) })
	go o.run()
	return o
}

// newOpenSSLState is an OpenSSL without its discovery goroutine.
func newOpenSSLState(log interface{ Warn(string, ...any) }, attach func(string) ([]link.Link, error)) *OpenSSL {
	return &OpenSSL{log: log, proc: "/proc", attachFile: attach, libs: map[fileID]*sslLib{}, pids: map[uint32][]fileID{},
		noSSL: map[fileID]bool{}, work: make(chan sslWork, 1024), quit: make(chan struct{}), done: make(chan struct{})}
}

// run does discovery off the ring buffer reader's goroutine: reading maps
// and ELF symbols takes milliseconds.
func (o *OpenSSL) run() {
	defer close(o.done)
	for {
		select {
		case <-o.quit:
			return
		case w := <-o.work:
			if w.exit {
				o.ProcessExit(w.pid)
			} else {
				o.ScanProcess(w.pid)
			}
		}
	}
}

// Notify queues a new process (exit false) or a gone one for discovery. It
// never blocks; a full queue drops the notice and counts it.
func (o *OpenSSL) Notify(pid uint32, exit bool) {
	select {
	case o.work <- sslWork{pid: pid, exit: exit}:
	default:
		o.dropped.Add(1)
	}
}

// hostSSLGlobs are where the host's own libssl lives on the distributions
// we know (Debian/Ubuntu multiarch, Fedora/RHEL lib64, Alpine and others).
var hostSSLGlobs = []string{"/usr/lib/x86_64-linux-gnu/libssl.so.*", "/lib/x86_64-linux-gnu/libssl.so.*",
	"/usr/lib64/libssl.so.*", "/lib64/libssl.so.*", "/usr/lib/libssl.so.*", "/lib/libssl.so.*"}

// AttachHost attaches to the host's libssl before any process maps it: a
// program that starts and speaks TLS at once would otherwise make its
// first calls before discovery (a notice away) caught up with it.
func (o *OpenSSL) AttachHost() {
	for _, g := range hostSSLGlobs {
		paths, _ := filepath.Glob(g)
		for _, path := range paths {
			if id, err := statID(path); err == nil {
				o.attach(0, path, id, true, false) // pid 0: the host itself
			}
		}
	}
}

// ScanAll attaches to what every running process maps. Called at start.
func (o *OpenSSL) ScanAll() {
	entries, _ := os.ReadDir(o.proc)
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		o.ScanProcess(uint32(pid))
	}
}

// ScanProcess attaches to the OpenSSL copies pid maps, if new, and records
// pid as one of their users.
//
// A process that exits before it could be looked at, or before its files
// could be opened through /proc/PID, is counted (Vanished), not warned
// about: short-lived clients do it all the time. Its files are only lost
// when they are its own copies; the host's libssl is attached by its host
// path, for every process that maps it.
func (o *OpenSSL) ScanProcess(pid uint32) {
	if o.scan(pid) {
		o.vanished.Add(1)
	}
}

// scan is ScanProcess; it reports whether pid turned out to be gone.
func (o *OpenSSL) scan(pid uint32) (gone bool) {
	paths, err := sslPaths(o.procDir(pid))
	if err != nil {
		return o.gone(pid, err)
	}
	for _, path := range paths {
		target, id, err := o.resolve(pid, path)
		if err != nil {
			gone = gone || o.gone(pid, err)
			continue
		}
		gone = o.attach(pid, target, id, isSystemPath(path), target != path) || gone
	}
	if len(paths) == 0 {
		return o.scanStatic(pid)
	}
	return gone
}

func (o *OpenSSL) procDir(pid uint32) string {
	return filepath.Join(o.proc, strconv.FormatUint(uint64(pid), 10))
}

// resolve returns the path to attach to the file pid maps at path (a path
// in pid's mount namespace), and the file's identity. It is path itself,
// which outlives the process, when pid sees the same file there as weft
// does: pid shares weft's mount namespace, or path names, for weft, the
// file with the same device and inode. Otherwise (a container's own copy)
// it is the path through /proc/PID/root, valid only while pid lives. An
// error that gone reports means pid exited.
func (o *OpenSSL) resolve(pid uint32, path string) (string, fileID, error) {
	dir := o.procDir(pid)
	if sameMountNS(filepath.Join(o.proc, "self"), dir) {
		if id, err := statID(path); err == nil {
			return path, id, nil
		}
	}
	inRoot := filepath.Join(dir, "root", path)
	id, err := statID(inRoot)
	if err != nil {
		return "", fileID{}, fmt.Errorf("stat %s: %w", inRoot, err)
	}
	if host, err := statID(path); err == nil && host == id {
		return path, id, nil
	}
	return inRoot, id, nil
}

// sameMountNS reports whether the processes behind two /proc directories
// are in one mount namespace, where a path names the same file for both.
func sameMountNS(a, b string) bool {
	na, err := os.Readlink(filepath.Join(a, "ns", "mnt"))
	if err != nil {
		return false
	}
	nb, err := os.Readlink(filepath.Join(b, "ns", "mnt"))
	return err == nil && na == nb
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino}, nil
}

// gone reports whether err, from looking at pid through /proc, is because
// pid exited: a short-lived client often does before discovery reaches it.
// ENOENT alone is not enough: a kernel thread has no exe, a library may
// have been deleted; the process's /proc directory must be gone too.
func (o *OpenSSL) gone(pid uint32, err error) bool {
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if !errors.Is(err, unix.ENOENT) {
		return false
	}
	_, serr := os.Stat(o.procDir(pid))
	return errors.Is(serr, unix.ENOENT)
}

// scanStatic attaches to an executable that links OpenSSL statically (it
// exports SSL_write, as node does). Each file is read once. It reports
// whether pid turned out to be gone.
func (o *OpenSSL) scanStatic(pid uint32) bool {
	exe := filepath.Join(o.procDir(pid), "exe")
	id, err := statID(exe)
	if err != nil {
		return o.gone(pid, err) // a kernel thread has no exe, and is not gone
	}
	// Attach by the executable's own path when weft sees the same file
	// there: that outlives the process.
	target, viaProc := exe, true
	if path, err := os.Readlink(exe); err == nil {
		if t, tid, err := o.resolve(pid, path); err == nil && t == path && tid == id {
			target, viaProc = path, false
		}
	}
	o.mu.Lock()
	without, attached := o.noSSL[id], o.libs[id] != nil
	o.mu.Unlock()
	if without {
		return false
	}
	if !attached && !exportsSSL(target) {
		o.mu.Lock()
		if len(o.noSSL) > 4096 {
			clear(o.noSSL)
		}
		o.noSSL[id] = true
		o.mu.Unlock()
		return false
	}
	return o.attach(pid, target, id, false, viaProc)
}

// ProcessExit forgets pid; libraries it alone used are detached.
func (o *OpenSSL) ProcessExit(pid uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range o.pids[pid] {
		lib := o.libs[id]
		if lib == nil {
			continue
		}
		delete(lib.users, pid)
		if len(lib.users) == 0 && !lib.pinned {
			for _, l := range lib.links {
				l.Close()
			}
			delete(o.libs, id)
			o.attached.Add(-1)
		}
	}
	delete(o.pids, pid)
}

// Attached is the number of library files with probes; Failed counts
// attach attempts that failed.
func (o *OpenSSL) Attached() int64 { return o.attached.Load() }
func (o *OpenSSL) Failed() uint64  { return o.failed.Load() }

// Vanished counts processes that exited before discovery could read them
// or open their OpenSSL files through /proc/PID.
func (o *OpenSSL) Vanished() uint64 { return o.vanished.Load() }
func (o *OpenSSL) close() {
	close(o.quit)
	<-o.done
	o.closeAll()
}
func isSystemPath(path string) bool { return hasAnyPrefix(path, systemSSLDirs) }

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (o *OpenSSL) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, lib := range o.libs {
		for _, l := range lib.links {
			l.Close()
		}
		delete(o.libs, id)
	}
	o.attached.Store(0)
}

// attach records pid as a user of the file id, attaching to it through
// path first if no process had it. viaProc says path goes through
// /proc/PID, so a file that is gone there means pid exited: that is
// reported (gone), not warned about.
func (o *OpenSSL) attach(pid uint32, path string, id fileID, pinned, viaProc bool) (gone bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	lib := o.libs[id]
	if lib == nil {
		links, err := o.attachFile(path)
		if err != nil {
			if viaProc && o.gone(pid, err) {
				return true
			}
			o.failed.Add(1)
			o.log.Warn("openssl uprobes skipped", "path", path, "err", err)
			return false
		}
		lib = &sslLib{path: path, links: links, users: map[uint32]struct{}{}, pinned: pinned}
		o.libs[id] = lib
		o.attached.Add(1)
	}
	if pinned {
		lib.pinned = true
	}
	if _, ok := lib.users[pid]; !ok {
		lib.users[pid] = struct{}{}
		o.pids[pid] = append(o.pids[pid], id)
	}
	return false
}

// attachSSL hooks every OpenSSL function path exports.
func attachSSL(progs *weftPrograms, path string) ([]link.Link, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var links []link.Link
	fail := func(err error) ([]link.Link, error) {
		for _, l := range links {
			l.Close()
		}
		return nil, err
	}
	for _, p := range sslProbes {
		enter, err := ex.Uprobe(p.symbol, p.enter(progs), nil)
		if err != nil {
			if p.optional && errors.Is(err, link.ErrNoSymbol) {
				continue
			}
			return fail(fmt.Errorf("attach uprobe %s: %w", p.symbol, err))
		}
		links = append(links, enter)
		exit, err := ex.Uretprobe(p.symbol, p.exit(progs), nil)
		if err != nil {
			return fail(fmt.Errorf("attach uretprobe %s: %w", p.symbol, err))
		}
		links = append(links, exit)
	}
	return links, nil
}

// sslPaths returns the files pid maps that carry OpenSSL: shared libssl
// copies, and the executable itself when it exports SSL_write (OpenSSL
// linked statically, as node does).
func sslPaths(procDir string) ([]string, error) {
	f, err := os.Open(filepath.Join(procDir, "maps"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.IndexByte(line, '/')
		if i < 0 || !bytes.Contains(line[i:], []byte("libssl.so")) {
			continue
		}
		p := string(line[i:])
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	// A process that exits while its maps are read ends the read with
	// ESRCH.
	return paths, sc.Err()
}

// exportsSSL reports whether an ELF file has an SSL_write symbol.
func exportsSSL(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, get := range []func() ([]elf.Symbol, error){f.DynamicSymbols, f.Symbols} {
		syms, err := get()
		if err != nil {
			continue
		}
		for _, s := range syms {
			if s.Name == "SSL_write" && s.Value != 0 {
				return true
			}
		}
	}
	return false
}
