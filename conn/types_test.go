package conn

import "testing"

// TestSegmentFrom: overlap with bytes already seen is trimmed (data or
// skip, Seq advanced); a segment wholly behind is dropped; one ahead or
// exactly at next is kept as is.
func TestSegmentFrom(t *testing.T) {
	data := Segment{Offset: 10, Data: []byte("abcdef"), Seq: 100}
	skip := Segment{Offset: 10, Skip: 6, Seq: 100}
	cases := []struct {
		name string
		in   Segment
		next uint64
		ok   bool
		off  uint64
		seq  uint32
		rest string
		skip uint64
	}{
		{"ahead", data, 5, true, 10, 100, "abcdef", 0},
		{"at", data, 10, true, 10, 100, "abcdef", 0},
		{"overlap data", data, 12, true, 12, 102, "cdef", 0},
		{"overlap skip", skip, 13, true, 13, 103, "", 3},
		{"behind", data, 16, false, 0, 0, "", 0},
		{"far behind", skip, 40, false, 0, 0, "", 0},
	}
	for _, c := range cases {
		got, ok := c.in.From(c.next)
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Offset != c.off || got.Seq != c.seq || string(got.Data) != c.rest || got.Skip != c.skip {
			t.Errorf("%s: got offset %d seq %d data %q skip %d", c.name, got.Offset, got.Seq, got.Data, got.Skip)
		}
	}
}
