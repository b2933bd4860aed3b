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
	progs *weftPrograms
	log   interface{ Warn(string, ...any) }

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
}

type sslWork struct {
	pid  uint32
	exit bool
}

func newOpenSSL(progs *weftPrograms, log interface{ Warn(string, ...any) }) *OpenSSL {
	o := &OpenSSL{progs: progs, log: log, libs: map[fileID]*sslLib{}, pids: map[uint32][]fileID{},
		noSSL: map[fileID]bool{}, work: make(chan sslWork, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go o.run()
	return o
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

// ScanAll attaches to what every running process maps. Called at start.
func (o *OpenSSL) ScanAll() {
	entries, _ := os.ReadDir("/proc")
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
func (o *OpenSSL) ScanProcess(pid uint32) {
	root := fmt.Sprintf("/proc/%d/root", pid)
	paths := sslPaths(pid)
	for _, path := range paths {
		o.attach(pid, filepath.Join(root, path), isSystemPath(path))
	}
	if len(paths) == 0 {
		o.scanStatic(pid)
	}
}

// scanStatic attaches to an executable that links OpenSSL statically (it
// exports SSL_write, as node does). Each file is read once.
func (o *OpenSSL) scanStatic(pid uint32) {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return
	}
	id := fileID{dev: st.Dev, ino: st.Ino}
	o.mu.Lock()
	without, attached := o.noSSL[id], o.libs[id] != nil
	o.mu.Unlock()
	if without {
		return
	}
	if !attached && !exportsSSL(exe) {
		o.mu.Lock()
		if len(o.noSSL) > 4096 {
			clear(o.noSSL)
		}
		o.noSSL[id] = true
		o.mu.Unlock()
		return
	}
	o.attach(pid, exe, false)
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

func (o *OpenSSL) attach(pid uint32, path string, pinned bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return
	}
	id := fileID{dev: st.Dev, ino: st.Ino}
	o.mu.Lock()
	defer o.mu.Unlock()
	lib := o.libs[id]
	if lib == nil {
		links, err := attachSSL(o.progs, path)
		if err != nil {
			o.failed.Add(1)
			o.log.Warn("openssl uprobes skipped", "path", path, "err", err)
			return
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
func sslPaths(pid uint32) []string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil
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
	return paths
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
