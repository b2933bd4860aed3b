package conn

import (
	"fmt"
	"slices"
	"testing"
)

// op is one data event on the test connection.
type op struct {
	dir  Direction
	off  uint64
	data string // captured bytes
	n    uint32 // real length; 0 means len(data)
	ts   int64
}

func TestReassembly(t *testing.T) {
	id := ID{PID: 7, FD: 3, Gen: 1}
	small := TableConfig{MaxPendingBytes: 8, MaxPendingChunks: 2, ReorderWindow: 100}
	tests := []struct {
		name   string
		cfg    TableConfig
		noOpen bool // connection first seen through data
		ops    []op
		// want is each direction's segments after the ops, before close;
		// wantClosed after Close.
		want       [2][]string
		wantClosed [2][]string
		check      func(t *testing.T, s *Stats)
	}{
		{
			name: "in order",
			ops:  []op{{off: 0, data: "GET "}, {off: 4, data: "/ HTTP"}, {dir: Ingress, off: 0, data: "200"}},
			want: [2][]string{{"0:GET ", "4:/ HTTP"}, {"0:200"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "segments", s.Segments.Load(), 3)
				expect(t, "bytes delivered", s.BytesDelivered.Load(), 13)
				expect(t, "held", s.ChunksHeld.Load(), 0)
			},
		},
		{
			name: "reordered",
			ops:  []op{{off: 4, data: "/ HTTP"}, {off: 0, data: "GET "}},
			want: [2][]string{{"0:GET ", "4:/ HTTP"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "held", s.ChunksHeld.Load(), 1)
				expect(t, "pending bytes", uint64(s.PendingBytes.Load()), 0)
			},
		},
		{
			name: "gaps filled late, several held",
			ops:  []op{{off: 6, data: "gh"}, {off: 3, data: "def"}, {off: 8, data: "ij"}, {off: 0, data: "abc"}},
			want: [2][]string{{"0:abc", "3:def", "6:gh", "8:ij"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "held", s.ChunksHeld.Load(), 3)
				expect(t, "lost", s.BytesSkippedLost.Load(), 0)
			},
		},
		{
			name:       "gap never filled becomes a skip at close",
			ops:        []op{{off: 0, data: "aa"}, {off: 5, data: "bb"}},
			want:       [2][]string{{"0:aa"}},
			wantClosed: [2][]string{{"0:aa", "2:~3", "5:bb"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "gaps at close", s.GapsClose.Load(), 1)
				expect(t, "lost", s.BytesSkippedLost.Load(), 3)
			},
		},
		{
			name: "gap given up when the reorder window passes",
			cfg:  TableConfig{ReorderWindow: 100},
			ops: []op{
				{off: 0, data: "aa", ts: 1000}, {off: 5, data: "bb", ts: 1010},
				{dir: Ingress, off: 0, data: "x", ts: 1110}, // 100 after: not yet
				{dir: Ingress, off: 1, data: "y", ts: 1111},
			},
			want: [2][]string{{"0:aa", "2:~3", "5:bb"}, {"0:x", "1:y"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "gaps by window", s.GapsWindow.Load(), 1)
			},
		},
		{
			name: "a late filler after the skip is dropped",
			cfg:  TableConfig{ReorderWindow: 100},
			ops:  []op{{off: 0, data: "aa", ts: 1000}, {off: 5, data: "bb", ts: 1001}, {dir: Ingress, off: 0, data: "x", ts: 2000}, {off: 2, data: "ccc", ts: 2001}},
			want: [2][]string{{"0:aa", "2:~3", "5:bb"}, {"0:x"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicates", s.DuplicateChunks.Load(), 1)
				expect(t, "duplicate bytes", s.DuplicateBytes.Load(), 3)
			},
		},
		{
			name: "truncated capture",
			ops:  []op{{off: 0, data: "abcd", n: 10}, {off: 10, data: "k"}},
			want: [2][]string{{"0:abcd", "4:~6", "10:k"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "truncated", s.BytesSkippedTruncated.Load(), 6)
				expect(t, "lost", s.BytesSkippedLost.Load(), 0)
			},
		},
		{
			name: "nothing captured",
			ops:  []op{{off: 0, n: 100}},
			want: [2][]string{{"0:~100"}},
		},
		{
			name: "truncated chunk held then delivered",
			ops:  []op{{off: 3, data: "de", n: 5}, {off: 0, data: "abc"}},
			want: [2][]string{{"0:abc", "3:de", "5:~3"}},
		},
		{
			name: "empty chunk ignored",
			ops:  []op{{off: 0, data: ""}, {off: 0, data: "a"}},
			want: [2][]string{{"0:a"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "segments", s.Segments.Load(), 1)
				expect(t, "stale", s.StaleEvents.Load(), 0)
			},
		},
		{
			name: "exact duplicate dropped",
			ops:  []op{{off: 0, data: "abc"}, {off: 0, data: "abc"}, {off: 3, data: "d"}},
			want: [2][]string{{"0:abc", "3:d"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicates", s.DuplicateChunks.Load(), 1)
				expect(t, "duplicate bytes", s.DuplicateBytes.Load(), 3)
			},
		},
		{
			name: "partial overlap delivers only the new part",
			ops:  []op{{off: 0, data: "abcd"}, {off: 2, data: "cdef"}},
			want: [2][]string{{"0:abcd", "4:ef"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicate bytes", s.DuplicateBytes.Load(), 2)
				expect(t, "duplicate chunks", s.DuplicateChunks.Load(), 0)
			},
		},
		{
			name: "overlap past the captured part",
			ops:  []op{{off: 0, data: "abcd"}, {off: 2, data: "c", n: 6}},
			want: [2][]string{{"0:abcd", "4:~4"}},
		},
		{
			name: "held twin dropped",
			ops:  []op{{off: 5, data: "bb"}, {off: 5, data: "bb"}, {off: 0, data: "aaaaa"}},
			want: [2][]string{{"0:aaaaa", "5:bb"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicates", s.DuplicateChunks.Load(), 1)
				expect(t, "held", s.ChunksHeld.Load(), 1)
			},
		},
		{
			name: "longer held twin kept",
			ops:  []op{{off: 5, data: "b"}, {off: 5, data: "bcd"}, {off: 0, data: "aaaaa"}},
			want: [2][]string{{"0:aaaaa", "5:b", "6:cd"}},
		},
		{
			name: "overlapping held chunks trimmed on drain",
			ops:  []op{{off: 4, data: "efgh"}, {off: 2, data: "cdef"}, {off: 0, data: "ab"}},
			want: [2][]string{{"0:ab", "2:cdef", "6:gh"}},
		},
		{
			name: "held chunk swallowed by a longer one",
			ops:  []op{{off: 3, data: "d"}, {off: 0, data: "abcde"}},
			want: [2][]string{{"0:abcde"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicates", s.DuplicateChunks.Load(), 1)
			},
		},
		{
			name: "stream byte limit gives up the first gap",
			cfg:  small,
			ops:  []op{{off: 0, data: "aa"}, {off: 4, data: "bbb"}, {off: 8, data: "cccccc"}},
			want: [2][]string{{"0:aa", "2:~2", "4:bbb"}},
			// 8 is ahead of 7 and now held alone.
			wantClosed: [2][]string{{"0:aa", "2:~2", "4:bbb", "7:~1", "8:cccccc"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "stream overflows", s.PendingOverflowsStream.Load(), 1)
				expect(t, "gaps at close", s.GapsClose.Load(), 1)
			},
		},
		{
			name: "stream chunk limit gives up the first gap",
			cfg:  small,
			ops:  []op{{off: 2, data: "c"}, {off: 4, data: "e"}, {off: 6, data: "g"}},
			// Only the first gap goes: 4 and 6 then fit.
			want:       [2][]string{{"0:~2", "2:c"}},
			wantClosed: [2][]string{{"0:~2", "2:c", "3:~1", "4:e", "5:~1", "6:g"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "stream overflows", s.PendingOverflowsStream.Load(), 1)
				expect(t, "gaps at close", s.GapsClose.Load(), 2)
				expect(t, "lost", s.BytesSkippedLost.Load(), 4)
			},
		},
		{
			name: "chunk larger than the limit is delivered at once",
			cfg:  small,
			ops:  []op{{off: 0, data: "a"}, {off: 5, data: "0123456789"}},
			want: [2][]string{{"0:a", "1:~4", "5:0123456789"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "stream overflows", s.PendingOverflowsStream.Load(), 1)
				expect(t, "held", s.ChunksHeld.Load(), 0)
			},
		},
		{
			name: "overflow skips reach the new chunk",
			cfg:  small,
			ops:  []op{{off: 4, data: "efgh"}, {off: 2, data: "cdefgh"}},
			// Holding both is 10 > 8: the gap before 4 goes, 4..8 is
			// delivered, and the new chunk's tail is new data.
			want: [2][]string{{"0:~4", "4:efgh"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "duplicate bytes", s.DuplicateBytes.Load(), 6)
			},
		},
		{
			name:   "connection first seen through data starts at its first chunk",
			noOpen: true,
			ops:    []op{{off: 1000, data: "xy"}, {off: 1002, data: "z"}, {dir: Ingress, off: 50, data: "q"}},
			want:   [2][]string{{"1000:xy", "1002:z"}, {"50:q"}},
			check: func(t *testing.T, s *Stats) {
				expect(t, "opened from data", s.OpenedFromData.Load(), 1)
				expect(t, "opened", s.Opened.Load(), 0)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, rs := newTestTable(tc.cfg)
			if !tc.noOpen {
				tab.Open(Info{ID: id, Role: RoleClient})
			}
			for _, o := range tc.ops {
				n := o.n
				if n == 0 {
					n = uint32(len(o.data))
				}
				tab.Data(id, o.dir, o.off, n, []byte(o.data), o.ts, o.ts, 0, 1)
			}
			r := rs.only(t)
			for d := range 2 {
				if got := r.got(Direction(d)); !slices.Equal(got, tc.want[d]) {
					t.Errorf("%v before close: got %q, want %q", Direction(d), got, tc.want[d])
				}
			}
			tab.Close(id, 5000)
			wantClosed := tc.wantClosed
			if wantClosed[0] == nil && wantClosed[1] == nil {
				wantClosed = tc.want
			}
			for d := range 2 {
				if got := r.got(Direction(d)); !slices.Equal(got, wantClosed[d]) {
					t.Errorf("%v after close: got %q, want %q", Direction(d), got, wantClosed[d])
				}
			}
			if r.closes != 1 || r.closeTS != 5000 {
				t.Errorf("closes: got %d at %d, want 1 at 5000", r.closes, r.closeTS)
			}
			if tc.check != nil {
				tc.check(t, tab.Stats())
			}
			checkBounds(t, tab)
			if tab.pendingBytes != 0 {
				t.Errorf("pending bytes after close: %d", tab.pendingBytes)
			}
		})
	}
}

// TestSegmentFields checks what each kind of segment carries besides bytes:
// sequence numbers follow the stream, gaps are dated between their
// neighbours, and truncation skips share their chunk's timestamps.
func TestSegmentFields(t *testing.T) {
	id := ID{PID: 1, FD: 4, Gen: 9}
	tab, rs := newTestTable(TableConfig{})
	tab.Open(Info{ID: id, Role: RoleServer})
	tab.Data(id, Ingress, 0, 10, []byte("abcd"), 100, 110, 5000, 21) // 4 captured, 6 truncated
	tab.Data(id, Ingress, 14, 2, []byte("op"), 300, 310, 5014, 23)   // after a 4-byte gap
	tab.Data(id, Ingress, 12, 4, []byte("mnop"), 200, 210, 5012, 22) // overlaps the held one
	tab.Data(id, Ingress, 16, 1, []byte("q"), 400, 410, 5016, 24)
	tab.CloseWithEnds(id, 900, [2]uint64{0, 20})
	want := []Segment{
		{Dir: Ingress, Offset: 0, Data: []byte("abcd"), Start: 100, End: 110, Seq: 5000, TID: 21},
		{Dir: Ingress, Offset: 4, Skip: 6, Start: 100, End: 110, Seq: 5004, TID: 21},
		{Dir: Ingress, Offset: 10, Skip: 2, Start: 110, End: 200, Seq: 5010, TID: 22},
		{Dir: Ingress, Offset: 12, Data: []byte("mnop"), Start: 200, End: 210, Seq: 5012, TID: 22},
		{Dir: Ingress, Offset: 16, Data: []byte("q"), Start: 400, End: 410, Seq: 5016, TID: 24},
		{Dir: Ingress, Offset: 17, Skip: 3, Start: 410, End: 900, Seq: 5017},
	}
	r := rs.only(t)
	if len(r.segs) != len(want) {
		t.Fatalf("segments: got %d %+v, want %d", len(r.segs), r.segs, len(want))
	}
	for i := range want {
		g, w := r.segs[i], want[i]
		if g.Dir != w.Dir || g.Offset != w.Offset || string(g.Data) != string(w.Data) || (g.Data == nil) != (w.Data == nil) ||
			g.Skip != w.Skip || g.Start != w.Start || g.End != w.End || g.Seq != w.Seq || g.TID != w.TID {
			t.Errorf("segment %d: got %+v, want %+v", i, g, w)
		}
	}
	s := tab.Stats()
	expect(t, "duplicate bytes", s.DuplicateBytes.Load(), 2)
	expect(t, "lost", s.BytesSkippedLost.Load(), 5)
	expect(t, "truncated", s.BytesSkippedTruncated.Load(), 6)
}

// TestSeqWraps checks sequence numbers wrap like TCP's.
func TestSeqWraps(t *testing.T) {
	id := ID{PID: 1, FD: 4, Gen: 1}
	tab, rs := newTestTable(TableConfig{})
	tab.Open(Info{ID: id, Role: RoleClient})
	tab.Data(id, Egress, 0, 4, []byte("ab"), 1, 2, 0xffffffff, 1)
	r := rs.only(t)
	if got := r.segs[1].Seq; got != 1 {
		t.Errorf("skip seq after wrap: got %d, want 1", got)
	}
}

func expect(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %d, want %d", what, got, want)
	}
}

// checkBounds asserts the table's memory invariants.
func checkBounds(t testing.TB, tab *Table) {
	t.Helper()
	if err := boundsErr(tab); err != nil {
		t.Fatal(err)
	}
}

// boundsErr says which memory invariant of the table is broken, if any.
// It is not a test helper because the fuzzer calls it after every event.
func boundsErr(tab *Table) error {
	total := 0
	for _, e := range tab.conns {
		for d := range e.streams {
			s := &e.streams[d]
			total += s.heldBytes
			sum := 0
			for i, h := range s.held {
				sum += len(h.data)
				if i == 0 && h.off <= s.next {
					return fmt.Errorf("%v %v: first held chunk at %d is not ahead of %d", e.info.ID, s.dir, h.off, s.next)
				}
				if i > 0 && s.held[i-1].off > h.off {
					return fmt.Errorf("%v %v: held chunks out of order", e.info.ID, s.dir)
				}
			}
			if sum != s.heldBytes {
				return fmt.Errorf("%v %v: held bytes %d, counted %d", e.info.ID, s.dir, sum, s.heldBytes)
			}
			if s.heldBytes > tab.cfg.MaxPendingBytes || len(s.held) > tab.cfg.MaxPendingChunks {
				return fmt.Errorf("%v %v: holds %d bytes in %d chunks, over %d/%d", e.info.ID, s.dir, s.heldBytes, len(s.held), tab.cfg.MaxPendingBytes, tab.cfg.MaxPendingChunks)
			}
			if cap(s.arena) > tab.maxArena {
				return fmt.Errorf("%v %v: arena of %d bytes, over %d", e.info.ID, s.dir, cap(s.arena), tab.maxArena)
			}
			if (len(s.held) > 0) != s.pending {
				return fmt.Errorf("%v %v: %d held but pending=%v", e.info.ID, s.dir, len(s.held), s.pending)
			}
		}
	}
	if total != tab.pendingBytes || int64(total) != tab.stats.PendingBytes.Load() {
		return fmt.Errorf("pending bytes: table %d, stats %d, streams %d", tab.pendingBytes, tab.stats.PendingBytes.Load(), total)
	}
	if total > tab.cfg.MaxTotalPendingBytes {
		return fmt.Errorf("pending bytes %d over the table's %d", total, tab.cfg.MaxTotalPendingBytes)
	}
	if len(tab.conns) > tab.cfg.MaxConns || int64(len(tab.conns)) != tab.stats.Live.Load() {
		return fmt.Errorf("live: %d conns, stats %d, max %d", len(tab.conns), tab.stats.Live.Load(), tab.cfg.MaxConns)
	}
	if len(tab.freeBufs) > maxFree || len(tab.freeHeld) > maxFree {
		return fmt.Errorf("free lists: %d bufs, %d held slices", len(tab.freeBufs), len(tab.freeHeld))
	}
	return nil
}

// TestArenaCompaction keeps a stream holding data for a long time while
// chunks come and go, so its copy buffer fills with dead bytes and must be
// compacted, not grown without bound; the bytes must survive the moves.
func TestArenaCompaction(t *testing.T) {
	id := ID{PID: 1, FD: 1, Gen: 1}
	cfg := TableConfig{MaxPendingBytes: 1 << 10, MaxPendingChunks: 8, ReorderWindow: 1 << 40}
	tab, rs := newTestTable(cfg)
	tab.Open(Info{ID: id, Role: RoleClient})
	const far = 1 << 20
	send(tab, id, Egress, far, "far", 0) // never reached: keeps the stream holding
	chunk := func(k uint64) string {
		b := make([]byte, 100)
		for i := range b {
			b[i] = byte(k + uint64(i))
		}
		return string(b)
	}
	for k := uint64(0); k < 200; k += 2 {
		send(tab, id, Egress, (k+1)*100, chunk(k+1), 0)
		send(tab, id, Egress, k*100, chunk(k), 0)
		checkBounds(t, tab)
	}
	r := rs.only(t)
	if len(r.segs) != 200 {
		t.Fatalf("segments: got %d, want 200", len(r.segs))
	}
	for k, s := range r.segs {
		if s.Offset != uint64(k)*100 || string(s.Data) != chunk(uint64(k)) {
			t.Fatalf("segment %d at %d: bytes moved wrong", k, s.Offset)
		}
	}
	if c := cap(tab.conns[slotOf(id)].streams[Egress].arena); c > tab.maxArena {
		t.Errorf("arena grew to %d, over %d", c, tab.maxArena)
	}
}
