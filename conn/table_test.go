package conn

import (
	"net/netip"
	"slices"
	"testing"
)

func tuple(local, remote string) Tuple {
	return Tuple{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote)}
}

func TestFDReuseNewGeneration(t *testing.T) {
	old := ID{PID: 10, FD: 5, Gen: 1}
	neu := ID{PID: 10, FD: 5, Gen: 2}
	tests := []struct {
		name string
		// reuse makes the new generation appear after the old one had data.
		reuse func(tab *Table)
	}{
		{"open", func(tab *Table) { tab.Open(Info{ID: neu, Role: RoleClient, OpenedAt: 50}) }},
		{"data", func(tab *Table) { send(tab, neu, Egress, 0, "new", 50) }},
		{"close of the new one", func(tab *Table) { tab.Close(neu, 50) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, rs := newTestTable(TableConfig{})
			tab.Open(Info{ID: old, Role: RoleClient, OpenedAt: 10})
			send(tab, old, Egress, 0, "old", 20)
			send(tab, old, Egress, 5, "held", 21) // a gap the old connection never fills
			tc.reuse(tab)
			r := rs.all[0]
			if r.closes != 1 || r.closeTS != 21 {
				t.Errorf("old connection: closed %d times at %d, want once at its last activity 21", r.closes, r.closeTS)
			}
			if got, want := r.got(Egress), []string{"0:old", "3:~2", "5:held"}; !slices.Equal(got, want) {
				t.Errorf("old connection segments: got %q, want %q", got, want)
			}
			expect(t, "replaced", tab.Stats().ClosedReplaced.Load(), 1)
			// Stale events for the old generation are dropped, not revived.
			send(tab, old, Egress, 9, "late", 60)
			tab.Close(old, 61)
			if r.closes != 1 || len(r.segs) != 3 {
				t.Errorf("old connection after stale events: %d closes, %d segments", r.closes, len(r.segs))
			}
			if tab.Stats().StaleEvents.Load() == 0 {
				t.Error("stale events not counted")
			}
			tab.Flush(100)
			for i, r := range rs.all {
				if r.closes != 1 {
					t.Errorf("handler %d (%v) closed %d times", i, r.info.ID, r.closes)
				}
			}
		})
	}
}

func TestStaleOpenIgnored(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	tab.Open(Info{ID: ID{PID: 1, FD: 1, Gen: 5}, Role: RoleServer})
	tab.Open(Info{ID: ID{PID: 1, FD: 1, Gen: 4}, Role: RoleServer})
	tab.Open(Info{ID: ID{PID: 1, FD: 1, Gen: 5}, Role: RoleServer}) // repeated
	if len(rs.all) != 1 || rs.all[0].closes != 0 || tab.Len() != 1 {
		t.Errorf("handlers %d, closes %d, live %d; want 1, 0, 1", len(rs.all), rs.all[0].closes, tab.Len())
	}
	expect(t, "stale", tab.Stats().StaleEvents.Load(), 2)
}

// TestLateOpenKeepsConnection checks an open that trails its data keeps
// the connection made up from data, with its Info untouched (it is
// immutable once in the table), and starts its unseen stream at 0.
func TestLateOpenKeepsConnection(t *testing.T) {
	id := ID{PID: 3, FD: 7, Gen: 1}
	tab, rs := newTestTable(TableConfig{})
	send(tab, id, Egress, 0, "GET", 100)
	tab.Open(Info{ID: id, Tuple: tuple("10.0.0.1:40000", "10.0.0.2:80"), Role: RoleClient, Comm: "curl", TID: 9, OpenedAt: 90})
	send(tab, id, Egress, 3, " /", 110)
	r := rs.only(t)
	if want := (Info{ID: id, TID: 1, OpenedAt: 100}); *r.info != want {
		t.Errorf("info after late open: got %+v, want %+v", *r.info, want)
	}
	if got := r.got(Egress); !slices.Equal(got, []string{"0:GET", "3: /"}) {
		t.Errorf("segments: %q", got)
	}
	send(tab, id, Ingress, 2, "00", 120)
	if got := r.got(Ingress); len(got) != 0 {
		t.Errorf("ingress ahead of 0 delivered at once: %q", got)
	}
	expect(t, "opened from data", tab.Stats().OpenedFromData.Load(), 1)
	expect(t, "opened", tab.Stats().Opened.Load(), 0)
	tab.Open(Info{ID: id, Role: RoleClient}) // now a repeat
	expect(t, "stale", tab.Stats().StaleEvents.Load(), 1)
}

// TestUnknownRoleOpenStartsAtZero checks a connection that predates weft,
// announced by the kernel when it first saw it, counts from 0 like any
// other: its first chunks may be reordered too.
func TestUnknownRoleOpenStartsAtZero(t *testing.T) {
	id := ID{PID: 3, FD: 7, Gen: 1}
	tab, rs := newTestTable(TableConfig{})
	tab.Open(Info{ID: id, Role: RoleUnknown})
	send(tab, id, Ingress, 3, "def", 1)
	send(tab, id, Ingress, 0, "abc", 2)
	if got := rs.only(t).got(Ingress); !slices.Equal(got, []string{"0:abc", "3:def"}) {
		t.Errorf("segments: %q", got)
	}
}

func TestProcessExit(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	for fd := range int32(3) {
		tab.Open(Info{ID: ID{PID: 1, FD: fd, Gen: 1}, Role: RoleClient})
	}
	tab.Open(Info{ID: ID{PID: 2, FD: 0, Gen: 1}, Role: RoleClient})
	send(tab, ID{PID: 1, FD: 1, Gen: 1}, Egress, 4, "held", 5)
	tab.ProcessExit(1, 77)
	if tab.Len() != 1 {
		t.Fatalf("live after exit: %d, want 1", tab.Len())
	}
	for _, r := range rs.all {
		want, wantTS := 1, int64(77)
		if r.info.ID.PID == 2 {
			want, wantTS = 0, 0
		}
		if r.closes != want || r.closeTS != wantTS {
			t.Errorf("%v: closed %d times at %d, want %d at %d", r.info.ID, r.closes, r.closeTS, want, wantTS)
		}
	}
	if got := rs.of(t, ID{PID: 1, FD: 1, Gen: 1}).got(Egress); !slices.Equal(got, []string{"0:~4", "4:held"}) {
		t.Errorf("held data at exit: %q", got)
	}
	expect(t, "closed by exit", tab.Stats().ClosedByExit.Load(), 3)
	tab.ProcessExit(1, 78) // nothing left
	expect(t, "closed by exit", tab.Stats().ClosedByExit.Load(), 3)
	tab.ProcessExit(2, 79)
	if tab.Len() != 0 || len(tab.pids) != 0 {
		t.Errorf("after all exits: %d live, %d pids", tab.Len(), len(tab.pids))
	}
}

func TestEvictIdle(t *testing.T) {
	tab, rs := newTestTable(TableConfig{IdleTimeout: 1000})
	a, b, c := ID{PID: 1, FD: 1, Gen: 1}, ID{PID: 1, FD: 2, Gen: 1}, ID{PID: 1, FD: 3, Gen: 1}
	tab.Open(Info{ID: a, Role: RoleClient, OpenedAt: 100})
	tab.Open(Info{ID: b, Role: RoleClient, OpenedAt: 200})
	tab.Open(Info{ID: c, Role: RoleClient, OpenedAt: 300})
	send(tab, a, Egress, 0, "x", 1500) // a is busy again
	tab.EvictIdle(1250)                // b idle 1050, c idle 950
	if tab.Len() != 2 {
		t.Fatalf("live: %d, want 2", tab.Len())
	}
	if r := rs.of(t, b); r.closes != 1 || r.closeTS != 200 {
		t.Errorf("b: closed %d times at %d, want once at its last activity 200", r.closes, r.closeTS)
	}
	if rs.of(t, a).closes != 0 || rs.of(t, c).closes != 0 {
		t.Error("a or c evicted early")
	}
	tab.EvictIdle(2501)
	if tab.Len() != 0 {
		t.Errorf("live after all idle: %d", tab.Len())
	}
	expect(t, "evicted idle", tab.Stats().EvictedIdle.Load(), 3)
}

func TestTableFullEvictsLeastRecentlyUsed(t *testing.T) {
	tab, rs := newTestTable(TableConfig{MaxConns: 2})
	a, b, c := ID{PID: 1, FD: 1, Gen: 1}, ID{PID: 1, FD: 2, Gen: 1}, ID{PID: 1, FD: 3, Gen: 1}
	tab.Open(Info{ID: a, Role: RoleClient, OpenedAt: 1})
	tab.Open(Info{ID: b, Role: RoleClient, OpenedAt: 2})
	send(tab, a, Egress, 0, "x", 3) // b is now least recently used
	send(tab, c, Egress, 0, "y", 4) // no open seen: made up from data
	if tab.Len() != 2 {
		t.Fatalf("live: %d, want 2", tab.Len())
	}
	if rs.of(t, b).closes != 1 || rs.of(t, a).closes != 0 {
		t.Errorf("closes: a %d, b %d; want 0, 1", rs.of(t, a).closes, rs.of(t, b).closes)
	}
	expect(t, "evicted full", tab.Stats().EvictedFull.Load(), 1)
	if got := rs.of(t, c).got(Egress); !slices.Equal(got, []string{"0:y"}) {
		t.Errorf("c segments: %q", got)
	}
}

func TestCloseUnknownAndTwice(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	id := ID{PID: 1, FD: 1, Gen: 1}
	tab.Close(id, 1)
	tab.Open(Info{ID: id, Role: RoleClient})
	tab.Close(id, 2)
	tab.Close(id, 3)
	tab.Flush(4)
	if r := rs.only(t); r.closes != 1 || r.closeTS != 2 {
		t.Errorf("closed %d times at %d, want once at 2", r.closes, r.closeTS)
	}
	expect(t, "closed", tab.Stats().ClosedByClose.Load(), 1)
}

func TestFlush(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	for fd := range int32(5) {
		id := ID{PID: uint32(fd % 2), FD: fd, Gen: 1}
		tab.Open(Info{ID: id, Role: RoleServer})
		send(tab, id, Ingress, 3, "abc", 1)
	}
	tab.Flush(9)
	if tab.Len() != 0 || tab.lru.head != nil || len(tab.pids) != 0 || tab.pend.head != nil {
		t.Errorf("table not empty after flush: %d live", tab.Len())
	}
	for _, r := range rs.all {
		if r.closes != 1 || r.closeTS != 9 || !slices.Equal(r.got(Ingress), []string{"0:~3", "3:abc"}) {
			t.Errorf("%v: %d closes at %d, segments %q", r.info.ID, r.closes, r.closeTS, r.got(Ingress))
		}
	}
	expect(t, "closed at flush", tab.Stats().ClosedAtFlush.Load(), 5)
	expect(t, "live gauge", uint64(tab.Stats().Live.Load()), 0)
}

// TestReorderWindowClock checks the window runs on event time only: a
// reader behind real time keeps its gaps while events flow, and a quiet
// system gives them up on the next EvictIdle.
func TestReorderWindowClock(t *testing.T) {
	a, b := ID{PID: 1, FD: 1, Gen: 1}, ID{PID: 1, FD: 2, Gen: 1}
	tab, rs := newTestTable(TableConfig{ReorderWindow: 100})
	tab.Open(Info{ID: a, Role: RoleClient, OpenedAt: 1000})
	tab.Open(Info{ID: b, Role: RoleClient, OpenedAt: 1000})
	send(tab, a, Egress, 2, "cd", 1000)
	send(tab, b, Egress, 0, "x", 1050)
	tab.EvictIdle(5000) // events arrived since the last call: now is not trusted
	if got := rs.of(t, a).got(Egress); len(got) != 0 {
		t.Fatalf("gap given up on wall time while events flow: %q", got)
	}
	send(tab, b, Egress, 1, "y", 1101) // another connection's event moves the clock
	if got := rs.of(t, a).got(Egress); !slices.Equal(got, []string{"0:~2", "2:cd"}) {
		t.Fatalf("after the window on event time: %q", got)
	}

	send(tab, a, Egress, 6, "gh", 1200)
	tab.EvictIdle(1250) // events since the last call
	tab.EvictIdle(1299) // quiet, but within the window
	if got := rs.of(t, a).got(Egress); len(got) != 2 {
		t.Fatalf("gap given up inside the window: %q", got)
	}
	tab.EvictIdle(1301) // quiet and past the window
	if got := rs.of(t, a).got(Egress); !slices.Equal(got, []string{"0:~2", "2:cd", "4:~2", "6:gh"}) {
		t.Fatalf("after a quiet EvictIdle: %q", got)
	}
	expect(t, "gaps by window", tab.Stats().GapsWindow.Load(), 2)
}

// TestTotalPendingBound fills many connections' pending buffers: the table
// total stays under its limit by giving up the oldest gaps first.
func TestTotalPendingBound(t *testing.T) {
	cfg := TableConfig{MaxPendingBytes: 100, MaxTotalPendingBytes: 250, ReorderWindow: 1 << 40}
	tab, rs := newTestTable(cfg)
	const conns = 10
	for i := range conns {
		id := ID{PID: 1, FD: int32(i), Gen: 1}
		tab.Open(Info{ID: id, Role: RoleClient})
		send(tab, id, Egress, 1, string(make([]byte, 50)), int64(i))
		checkBounds(t, tab)
	}
	// 5 holds of 50 fill 250; each later one gives up the oldest.
	expect(t, "table overflows", tab.Stats().PendingOverflowsTable.Load(), conns-5)
	for i, r := range rs.all {
		gotSkip := len(r.segs) == 2 && r.segs[0].Skip == 1
		if wantSkip := i < conns-5; gotSkip != wantSkip {
			t.Errorf("conn %d: given up %v, want %v (segments %d)", i, gotSkip, wantSkip, len(r.segs))
		}
	}
	if tab.pendingBytes != 250 {
		t.Errorf("pending bytes: %d, want 250", tab.pendingBytes)
	}
	// A chunk over the whole table's limit is never copied.
	big := ID{PID: 2, FD: 1, Gen: 1}
	tab.Open(Info{ID: big, Role: RoleClient})
	send(tab, big, Egress, 1, string(make([]byte, 300)), 99)
	checkBounds(t, tab)
	if got := rs.of(t, big).got(Egress); len(got) != 2 || got[0] != "0:~1" {
		t.Errorf("oversized chunk: %d segments", len(got))
	}
}

// TestBufferReuse checks held memory goes back to the table when a stream
// drains, and the free lists stay bounded.
func TestBufferReuse(t *testing.T) {
	tab, _ := newTestTable(TableConfig{})
	for i := range 2 * maxFree {
		id := ID{PID: 1, FD: int32(i), Gen: 1}
		tab.Open(Info{ID: id, Role: RoleClient})
		send(tab, id, Egress, 1, "b", 1)
	}
	for i := range 2 * maxFree {
		send(tab, ID{PID: 1, FD: int32(i), Gen: 1}, Egress, 0, "a", 2)
	}
	for _, e := range tab.conns {
		for d := range e.streams {
			if e.streams[d].arena != nil || e.streams[d].held != nil {
				t.Fatalf("%v keeps buffers after draining", e.info.ID)
			}
		}
	}
	if len(tab.freeBufs) != maxFree || len(tab.freeHeld) != maxFree {
		t.Errorf("free lists: %d bufs, %d held, want %d each", len(tab.freeBufs), len(tab.freeHeld), maxFree)
	}
	checkBounds(t, tab)
}

func TestNilHandler(t *testing.T) {
	for _, f := range []HandlerFactory{nil, func(*Info) Handler { return nil }} {
		tab := NewTable(TableConfig{}, f)
		id := ID{PID: 1, FD: 1, Gen: 1}
		tab.Open(Info{ID: id, Role: RoleClient})
		send(tab, id, Egress, 0, "a", 1)
		send(tab, id, Egress, 2, "c", 1)
		tab.Flush(2)
		expect(t, "segments", tab.Stats().Segments.Load(), 3)
	}
}

func TestMalformedChunks(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	id := ID{PID: 1, FD: 1, Gen: 1}
	tab.Open(Info{ID: id, Role: RoleClient})
	tab.Data(id, Direction(2), 0, 1, []byte("a"), 1, 1, 0, 1)
	tab.Data(id, Egress, ^uint64(0), 2, []byte("ab"), 1, 1, 0, 1)
	tab.Data(id, Egress, 0, 2, []byte("abcd"), 1, 1, 0, 1) // more captured than moved
	if got := rs.only(t).got(Egress); !slices.Equal(got, []string{"0:ab"}) {
		t.Errorf("segments: %q", got)
	}
	expect(t, "stale", tab.Stats().StaleEvents.Load(), 2)
}

func TestConfig(t *testing.T) {
	if err := (TableConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := DefaultTableConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	if err := (TableConfig{MaxConns: -1, ReorderWindow: -1}).Validate(); err == nil {
		t.Error("negative bounds accepted")
	}
	tab := NewTable(TableConfig{MaxConns: 5, MaxPendingChunks: -3}, nil)
	got := tab.Config()
	want := DefaultTableConfig()
	want.MaxConns = 5
	if got != want {
		t.Errorf("config with defaults: got %+v, want %+v", got, want)
	}
}

// TestLateDataAfterEnd checks data racing a close does not revive the
// connection, while data after an idle eviction rightly does.
func TestLateDataAfterEnd(t *testing.T) {
	id := ID{PID: 1, FD: 1, Gen: 1}
	tab, rs := newTestTable(TableConfig{IdleTimeout: 10})
	tab.Open(Info{ID: id, Role: RoleClient})
	tab.Close(id, 5)
	send(tab, id, Egress, 0, "late", 6)
	if tab.Len() != 0 || len(rs.all) != 1 {
		t.Fatalf("late data revived a closed connection: %d live, %d handlers", tab.Len(), len(rs.all))
	}
	other := ID{PID: 1, FD: 2, Gen: 1}
	tab.Open(Info{ID: other, Role: RoleClient})
	tab.EvictIdle(100)
	send(tab, other, Egress, 0, "back", 101)
	if tab.Len() != 1 || len(rs.all) != 3 {
		t.Fatalf("data after idle eviction: %d live, %d handlers; want 1, 3", tab.Len(), len(rs.all))
	}
	// The tombstones forget the oldest once full.
	for i := range tombstoneCap {
		x := ID{PID: 9, FD: int32(i), Gen: 1}
		tab.Open(Info{ID: x, Role: RoleClient})
		tab.Close(x, 200)
	}
	if tab.ended.has(id) || len(tab.ended.set) != tombstoneCap {
		t.Errorf("tombstones: %d remembered, first still there: %v", len(tab.ended.set), tab.ended.has(id))
	}
}

// TestWindowOrderAfterPartialDrain checks a stream whose first gap filled
// waits on for its next gap from when that gap's data arrived, ahead of
// streams that began holding later.
func TestWindowOrderAfterPartialDrain(t *testing.T) {
	a, b, c := ID{PID: 1, FD: 1, Gen: 1}, ID{PID: 1, FD: 2, Gen: 1}, ID{PID: 1, FD: 3, Gen: 1}
	tab, rs := newTestTable(TableConfig{ReorderWindow: 100})
	for _, id := range []ID{a, b, c} {
		tab.Open(Info{ID: id, Role: RoleClient})
	}
	send(tab, a, Egress, 2, "cd", 10)
	send(tab, a, Egress, 6, "gh", 15)
	send(tab, b, Egress, 2, "cd", 20)
	send(tab, a, Egress, 0, "ab", 21) // a now waits for 4..6, since 15
	if tab.pend.head != &tab.conns[slotOf(a)].streams[Egress] || tab.pend.tail != &tab.conns[slotOf(b)].streams[Egress] {
		t.Fatal("a's stream should be first in line, b's last")
	}
	send(tab, c, Egress, 0, "x", 116) // 101 after a's, 96 after b's
	if got := rs.of(t, a).got(Egress); !slices.Equal(got, []string{"0:ab", "2:cd", "4:~2", "6:gh"}) {
		t.Errorf("a: %q", got)
	}
	if got := rs.of(t, b).got(Egress); len(got) != 0 {
		t.Errorf("b given up early: %q", got)
	}
}

// TestChunkOverTableLimit checks a chunk bigger than the whole table's
// pending limit, but within its stream's, is delivered without a copy.
func TestChunkOverTableLimit(t *testing.T) {
	id := ID{PID: 1, FD: 1, Gen: 1}
	tab, rs := newTestTable(TableConfig{MaxPendingBytes: 100, MaxTotalPendingBytes: 10})
	tab.Open(Info{ID: id, Role: RoleClient})
	send(tab, id, Egress, 1, "0123456789ab", 1)
	if got := rs.only(t).got(Egress); !slices.Equal(got, []string{"0:~1", "1:0123456789ab"}) {
		t.Errorf("segments: %q", got)
	}
	expect(t, "table overflows", tab.Stats().PendingOverflowsTable.Load(), 1)
	expect(t, "stream overflows", tab.Stats().PendingOverflowsStream.Load(), 0)
}

// TestDataAfterCloseOfUnseen checks a close for a connection never seen
// still stops data that raced it from making one up.
func TestDataAfterCloseOfUnseen(t *testing.T) {
	tab, rs := newTestTable(TableConfig{})
	old, neu := ID{PID: 1, FD: 1, Gen: 1}, ID{PID: 1, FD: 1, Gen: 2}
	tab.Close(ID{PID: 1, FD: 2, Gen: 1}, 1)
	send(tab, ID{PID: 1, FD: 2, Gen: 1}, Egress, 0, "late", 2)
	tab.Open(Info{ID: old, Role: RoleClient})
	tab.Close(neu, 3) // ends old too: its fd was reused
	send(tab, neu, Egress, 0, "late", 4)
	if tab.Len() != 0 || len(rs.all) != 1 {
		t.Errorf("late data made connections: %d live, %d handlers", tab.Len(), len(rs.all))
	}
	expect(t, "stale", tab.Stats().StaleEvents.Load(), 2)
}
