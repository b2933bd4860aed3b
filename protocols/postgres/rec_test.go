package postgres

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// chunk is one read the recording proxy made (see testdata/README.md).
type chunk struct {
	toServer bool
	b        []byte
}

func loadRec(t testing.TB, name string) []chunk {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []chunk
	for len(raw) > 0 {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 3 || (raw[0] != '>' && raw[0] != '<') || raw[1] != ' ' {
			t.Fatalf("%s: bad record header %q", name, raw[:min(len(raw), 20)])
		}
		n, err := strconv.Atoi(string(raw[2:nl]))
		if err != nil || nl+1+n+1 > len(raw) || raw[nl+1+n] != '\n' {
			t.Fatalf("%s: bad record length %q", name, raw[:nl])
		}
		cs = append(cs, chunk{raw[0] == '>', raw[nl+1 : nl+1+n]})
		raw = raw[nl+1+n+1:]
	}
	return cs
}

// Synthetic timing and sequence numbers for recorded chunks: chunk k ran
// from chunkStart(k) to chunkEnd(k) on thread chunkTID(k). The client's
// sequence space wraps early to exercise uint32 arithmetic.
func chunkStart(k int) int64 { return 1_000_000 + int64(k)*1000 }
func chunkEnd(k int) int64   { return chunkStart(k) + 400 }
func chunkTID(k int) uint32  { return 500 + uint32(k) }

const (
	isnToServer = uint32(0xFFFF_FF00)
	isnToClient = uint32(12345)
	closeTS     = int64(999_999_999)
)

// seg is a segment with its direction from the client's point of view.
type seg struct {
	toServer bool
	k        int    // recording chunk it came from
	off      int    // offset in its direction's stream
	data     []byte // nil for a skip
	skip     int
}

// cut turns the recording into segments. split(k, c) returns the lengths
// to cut chunk k into; skipped(toServer, off) says whether a byte is lost
// (runs of lost bytes become one skip segment).
func cut(cs []chunk, split func(k int, c chunk) []int, skipped func(toServer bool, off int) bool) []seg {
	var out []seg
	var offs [2]int
	for k, c := range cs {
		d := 0
		if c.toServer {
			d = 1
		}
		b := c.b
		for _, n := range split(k, c) {
			part := b[:n]
			b = b[n:]
			for len(part) > 0 {
				off := offs[d]
				sk := skipped != nil && skipped(c.toServer, off)
				i := 1
				for i < len(part) && (skipped != nil && skipped(c.toServer, off+i)) == sk {
					i++
				}
				s := seg{toServer: c.toServer, k: k, off: off}
				if sk {
					s.skip = i
				} else {
					s.data = part[:i]
				}
				out = append(out, s)
				offs[d] += i
				part = part[i:]
			}
		}
	}
	return out
}

func whole(_ int, c chunk) []int { return []int{len(c.b)} }

func bytewise(_ int, c chunk) []int {
	n := make([]int, len(c.b))
	for i := range n {
		n[i] = 1
	}
	return n
}

// feed feeds segments to a parser seen from role and returns what it
// emitted (copies). RoleUnknown is fed as the server would see it.
func feed(t testing.TB, role conn.Role, segs []seg, opts Options) []protocols.Exchange {
	info := &conn.Info{Role: role}
	var got []protocols.Exchange
	p := New(info, func(x *protocols.Exchange) {
		if x.Conn != info {
			t.Errorf("exchange on another connection: %p, want %p", x.Conn, info)
		}
		c := *x
		pg := *x.Postgres
		c.Postgres = &pg
		c.Conn = nil
		got = append(got, c)
	}, opts)
	client := role == conn.RoleClient
	for _, s := range segs {
		var d conn.Direction
		switch {
		case s.toServer && client, !s.toServer && !client:
			d = conn.Egress
		default:
			d = conn.Ingress
		}
		isn := isnToClient
		if s.toServer {
			isn = isnToServer
		}
		cs := conn.Segment{
			Dir: d, Offset: uint64(s.off), Data: s.data, Skip: uint64(s.skip),
			Start: chunkStart(s.k), End: chunkEnd(s.k), Seq: isn + uint32(s.off), TID: chunkTID(s.k),
		}
		p.Segment(&cs)
	}
	p.Close(closeTS)
	return got
}

func fmtX(x protocols.Exchange) string {
	return fmt.Sprintf("role=%v start=%d end=%d seq=%d tid=%d %s", x.Role, x.Start, x.End, x.RequestSeq, x.RequestTID, fmtPG(*x.Postgres))
}

func fmtPG(g protocols.PostgresInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q rows=%d", g.Operation, g.Query, g.Rows)
	if g.Failed {
		b.WriteString(" failed")
	}
	if g.SQLState != "" {
		b.WriteString(" sqlstate=" + g.SQLState)
	}
	if g.BatchSize != 0 {
		fmt.Fprintf(&b, " batch=%d", g.BatchSize)
	}
	if g.NoResponse {
		b.WriteString(" no-response")
	}
	fmt.Fprintf(&b, " db=%q user=%q app=%q", g.Database, g.User, g.Application)
	if g.RawQuery != g.Query {
		fmt.Fprintf(&b, " raw=%q", g.RawQuery)
	}
	return b.String()
}
