package bpf

import (
	"testing"
	"time"
)

// TestClockWall: a monotonic reading converts to the wall time taken
// around it, within the time the readings took.
func TestClockWall(t *testing.T) {
	c := NewClock()
	before := time.Now()
	mono := Monotonic()
	after := time.Now()
	got := c.Wall(mono)
	slack := 5 * time.Millisecond // clock granularity and a preemption or two
	if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
		t.Fatalf("Wall(%d) = %v, want within [%v, %v]", mono, got, before, after)
	}
}
