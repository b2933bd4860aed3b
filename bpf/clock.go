package bpf

import (
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic returns CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns reads.
func Monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Clock converts kernel monotonic timestamps to wall time. The offset is
// taken once, so spans from one run never move relative to each other.
type Clock struct{ offset int64 }

// NewClock measures the wall-minus-monotonic offset now.
func NewClock() *Clock {
	before := Monotonic()
	wall := time.Now().UnixNano()
	after := Monotonic()
	return &Clock{offset: wall - (before+after)/2}
}

// Wall converts a monotonic ns timestamp to wall time.
func (c *Clock) Wall(mono int64) time.Time { return time.Unix(0, mono+c.offset) }
