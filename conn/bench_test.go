package conn

import (
	"fmt"
	"testing"
)

// countHandler does the least a real handler does: look at the segment.
type countHandler struct{ n uint64 }

func (h *countHandler) Segment(s *Segment) { h.n += s.Len() }
func (h *countHandler) Close(int64)        {}

func benchTable(conns int) (*Table, []ID) {
	tab := NewTable(TableConfig{}, func(*Info) Handler { return &countHandler{} })
	ids := make([]ID, conns)
	for i := range ids {
		ids[i] = ID{PID: uint32(1000 + i%7), FD: int32(i), Gen: 1}
		tab.Open(Info{ID: ids[i], Role: RoleClient})
	}
	return tab, ids
}

func reportEvents(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkInOrderData is the hot path: in-order chunks to existing
// connections, one connection at a time (runs of events) and round-robin
// over many (every event a table lookup). It must not allocate.
func BenchmarkInOrderData(b *testing.B) {
	payload := make([]byte, 512)
	for _, conns := range []int{1, 1024} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			tab, ids := benchTable(conns)
			offs := make([]uint64, conns)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			ts, events := int64(1), 0
			for b.Loop() {
				i := events % conns
				tab.Data(ids[i], Egress, offs[i], uint32(len(payload)), payload, ts, ts+1, uint32(offs[i]), 1)
				offs[i] += uint64(len(payload))
				ts += 2
				events++
			}
			reportEvents(b, events)
		})
	}
}

// BenchmarkReordered swaps every pair of chunks, so each pair is one hold
// (a copy) and one drain; after warm-up the buffers come from free lists.
func BenchmarkReordered(b *testing.B) {
	payload := make([]byte, 512)
	for _, conns := range []int{1, 1024} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			tab, ids := benchTable(conns)
			offs := make([]uint64, conns)
			b.ReportAllocs()
			b.SetBytes(2 * int64(len(payload)))
			ts, pairs := int64(1), 0
			n := uint64(len(payload))
			for b.Loop() {
				i := pairs % conns
				o := offs[i]
				tab.Data(ids[i], Egress, o+n, uint32(n), payload, ts, ts+1, uint32(o+n), 1)
				tab.Data(ids[i], Egress, o, uint32(n), payload, ts, ts+1, uint32(o), 1)
				offs[i] += 2 * n
				ts += 2
				pairs++
			}
			reportEvents(b, 2*pairs)
			if s := tab.Stats(); s.BytesSkippedLost.Load() != 0 || s.ChunksHeld.Load() != uint64(pairs) {
				b.Fatalf("lost %d bytes, held %d of %d", s.BytesSkippedLost.Load(), s.ChunksHeld.Load(), pairs)
			}
		})
	}
}

// TestInOrderDataDoesNotAllocate holds the hot path to zero allocations
// outside benchmarks too, so a regression fails `go test`.
func TestInOrderDataDoesNotAllocate(t *testing.T) {
	tab, ids := benchTable(4)
	payload := make([]byte, 100)
	var off uint64
	allocs := testing.AllocsPerRun(1000, func() {
		for _, id := range ids {
			tab.Data(id, Ingress, off, uint32(len(payload)), payload, 1, 2, 0, 1)
		}
		off += uint64(len(payload))
	})
	if allocs != 0 {
		t.Errorf("in-order data: %v allocations per run, want 0", allocs)
	}
}
