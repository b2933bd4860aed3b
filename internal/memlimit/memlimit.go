package memlimit

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// DefaultLimit is the memory cap when none is given: room for the default
// bounds (65536 connections, 32 MiB held out of order, 16384 queued and
// 65536 joining spans) at the rates a node sees, with the ring buffer and
// the executable's pages beside. The join buffer alone holds about 120 MiB
// when a saturated server fills it (65536 spans): a cap of 256 MiB shed 80%
// of a saturated nginx's events (make bench, 2026-12-04), so the default
// leaves the bounds room to work before shedding starts.
const DefaultLimit = 512 << 20

// The Go soft limit is the cap less what the runtime does not count —
// the resident pages of files and shared mappings (the executable's text,
// about 75 MiB of weft's, and the ring buffer) — and a sixteenth of the
// cap as headroom, at least a quarter of the cap. Shedding starts when the
// live heap passes 5/8 of the soft limit, where the collector starts
// running often, and stops under half of it, so it does not flap.
const (
	headroomDen          = 16
	minSoftDen           = 4
	shedNum, shedDen     = 5, 8
	resumeNum, resumeDen = 1, 2
)

// CheckEvery is how often Run samples the live heap.
const CheckEvery = 100 * time.Millisecond

// Guard decides whether the pipeline takes new data events. Admit is
// called on the hot path from one goroutine; Check from one other.
type Guard struct {
	limit    int64
	live     func() uint64     // bytes of live heap, as of the last collection
	shared   func() uint64     // resident bytes the Go runtime does not count
	setLimit func(int64) int64 // debug.SetMemoryLimit

	soft        int64 // the Go soft limit set last
	shedAbove   uint64
	resumeBelow uint64

	shedding atomic.Bool
	shed     atomic.Uint64 // data events dropped while shedding
	episodes atomic.Uint64 // times shedding started
	peakLive atomic.Uint64
	softNow  atomic.Int64
}

// New makes a guard for a cap of limit bytes (0: DefaultLimit; negative:
// no cap, Admit always true) and sets the Go runtime's soft memory limit
// from it, again on every Check as the pages outside the runtime change.
// Call it once, at start-up.
func New(limit int64) *Guard {
	g := newGuard(limit, liveHeap, sharedResident, debug.SetMemoryLimit)
	g.Check()
	return g
}

func newGuard(limit int64, live, shared func() uint64, setLimit func(int64) int64) *Guard {
	if limit == 0 {
		limit = DefaultLimit
	}
	return &Guard{limit: limit, live: live, shared: shared, setLimit: setLimit}
}

// soften sets the soft limit and the marks for shared resident bytes
// outside the runtime, when they moved by more than a headroom's
// sixteenth (the runtime's limit is cheap to set, not free).
func (g *Guard) soften(shared uint64) {
	soft := g.limit - int64(min(shared, uint64(g.limit))) - g.limit/headroomDen
	soft = max(soft, g.limit/minSoftDen)
	if d := soft - g.soft; g.soft != 0 && d < g.limit/headroomDen/16 && d > -g.limit/headroomDen/16 {
		return
	}
	g.soft = soft
	g.softNow.Store(soft)
	g.shedAbove = uint64(soft) / shedDen * shedNum
	g.resumeBelow = uint64(soft) / resumeDen * resumeNum
	g.setLimit(soft)
}

// Validate rejects a cap too small to run in.
func Validate(limit int64) error {
	if limit > 0 && limit < 32<<20 {
		return fmt.Errorf("memory limit %d MiB is under the 32 MiB weft needs to run", limit>>20)
	}
	return nil
}

// Limit is the cap in bytes (negative: none).
func (g *Guard) Limit() int64 { return g.limit }

// Admit reports whether a new data event may be taken; when not, it is
// counted as shed. A nil Guard admits everything.
func (g *Guard) Admit() bool {
	if g == nil || !g.shedding.Load() {
		return true
	}
	g.shed.Add(1)
	return false
}

// Check samples the live heap and starts or stops shedding.
func (g *Guard) Check() {
	if g.limit < 0 {
		return
	}
	g.soften(g.shared())
	live := g.live()
	if live > g.peakLive.Load() {
		g.peakLive.Store(live)
	}
	switch {
	case !g.shedding.Load() && live > g.shedAbove:
		g.shedding.Store(true)
		g.episodes.Add(1)
	case g.shedding.Load() && live < g.resumeBelow:
		g.shedding.Store(false)
	}
}

// Shedding reports whether new data events are being dropped.
func (g *Guard) Shedding() bool { return g.shedding.Load() }

// Run calls Check every CheckEvery until stop is closed.
func (g *Guard) Run(stop <-chan struct{}) {
	if g.limit < 0 {
		return
	}
	t := time.NewTicker(CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			g.Check()
		}
	}
}

// RegisterMetrics publishes, on m:
//
//	weft_memory_shed_events      data events dropped to stay under the cap
//	weft_memory_shed_episodes    times shedding started
//	weft_memory_limit_bytes      the cap (0: none)
//	weft_memory_go_limit_bytes   the Go runtime's soft limit derived from it
//	weft_memory_live_heap_peak_bytes
func (g *Guard) RegisterMetrics(m metric.Meter) error {
	err := selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_memory_shed_events", Description: "Kernel data events dropped because weft's live heap was near its memory limit (--memory-limit).", Unit: "{event}", Value: &g.shed},
		selfmetrics.Counter{Name: "weft_memory_shed_episodes", Description: "Times weft started shedding data events to stay under its memory limit.", Unit: "{episode}", Value: &g.episodes},
	)
	if err != nil {
		return err
	}
	return selfmetrics.RegisterGauges(m,
		selfmetrics.Gauge{Name: "weft_memory_limit_bytes", Description: "The memory cap weft keeps under (--memory-limit); 0 when there is none.", Unit: "By", Value: func() int64 { return max(g.limit, 0) }},
		selfmetrics.Gauge{Name: "weft_memory_go_limit_bytes", Description: "The Go runtime's soft memory limit: the cap less the resident pages of files and shared mappings, less headroom.", Unit: "By", Value: g.softNow.Load},
		selfmetrics.Gauge{Name: "weft_memory_live_heap_peak_bytes", Description: "The largest live heap seen after a garbage collection.", Unit: "By", Value: func() int64 { return int64(min(g.peakLive.Load(), math.MaxInt64)) }},
	)
}

// sharedResident is the resident size of file-backed and shared pages
// (statm's third field), which the Go runtime does not count.
func sharedResident() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0
	}
	pages, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// liveHeap reads the runtime's live heap as of its last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
