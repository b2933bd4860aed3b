package bpf

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic returns CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns reads.
func Monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Clock converts kernel monotonic timestamps to wall time. The wall clock
// can be stepped (NTP, a VM resumed from pause) while the monotonic one is
// not, so the offset is measured again by Sync, which the agent calls
// every second.
type Clock struct{ offset atomic.Int64 }

// NewClock measures the wall-minus-monotonic offset now.
func NewClock() *Clock {
	c := &Clock{}
	c.Sync()
	return c
}

// Sync measures the offset again. A reading taken while the goroutine
// was preempted between the two clocks would be off by the preemption, so
// it keeps the tightest of a few readings.
func (c *Clock) Sync() {
	best, window := int64(0), int64(-1)
	for range 5 {
		before := Monotonic()
		wall := time.Now().UnixNano()
		after := Monotonic()
		if w := after - before; window < 0 || w < window {
			best, window = wall-(before+after)/2, w
		}
	}
	c.offset.Store(best)
}

// Wall converts a monotonic ns timestamp to wall time.
func (c *Clock) Wall(mono int64) time.Time { return time.Unix(0, mono+c.offset.Load()) }
