package memlimit

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestShedding: shedding starts when the live heap passes 5/8 of the soft
// limit (3/4 of the cap), stops only under half of it, and every event
// refused meanwhile is counted.
func TestShedding(t *testing.T) {
	var live uint64
	var set int64
	// 256 MiB less 48 MiB of file pages, less 16 MiB of headroom.
	g := newGuard(256<<20, func() uint64 { return live }, func() uint64 { return 48 << 20 }, func(n int64) int64 { set = n; return 0 })
	g.Check()
	if g.soft != 192<<20 || set != 192<<20 || g.shedAbove != 120<<20 || g.resumeBelow != 96<<20 {
		t.Fatalf("soft %d (set %d) shed above %d resume below %d", g.soft>>20, set>>20, g.shedAbove>>20, g.resumeBelow>>20)
	}
	steps := []struct {
		live  uint64
		admit bool
	}{
		{50 << 20, true},
		{120 << 20, true}, // at the mark, not past it
		{121 << 20, false},
		{100 << 20, false}, // under the mark, not yet under the lower one
		{95 << 20, true},
		{200 << 20, false},
		{10 << 20, true},
	}
	refused := 0
	for i, s := range steps {
		live = s.live
		g.Check()
		for range 3 {
			if got := g.Admit(); got != s.admit {
				t.Fatalf("step %d (live %d MiB): Admit %v, want %v", i, s.live>>20, got, s.admit)
			}
			if !s.admit {
				refused++
			}
		}
	}
	if g.shed.Load() != uint64(refused) || g.episodes.Load() != 2 || g.peakLive.Load() != 200<<20 {
		t.Errorf("shed %d (want %d), episodes %d (want 2), peak %d MiB", g.shed.Load(), refused, g.episodes.Load(), g.peakLive.Load()>>20)
	}
}

// TestSoftLimitFollowsSharedPages: the Go limit moves with the pages
// outside the runtime, not for every page, and never under a quarter of
// the cap.
func TestSoftLimitFollowsSharedPages(t *testing.T) {
	shared := uint64(48 << 20)
	var sets []int64
	g := newGuard(256<<20, func() uint64 { return 0 }, func() uint64 { return shared }, func(n int64) int64 { sets = append(sets, n); return 0 })
	for _, sh := range []uint64{48 << 20, 48<<20 + 4096, 80 << 20, 1 << 30} {
		shared = sh
		g.Check()
	}
	want := []int64{192 << 20, 160 << 20, 64 << 20}
	if len(sets) != len(want) {
		t.Fatalf("soft limits set %v, want %v", sets, want)
	}
	for i := range want {
		if sets[i] != want[i] {
			t.Errorf("soft limit %d: %d MiB, want %d", i, sets[i]>>20, want[i]>>20)
		}
	}
}

// TestNoLimit: a negative limit never sheds and leaves the runtime alone;
// zero means the default.
func TestNoLimit(t *testing.T) {
	g := newGuard(-1, func() uint64 { return 1 << 40 }, func() uint64 { return 0 }, func(int64) int64 { t.Error("soft limit set without a cap"); return 0 })
	g.Check()
	if !g.Admit() || g.Shedding() {
		t.Error("no limit, yet shedding")
	}
	if d := newGuard(0, nil, nil, nil); d.limit != DefaultLimit {
		t.Errorf("limit 0 gave %d, want the default", d.limit)
	}
	if err := Validate(16 << 20); err == nil {
		t.Error("a 16 MiB limit accepted")
	}
	if Validate(-1) != nil || Validate(DefaultLimit) != nil {
		t.Error("a valid limit refused")
	}
}

// TestNewSetsRuntimeLimit: the Go soft limit is set, under the cap less
// this process's file pages, and the runtime's live heap is read.
func TestNewSetsRuntimeLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	shared := sharedResident()
	if shared == 0 {
		t.Fatal("no file pages resident in /proc/self/statm")
	}
	g := New(400 << 20)
	if got, want := debug.SetMemoryLimit(-1), int64(400<<20-shared-25<<20); got < want-2<<20 || got > want+2<<20 {
		t.Errorf("runtime soft limit %d MiB, want about %d (file pages %d MiB)", got>>20, want>>20, shared>>20)
	}
	runtime.GC() // the live heap is known after a collection
	g.Check()
	if g.peakLive.Load() == 0 || g.Shedding() {
		t.Errorf("live heap %d, shedding %v", g.peakLive.Load(), g.Shedding())
	}
}

func TestRegisterMetrics(t *testing.T) {
	g := newGuard(64<<20, func() uint64 { return 40 << 20 }, func() uint64 { return 0 }, func(int64) int64 { return 0 })
	g.Check()
	g.Admit()
	g.Admit()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	if err := g.RegisterMetrics(provider.Meter("t")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				got[m.Name] = d.DataPoints[0].Value
			case metricdata.Gauge[int64]:
				got[m.Name] = d.DataPoints[0].Value
			}
		}
	}
	want := map[string]int64{"weft_memory_shed_events": 2, "weft_memory_shed_episodes": 1, "weft_memory_limit_bytes": 64 << 20, "weft_memory_go_limit_bytes": 60 << 20, "weft_memory_live_heap_peak_bytes": 40 << 20}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}
