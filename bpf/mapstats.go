package bpf

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// MapCountInterval is how often the hash maps' entries are counted at
// most: a count walks every key (one BPF_MAP_GET_NEXT_KEY per entry),
// so scrapes in between get the last count.
const MapCountInterval = 10 * time.Second

// namedMap is one kernel hash map the metrics count.
type namedMap struct {
	name string
	m    *ebpf.Map
}

// hashMaps are the tracer's hash maps by their C names: the LRU ones
// evict silently when full, so their fill level is what says so.
func (t *Tracer) hashMaps() []namedMap {
	o := &t.objs.weftMaps
	return []namedMap{
		{"conns", o.Conns},
		{"procs_seen", o.ProcsSeen},
		{"go_procs", o.GoProcs},
		{"py_procs", o.PyProcs},
		{"go_cause", o.GoCause},
		{"fd_cause", o.FdCause},
		{"ssl_fds", o.SslFds},
	}
}

// MapFill is one map's entries and capacity.
type MapFill struct {
	Name       string
	Entries    int64
	MaxEntries int64
}

// mapCounter counts the entries of a set of maps, at most once per
// interval; callers in between get the last counts.
type mapCounter struct {
	maps     []namedMap
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	at     time.Time
	counts []MapFill
	err    error
}

func newMapCounter(maps []namedMap, interval time.Duration) *mapCounter {
	return &mapCounter{maps: maps, interval: interval, now: time.Now}
}

// Fill returns each map's entries, counted at most interval ago.
func (c *mapCounter) Fill() ([]MapFill, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.counts == nil || now.Sub(c.at) >= c.interval {
		c.at = now
		c.counts = make([]MapFill, 0, len(c.maps))
		var errs []error
		for _, nm := range c.maps {
			n, err := countEntries(nm.m)
			if err != nil {
				errs = append(errs, fmt.Errorf("count entries of map %s: %w", nm.name, err))
			}
			c.counts = append(c.counts, MapFill{Name: nm.name, Entries: int64(n), MaxEntries: int64(nm.m.MaxEntries())})
		}
		c.err = errors.Join(errs...)
	}
	return c.counts, c.err
}

// countEntries walks m's keys with BPF_MAP_GET_NEXT_KEY and returns how
// many there are. The kernel updates the map meanwhile: a deleted key
// makes a hash map's walk start over, so the walk stops after
// MaxEntries keys (the count is then a bound, never more than the map
// holds); otherwise it is exact for some moment of the walk, give or take
// the keys changed during it.
func countEntries(m *ebpf.Map) (int, error) {
	limit := int(m.MaxEntries())
	key := make([]byte, m.KeySize())
	next := make([]byte, m.KeySize())
	n := 0
	var cur any // nil: the first key
	for n < limit {
		err := m.NextKey(cur, next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		key, next = next, key
		cur = key
	}
	return n, nil
}
