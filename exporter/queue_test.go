package exporter

import (
	"slices"
	"testing"

	"github.com/weftrace/weft/correlate"
)

func TestRingDropsOldestAndWraps(t *testing.T) {
	r := newRing(3)
	names := func(spans []correlate.Span) []string {
		var out []string
		for _, s := range spans {
			out = append(out, s.Name)
		}
		return out
	}
	var dropped int
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if r.push(correlate.Span{Name: n}) {
			dropped++
		}
	}
	if dropped != 2 || r.len() != 3 {
		t.Fatalf("dropped %d, len %d; want 2 dropped, 3 kept", dropped, r.len())
	}
	if got := names(r.pop(nil, 2)); !slices.Equal(got, []string{"c", "d"}) {
		t.Errorf("pop 2 = %v, want the oldest kept [c d]", got)
	}
	r.push(correlate.Span{Name: "f"})
	r.push(correlate.Span{Name: "g"})
	if got := names(r.pop(nil, 10)); !slices.Equal(got, []string{"e", "f", "g"}) {
		t.Errorf("pop all = %v, want [e f g] across the wrap", got)
	}
	for i, s := range r.buf {
		if s.Name != "" {
			t.Errorf("slot %d still holds %q after pop", i, s.Name)
		}
	}
	r.push(correlate.Span{Name: "h"})
	if n := r.discard(); n != 1 || r.len() != 0 {
		t.Errorf("discard = %d, len %d after; want 1 and 0", n, r.len())
	}
	for i, s := range r.buf {
		if s.Name != "" {
			t.Errorf("slot %d still holds %q after discard", i, s.Name)
		}
	}
}
