package conn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// truth is the byte at off in a stream: every captured byte the fuzzer
// sends is truth, so any delivered byte that is not was made up or moved.
func truth(id ID, dir Direction, off uint64) byte {
	return byte(off*31 + uint64(dir)*7 + id.Gen*3 + uint64(id.FD))
}

// checker is a Handler that fails the fuzz run on any broken invariant.
type checker struct {
	t       *testing.T
	info    *Info
	next    [2]uint64
	started [2]bool
	closed  bool
	// given holds every captured byte sent for any connection; maxEnd[d]
	// is the end of the furthest chunk routed to this connection.
	given  *givenBytes
	maxEnd [2]uint64
}

// givenBytes marks, per fuzzed stream, the offsets of captured bytes sent.
type givenBytes [16][]bool

// streamIndex numbers the fuzzer's streams: 2 pids, 2 fds, 2 generations
// (all numbered from 1 but fds), 2 directions.
func streamIndex(id ID, dir Direction) int {
	return ((int(id.PID-1)*2+int(id.FD))*2+int(id.Gen-1))*2 + int(dir)
}

func (g *givenBytes) mark(id ID, dir Direction, off uint64) {
	s := &g[streamIndex(id, dir)]
	if n := uint64(len(*s)); off >= n {
		*s = append(*s, make([]bool, off+1-n)...)
	}
	(*s)[off] = true
}

func (g *givenBytes) has(id ID, dir Direction, off uint64) bool {
	s := g[streamIndex(id, dir)]
	return off < uint64(len(s)) && s[off]
}

func (c *checker) Segment(s *Segment) {
	if c.closed {
		c.t.Fatalf("%v: segment after close", c.info.ID)
	}
	if s.Dir > Ingress {
		c.t.Fatalf("%v: direction %d", c.info.ID, s.Dir)
	}
	if (s.Data == nil) == (s.Skip == 0) || (s.Data != nil && len(s.Data) == 0) {
		c.t.Fatalf("%v: segment is neither data nor skip: %d bytes, skip %d", c.info.ID, len(s.Data), s.Skip)
	}
	d := s.Dir
	if s.Seq != uint32(s.Offset) || s.Start > s.End {
		c.t.Fatalf("%v %v: segment at %d has seq %d, times %d..%d", c.info.ID, d, s.Offset, s.Seq, s.Start, s.End)
	}
	if c.started[d] && s.Offset != c.next[d] {
		c.t.Fatalf("%v %v: segment at %d, want contiguous at %d", c.info.ID, d, s.Offset, c.next[d])
	}
	for i, b := range s.Data {
		off := s.Offset + uint64(i)
		if !c.given.has(c.info.ID, d, off) || b != truth(c.info.ID, d, off) {
			c.t.Fatalf("%v %v: byte at %d was never given", c.info.ID, d, off)
		}
	}
	c.started[d] = true
	c.next[d] = s.Offset + s.Len()
}

func (c *checker) Close(int64) {
	if c.closed {
		c.t.Fatalf("%v: closed twice", c.info.ID)
	}
	c.closed = true
	for d := range 2 {
		if c.maxEnd[d] > c.next[d] {
			c.t.Fatalf("%v %v: closed at %d, but chunks up to %d were given", c.info.ID, Direction(d), c.next[d], c.maxEnd[d])
		}
	}
}

// FuzzReassembly feeds random event sequences over a few connections that
// share fds and generations, and checks after every event that deliveries
// are contiguous and true, memory stays within bounds, and every handler
// closes exactly once with nothing it was given left behind.
//
// Besides hand-made programs, the seeds replay the chunk boundaries and
// directions of real captures (the parsers' .rec fixtures): sent at once,
// and with every third chunk delayed past the next.
func FuzzReassembly(f *testing.F) {
	for _, rec := range []string{"http1/testdata/curl-nginx-keepalive", "http1/testdata/raw-nginx-pipelined", "http2/testdata/grpc-concurrent",
		"postgres/testdata/psql-simple", "postgres/testdata/pgbench-prepared"} {
		sizes, err := recChunks(filepath.Join("..", "protocols", rec+".rec"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(reassemblyProgram(sizes, false))
		f.Add(reassemblyProgram(sizes, true))
	}
	f.Add([]byte{0, 0, 0, 10, 200, 1, 0, 0, 10, 200})
	f.Add([]byte{0, 0, 20, 10, 200, 0, 0, 0, 10, 200, 0, 0, 0, 10, 200})
	f.Add([]byte{0, 8, 5, 40, 20, 5, 9, 0, 0, 0, 6, 4, 0, 0, 0, 0, 4, 0, 30, 255})
	f.Add([]byte{0, 1, 0, 63, 255, 0, 1, 100, 63, 255, 0, 1, 200, 63, 255, 7, 0, 0, 0, 0, 0, 1, 0, 63, 3})
	f.Fuzz(fuzzReassembly)
}

// recChunk is one read of a .rec capture: its direction and length.
type recChunk struct {
	toServer bool
	n        int
}

// recChunks reads the chunks of a .rec file (protocols/recording's
// format: "> N" or "< N", a newline, N bytes, a newline). conn cannot
// import protocols/recording, which imports conn.
func recChunks(path string) ([]recChunk, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []recChunk
	for len(raw) > 0 {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 3 {
			return nil, fmt.Errorf("%s: bad record header", path)
		}
		n, err := strconv.Atoi(string(raw[2:nl]))
		if err != nil || nl+1+n+1 > len(raw) {
			return nil, fmt.Errorf("%s: bad record length %q", path, raw[:nl])
		}
		out = append(out, recChunk{raw[0] == '>', n})
		raw = raw[nl+1+n+1:]
	}
	return out, nil
}

// reassemblyProgram encodes a client connection that opens, carries the
// chunks (each cut into records of at most 63 bytes, fully captured),
// and closes with its ends; with delay, every third record is held back
// and arrives after the next. Only the first 2 KiB or so of a capture
// are kept: the checks cost more the longer a stream, and longer seeds
// slow the fuzzer to a crawl.
func reassemblyProgram(chunks []recChunk, delay bool) []byte {
	prog := []byte{6, 0, byte(RoleClient), 0, 0}
	k := 0
	for _, c := range chunks {
		if k >= 40 {
			break
		}
		dir := byte(Ingress)
		if c.toServer {
			dir = byte(Egress)
		}
		for n := c.n; n > 0; n -= 63 {
			rec := []byte{1 << 3, dir << 3, 0, byte(min(n, 63)), 255}
			k++
			if delay && k%3 == 0 {
				rec[2] = 4 << 5
				prog = append(prog, rec...)
				continue
			}
			prog = append(prog, rec...)
			if delay && k%3 == 1 && k > 1 {
				prog = append(prog, 1<<3, dir<<3, 5<<5, 0, 255) // the held one arrives
			}
		}
	}
	return append(prog, 5, 0, 1, 0, 0)
}

func fuzzReassembly(t *testing.T, in []byte) {
	cfg := TableConfig{MaxConns: 3, IdleTimeout: 2000, ReorderWindow: 100, MaxPendingBytes: 64, MaxPendingChunks: 4, MaxTotalPendingBytes: 160}
	var made []*checker
	given := &givenBytes{}
	tab := NewTable(cfg, func(info *Info) Handler {
		c := &checker{t: t, info: info, given: given}
		made = append(made, c)
		return c
	})
	tab.minArena, tab.maxArena = 8, 2*cfg.MaxPendingBytes // reach compaction with small chunks

	// Each 5-byte record is one event: kind and time step; connection and
	// direction; what the sender does; length; captured length. Senders
	// write each stream contiguously, and the "network" between them and
	// the table delays, loses and repeats chunks.
	type sent struct {
		off     uint64
		n, capt uint32
	}
	var cursor [16]uint64    // per streamIndex: where each sender is
	var stash [16][]sent     // chunks delayed on their way
	var recent [16][4]uint64 // where some recent chunks started
	ts := int64(1)
	send := func(id ID, dir Direction, c sent) {
		data := make([]byte, c.capt)
		for i := range data {
			data[i] = truth(id, dir, c.off+uint64(i))
			given.mark(id, dir, c.off+uint64(i))
		}
		tab.Data(id, dir, c.off, c.n, data, ts-3, ts, uint32(c.off), 1)
		// Whichever handler lives for id now got the chunk (the call may
		// have made it), unless the chunk was stale.
		if e := tab.conns[slotOf(id)]; e != nil && e.info.ID == id && c.n > 0 {
			h := e.h.(*checker)
			h.maxEnd[dir] = max(h.maxEnd[dir], c.off+uint64(c.n))
		}
	}
	for ; len(in) >= 5; in = in[5:] {
		b := in[:5]
		pid, fd, gen, dir := b[1]&1, (b[1]>>1)&1, (b[1]>>2)&1, Direction((b[1]>>3)&1)
		id := ID{PID: uint32(pid) + 1, FD: int32(fd), Gen: uint64(gen) + 1}
		si := streamIndex(id, dir)
		ts += int64(b[0]>>3) * 7
		switch b[0] & 7 {
		case 0, 1, 2, 3, 4:
			c := sent{off: cursor[si], n: uint32(b[3] % 64)}
			c.capt = c.n
			if b[4] < 128 {
				c.capt = min(c.n, uint32(b[4]%80))
			}
			switch mode := b[2] >> 5; {
			case mode <= 3: // sent at once
				cursor[si] += uint64(c.n)
				send(id, dir, c)
			case mode == 4: // delayed
				cursor[si] += uint64(c.n)
				if len(stash[si]) == 4 {
					send(id, dir, stash[si][0])
					stash[si] = stash[si][1:]
				}
				stash[si] = append(stash[si], c)
			case mode == 5: // a delayed one arrives
				if k := len(stash[si]); k > 0 {
					i := int(b[2]&3) % k
					send(id, dir, stash[si][i])
					stash[si] = append(stash[si][:i], stash[si][i+1:]...)
				}
			case mode == 6: // lost
				cursor[si] += uint64(c.n)
			default: // repeated, overlapping what was sent, maybe from a chunk's start
				if b[2]&16 != 0 {
					c.off = recent[si][b[2]&3]
				} else {
					c.off -= min(c.off, uint64(b[2]&15))
				}
				cursor[si] = max(cursor[si], c.off+uint64(c.n))
				send(id, dir, c)
			}
			recent[si][b[0]>>3&3] = c.off
		case 5:
			if b[2]&1 == 0 {
				tab.Close(id, ts)
				break
			}
			// The senders' cursors stand for the kernel's stream ends.
			ends := [2]uint64{cursor[streamIndex(id, Egress)], cursor[streamIndex(id, Ingress)]}
			e := tab.conns[slotOf(id)]
			tab.CloseWithEnds(id, ts, ends)
			if e != nil && e.info.ID == id {
				c := e.h.(*checker)
				for d := range 2 {
					if c.started[d] && c.next[d] < ends[d] {
						t.Fatalf("%v %v: closed at %d, before the end %d", id, Direction(d), c.next[d], ends[d])
					}
				}
			}
		case 6:
			tab.Open(Info{ID: id, Role: Role(b[2] % 3), OpenedAt: ts})
		case 7:
			if b[2]&1 == 0 {
				tab.ProcessExit(id.PID, ts)
			} else {
				tab.EvictIdle(ts + int64(b[3])*10)
			}
		}
		if err := boundsErr(tab); err != nil {
			t.Fatal(err)
		}
	}

	tab.Flush(ts)
	checkBounds(t, tab)
	if tab.Len() != 0 || tab.pendingBytes != 0 {
		t.Fatalf("after flush: %d live, %d pending", tab.Len(), tab.pendingBytes)
	}
	for _, c := range made {
		if !c.closed {
			t.Fatalf("%v never closed", c.info.ID)
		}
	}
	s := tab.Stats()
	ended := s.ClosedByClose.Load() + s.ClosedByExit.Load() + s.ClosedReplaced.Load() +
		s.EvictedIdle.Load() + s.EvictedFull.Load() + s.ClosedAtFlush.Load()
	if opened := s.Opened.Load() + s.OpenedFromData.Load(); opened != ended || opened != uint64(len(made)) {
		t.Fatalf("opened %d, ended %d, handlers %d", opened, ended, len(made))
	}
}
