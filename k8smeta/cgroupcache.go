package k8smeta

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of CgroupConfig.
const (
	DefaultProcRoot  = "/proc"
	DefaultMaxPIDs   = 16384
	DefaultExitGrace = 30 * time.Second
)

// maxCgroupFile bounds how much of /proc/PID/cgroup is read: a v1 host
// has a dozen short lines, so 16 KiB is plenty.
const maxCgroupFile = 16 << 10

// evictionSample is how many entries eviction looks at to pick a victim.
const evictionSample = 16

// CgroupConfig configures a CgroupCache. A zero field takes its default.
type CgroupConfig struct {
	// ProcRoot is the host's procfs; tests point it at a fake tree.
	ProcRoot string
	// MaxPIDs bounds the cache when exit events are lost.
	MaxPIDs int
	// ExitGrace is how long a pid stays after Forget: the spans of its last
	// exchanges are still being built when its exit is seen.
	ExitGrace time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c CgroupConfig) withDefaults() CgroupConfig {
	if c.ProcRoot == "" {
		c.ProcRoot = DefaultProcRoot
	}
	if c.MaxPIDs <= 0 {
		c.MaxPIDs = DefaultMaxPIDs
	}
	if c.ExitGrace <= 0 {
		c.ExitGrace = DefaultExitGrace
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// CgroupCache maps pids to their Cgroup, reading /proc/PID/cgroup once per
// pid. Safe for concurrent use.
type CgroupCache struct {
	cfg CgroupConfig

	mu    sync.Mutex
	pids  map[uint32]*cgEntry
	exits []exitMark // in Forget order, so in exitAt order
	gen   uint64

	hits, reads, evictions atomic.Uint64
}

type cgEntry struct {
	cg      Cgroup
	gen     uint64
	exiting bool
}

type exitMark struct {
	pid uint32
	gen uint64
	at  time.Time
}

// NewCgroupCache makes an empty cache.
func NewCgroupCache(cfg CgroupConfig) *CgroupCache {
	return &CgroupCache{cfg: cfg.withDefaults(), pids: make(map[uint32]*cgEntry)}
}

// Lookup returns pid's Cgroup, reading /proc the first time. A pid /proc
// no longer knows gets a zero Cgroup, cached as exited so it is neither
// read again at once nor kept for ever.
func (c *CgroupCache) Lookup(pid uint32) Cgroup {
	c.mu.Lock()
	c.expireLocked()
	if e := c.pids[pid]; e != nil {
		c.mu.Unlock()
		c.hits.Add(1)
		return e.cg
	}
	c.mu.Unlock()

	cg, found := c.read(pid)
	c.reads.Add(1)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.pids[pid]; e != nil {
		return e.cg // a concurrent Lookup stored first
	}
	c.gen++
	e := &cgEntry{cg: cg, gen: c.gen}
	c.pids[pid] = e
	if !found {
		c.markExitingLocked(pid, e)
	}
	for len(c.pids) > c.cfg.MaxPIDs {
		c.evictLocked(pid)
	}
	return cg
}

// Forget says pid exited; its entry goes ExitGrace later. A pid looked up
// again within the grace (the kernel reused it) keeps the old answer.
func (c *CgroupCache) Forget(pid uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	if e := c.pids[pid]; e != nil && !e.exiting {
		c.markExitingLocked(pid, e)
	}
}

// Reset drops pid's entry at once, so the next Lookup reads
// /proc/PID/cgroup again: the process may have moved (a runtime's init
// joins the container's cgroup, then execs the entrypoint).
func (c *CgroupCache) Reset(pid uint32) {
	c.mu.Lock()
	delete(c.pids, pid)
	c.mu.Unlock()
}

// Len is the number of pids cached, exiting ones included.
func (c *CgroupCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pids)
}

func (c *CgroupCache) markExitingLocked(pid uint32, e *cgEntry) {
	e.exiting = true
	c.exits = append(c.exits, exitMark{pid: pid, gen: e.gen, at: c.cfg.Now()})
}

// expireLocked drops entries whose grace is over. Marks are in time
// order, so it stops at the first that is not due.
func (c *CgroupCache) expireLocked() {
	if len(c.exits) == 0 {
		return
	}
	now := c.cfg.Now()
	n := 0
	for _, m := range c.exits {
		if now.Sub(m.at) < c.cfg.ExitGrace {
			break
		}
		if e := c.pids[m.pid]; e != nil && e.gen == m.gen {
			delete(c.pids, m.pid)
		}
		n++
	}
	if n > 0 {
		c.exits = append(c.exits[:0], c.exits[n:]...)
	}
}

// evictLocked drops one entry other than keep: among a sample, an exiting
// one if any.
func (c *CgroupCache) evictLocked(keep uint32) {
	var victim uint32
	found := false
	n := 0
	for pid, e := range c.pids {
		if pid == keep {
			continue
		}
		if !found || e.exiting {
			victim, found = pid, true
			if e.exiting {
				break
			}
		}
		if n++; n == evictionSample {
			break
		}
	}
	if found {
		delete(c.pids, victim)
		c.evictions.Add(1)
	}
}

// read parses /proc/PID/cgroup; found is false when it cannot be read.
func (c *CgroupCache) read(pid uint32) (Cgroup, bool) {
	f, err := os.Open(c.cfg.ProcRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/cgroup")
	if err != nil {
		return Cgroup{}, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCgroupFile))
	if err != nil || len(b) == 0 {
		return Cgroup{}, false // an exited process's file reads empty
	}
	cg := ParseCgroup(string(b))
	// Keep only the ids, not the whole file they were cut from.
	cg.ContainerID, cg.PodUID = strings.Clone(cg.ContainerID), strings.Clone(cg.PodUID)
	return cg, true
}
