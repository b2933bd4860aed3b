package conn

import (
	"net/netip"
	"testing"
)

type segLog struct {
	segs   []Segment
	closed int
}

func (l *segLog) Segment(s *Segment) {
	c := *s
	c.Data = append([]byte(nil), s.Data...)
	l.segs = append(l.segs, c)
}
func (l *segLog) Close(int64) { l.closed++ }

// TestDatagramBoundaries: datagrams arrive whole, in call order, with their
// peer, whatever their offsets; a truncated one is followed by its Skip.
func TestDatagramBoundaries(t *testing.T) {
	log := &segLog{}
	tab := NewTable(TableConfig{}, func(*Info) Handler { return log })
	id := ID{PID: 1, FD: 3, Gen: 9}
	tab.Open(Info{ID: id, UDP: true, OpenedAt: 1})
	dns := netip.MustParseAddrPort("127.0.0.53:53")
	tab.Datagram(id, Egress, 5, []byte("query"), 10, 11, 7, dns)
	tab.Datagram(id, Ingress, 9, []byte("answ"), 20, 21, 7, dns)
	tab.Datagram(id, Egress, 5, []byte("again"), 30, 31, 7, netip.MustParseAddrPort("[::1]:5353"))
	tab.Close(id, 40)

	want := []struct {
		dir  Direction
		data string
		skip uint64
		peer string
	}{
		{Egress, "query", 0, "127.0.0.53:53"},
		{Ingress, "answ", 0, "127.0.0.53:53"},
		{Ingress, "", 5, "127.0.0.53:53"},
		{Egress, "again", 0, "[::1]:5353"},
	}
	if len(log.segs) != len(want) {
		t.Fatalf("got %d segments, want %d: %+v", len(log.segs), len(want), log.segs)
	}
	for i, w := range want {
		s := log.segs[i]
		if !s.Datagram || s.Dir != w.dir || string(s.Data) != w.data || s.Skip != w.skip || s.Peer.String() != w.peer {
			t.Errorf("segment %d = %+v, want %+v", i, s, w)
		}
	}
	if log.closed != 1 {
		t.Fatalf("closed %d times", log.closed)
	}
	if got := tab.Stats().BytesSkippedTruncated.Load(); got != 5 {
		t.Fatalf("truncated bytes counted %d, want 5", got)
	}
}

type expiring struct {
	segLog
	expired []int64
}

func (e *expiring) Expire(now int64) { e.expired = append(e.expired, now) }

// TestExpireHandlers: handlers with timers get the tick; others are left alone.
func TestExpireHandlers(t *testing.T) {
	h := &expiring{}
	tab := NewTable(TableConfig{}, func(info *Info) Handler {
		if info.ID.FD == 1 {
			return h
		}
		return &segLog{}
	})
	tab.Open(Info{ID: ID{PID: 1, FD: 1, Gen: 1}, OpenedAt: 1})
	tab.Open(Info{ID: ID{PID: 1, FD: 2, Gen: 1}, OpenedAt: 1})
	tab.ExpireHandlers(42)
	if len(h.expired) != 1 || h.expired[0] != 42 {
		t.Fatalf("Expire calls %v, want [42]", h.expired)
	}
}
