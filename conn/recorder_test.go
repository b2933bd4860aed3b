package conn

import (
	"fmt"
	"testing"
)

// recorder is a Handler that keeps copies of what it was given.
type recorder struct {
	info    *Info
	segs    []Segment
	closes  int
	closeTS int64
}

func (r *recorder) Segment(s *Segment) {
	c := *s
	if s.Data != nil {
		c.Data = append([]byte(nil), s.Data...)
	}
	r.segs = append(r.segs, c)
}

func (r *recorder) Close(ts int64) {
	r.closes++
	r.closeTS = ts
}

// got renders dir's segments as "offset:bytes" or "offset:~skip".
func (r *recorder) got(dir Direction) []string {
	var out []string
	for _, s := range r.segs {
		if s.Dir != dir {
			continue
		}
		if s.Data != nil {
			out = append(out, fmt.Sprintf("%d:%s", s.Offset, s.Data))
		} else {
			out = append(out, fmt.Sprintf("%d:~%d", s.Offset, s.Skip))
		}
	}
	return out
}

// recorders makes one recorder per connection and remembers them all, in
// the order they were made.
type recorders struct{ all []*recorder }

func (rs *recorders) factory(info *Info) Handler {
	r := &recorder{info: info}
	rs.all = append(rs.all, r)
	return r
}

// only returns the single recorder made, failing if there is not exactly one.
func (rs *recorders) only(t *testing.T) *recorder {
	t.Helper()
	if len(rs.all) != 1 {
		t.Fatalf("handlers made: got %d, want 1", len(rs.all))
	}
	return rs.all[0]
}

// of returns the last recorder made for id.
func (rs *recorders) of(t *testing.T, id ID) *recorder {
	t.Helper()
	for i := len(rs.all) - 1; i >= 0; i-- {
		if rs.all[i].info.ID == id {
			return rs.all[i]
		}
	}
	t.Fatalf("no handler for %v", id)
	return nil
}

func newTestTable(cfg TableConfig) (*Table, *recorders) {
	rs := &recorders{}
	return NewTable(cfg, rs.factory), rs
}

// send feeds a fully captured chunk.
func send(t *Table, id ID, dir Direction, off uint64, data string, ts int64) {
	t.Data(id, dir, off, uint32(len(data)), []byte(data), ts, ts, 0, 1)
}
