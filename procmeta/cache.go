package procmeta

import (
	"bytes"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// evictionSample is how many entries eviction looks at to pick a victim:
// an approximation of LRU that costs O(1), not a scan of the cache.
const evictionSample = 16

// Cache maps pids to their Process. Observe and Forget come from the event
// goroutine, Lookup from the correlator; all methods are safe for
// concurrent use. It is consulted once per connection or exchange, never
// per event, so one RWMutex is enough.
type Cache struct {
	cfg  Config
	host string

	mu    sync.RWMutex
	procs map[uint32]*entry
	tick  atomic.Uint64 // logical clock for least-recently-used

	hits, misses, fallbacks   atomic.Uint64
	readsFound, readsNotFound atomic.Uint64
	evictions, expired        atomic.Uint64
	refreshes                 atomic.Uint64
}

type entry struct {
	proc *Process
	used atomic.Uint64 // tick of the last Observe or Lookup
	// exiting is set by Forget (or for a process /proc no longer knows);
	// Sweep removes the entry ExitGrace after exitAt. Both are guarded by
	// Cache.mu.
	exiting bool
	exitAt  time.Time

	// What the Process was made from, kept to remake it when the
	// Enricher's answer changes: set once, when the entry is made.
	info   procInfo
	comm   string
	seenAt int64 // Config.Now's clock, ns
	// enr is the Enricher's last answer (guarded by Cache.mu); enrichAt is
	// when to ask again (Config.Now's clock, ns), 0 once it is final.
	enr      enrichment
	enrichAt atomic.Int64
}

// newEntry makes the entry of a process from what /proc (or the kernel's
// copy of its blocks) said, with the Enricher's answer.
func (c *Cache) newEntry(pid uint32, comm string, info procInfo) *entry {
	enr := c.enrich(pid)
	e := &entry{proc: newProcess(pid, comm, info, c.host, enr), info: info, comm: comm, enr: enr}
	now := c.cfg.Now().UnixNano()
	e.seenAt = now
	if !enr.final {
		e.enrichAt.Store(now + int64(c.cfg.EnrichRetry))
	}
	e.used.Store(c.tick.Add(1))
	return e
}

// Stats is a snapshot of what the cache did.
type Stats struct {
	// Lookup outcomes: cached, read from /proc now, or built from the
	// kernel comm because /proc no longer knew the pid.
	Hits, Misses, Fallbacks uint64
	// Reads of /proc (by Observe and Lookup), by whether the process was
	// there.
	ReadsFound, ReadsNotFound uint64
	// Evictions are entries dropped to stay within MaxProcesses; Expired
	// are entries Sweep removed after their exit grace.
	Evictions, Expired uint64
	// Refreshes are Enricher calls made again for a process whose first
	// answer was not final.
	Refreshes uint64
	// Processes is the number of entries now.
	Processes int
}

// NewCache makes an empty cache. Zero Config fields take their defaults;
// call Config.Validate first to reject negative ones.
func NewCache(cfg Config) *Cache {
	cfg = cfg.withDefaults()
	host := cfg.HostName
	if host == "" {
		// Without a host name the attribute is left out; nothing else
		// depends on it.
		host, _ = os.Hostname()
	}
	return &Cache{cfg: cfg, host: host, procs: make(map[uint32]*entry)}
}

// Observe records the process behind pid the first time weft sees one of
// its connections, while /proc still describes it. A pid already cached
// and not exiting costs a map lookup; a pid Forget marked as exiting is
// read again, since it is back (the kernel reused it, or the process
// exec'd and was forgotten on purpose).
func (c *Cache) Observe(pid uint32, comm string) {
	c.mu.RLock()
	e := c.procs[pid]
	if e != nil && !e.exiting {
		e.used.Store(c.tick.Add(1))
		c.mu.RUnlock()
		return
	}
	c.mu.RUnlock()
	c.load(pid, comm)
}

// Lookup returns the process behind pid; never nil. An uncached pid is
// read from /proc once; if /proc no longer knows it, the Process is made
// from the kernel comm so the span still has a service name, and cached as
// exiting so the next lookups neither read /proc again nor keep it for
// ever.
func (c *Cache) Lookup(pid uint32, comm string) *Process {
	c.mu.RLock()
	e := c.procs[pid]
	if e != nil {
		e.used.Store(c.tick.Add(1))
		p := e.proc
		c.mu.RUnlock()
		c.hits.Add(1)
		if e.enrichAt.Load() != 0 {
			p = c.refresh(pid, e, p)
		}
		return p
	}
	c.mu.RUnlock()
	p, found := c.load(pid, comm)
	if found {
		c.misses.Add(1)
	} else {
		c.fallbacks.Add(1)
	}
	return p
}

// load reads pid from /proc and caches the result. It returns the cached
// Process, which is another goroutine's when that one stored first, and
// whether /proc knew the pid.
func (c *Cache) load(pid uint32, comm string) (*Process, bool) {
	info := readProc(c.cfg.ProcRoot, pid)
	if info.found {
		c.readsFound.Add(1)
	} else {
		c.readsNotFound.Add(1)
	}
	e := c.newEntry(pid, comm, info)

	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.procs[pid]
	switch {
	case old == nil:
	case !old.exiting:
		// A concurrent load won; its answer is as good as ours.
		old.used.Store(c.tick.Add(1))
		return old.proc, info.found
	case !info.found:
		// Keep what /proc said while the process lived over a fallback.
		old.used.Store(c.tick.Add(1))
		return old.proc, false
	}
	if !info.found {
		e.exiting, e.exitAt = true, c.cfg.Now()
	}
	c.procs[pid] = e
	for len(c.procs) > c.cfg.MaxProcesses {
		c.evictLocked(pid)
	}
	return e.proc, info.found
}

// evictLocked drops one entry other than keep: among a sample, an exiting
// one if any, else the least recently used.
func (c *Cache) evictLocked(keep uint32) {
	var victim uint32
	var best *entry
	n := 0
	for pid, e := range c.procs {
		if pid == keep {
			continue
		}
		if best == nil || better(e, best) {
			victim, best = pid, e
		}
		if n++; n == evictionSample {
			break
		}
	}
	if best == nil {
		return
	}
	delete(c.procs, victim)
	c.evictions.Add(1)
}

// better reports whether a is a better eviction victim than b.
func better(a, b *entry) bool {
	if a.exiting != b.exiting {
		return a.exiting
	}
	return a.used.Load() < b.used.Load()
}

// Forget marks pid as exited. The entry stays for Config.ExitGrace, since
// spans of the process's last exchanges may still be built, and Sweep
// removes it afterwards.
func (c *Cache) Forget(pid uint32) {
	c.mu.Lock()
	if e := c.procs[pid]; e != nil && !e.exiting {
		e.exiting, e.exitAt = true, c.cfg.Now()
	}
	c.mu.Unlock()
	if c.cfg.Enricher != nil {
		c.cfg.Enricher.Forget(pid)
	}
}

// Sweep removes entries whose exit grace has passed by now (a reading of
// Config.Now's clock) and returns how many. Call it periodically.
func (c *Cache) Sweep(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for pid, e := range c.procs {
		if e.exiting && now.Sub(e.exitAt) >= c.cfg.ExitGrace {
			delete(c.procs, pid)
			n++
		}
	}
	c.expired.Add(uint64(n))
	return n
}

// Len returns the number of cached processes, exiting ones included.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.procs)
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:          c.hits.Load(),
		Misses:        c.misses.Load(),
		Fallbacks:     c.fallbacks.Load(),
		ReadsFound:    c.readsFound.Load(),
		ReadsNotFound: c.readsNotFound.Load(),
		Evictions:     c.evictions.Load(),
		Expired:       c.expired.Load(),
		Refreshes:     c.refreshes.Load(),
		Processes:     c.Len(),
	}
}

// ObserveBlocks records pid from the argument and environment blocks the
// kernel copied out of the process's own memory at its first connection.
// Unlike Observe it does not need the process to be alive when the event is
// read: a client such as curl is often gone by then. /proc is only asked
// for what the blocks lack (the executable's path). Only argv[0] and the
// OTEL_ variables are kept from the blocks. It replaces the cached entry:
// the kernel sends it again after exec.
//
// The event's kernel comm is not taken: it is the name of whichever thread
// made the process's first connection, which may be a worker that renamed
// itself (dig's isc-net-0000), not the process. When neither /proc nor the
// blocks name the process, nothing is cached and Lookup decides, with the
// leader's comm if its caller has it.
func (c *Cache) ObserveBlocks(pid uint32, argv, env []byte) {
	info := readProc(c.cfg.ProcRoot, pid)
	if info.found {
		c.readsFound.Add(1)
	} else {
		c.readsNotFound.Add(1)
	}
	if info.command == "" {
		info.command = firstEntry(argv)
	}
	svc, attrs, _ := scanOTelEnv(bytes.NewReader(wholeEntries(env)))
	if info.serviceName == "" {
		info.serviceName = svc
	}
	if info.resourceAttrs == "" {
		info.resourceAttrs = attrs
	}

	if processName(info, "") == "" && info.serviceName == "" && info.resourceAttrs == "" {
		// Nothing names it; an entry from before an exec is stale.
		c.mu.Lock()
		delete(c.procs, pid)
		c.mu.Unlock()
		return
	}
	if c.cfg.Enricher != nil {
		c.cfg.Enricher.Exec(pid)
	}
	e := c.newEntry(pid, "", info)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs[pid] = e
	for len(c.procs) > c.cfg.MaxProcesses {
		c.evictLocked(pid)
	}
}

// firstEntry returns the first NUL-terminated string of a block.
func firstEntry(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// wholeEntries drops a last entry the kernel's bounded copy cut short, so
// a truncated OTEL_ value is never mistaken for the real one.
func wholeEntries(env []byte) []byte {
	if len(env) == 0 || env[len(env)-1] == 0 {
		return env
	}
	if i := bytes.LastIndexByte(env, 0); i >= 0 {
		return env[:i+1]
	}
	return nil
}
