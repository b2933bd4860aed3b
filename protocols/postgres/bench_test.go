package postgres

import (
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// bconn drives one parser, as the server sees it, with whole writes.
type bconn struct {
	p   *Parser
	off [2]uint64
	t   int64
}

func newBConn(_ *testing.B) *bconn {
	c := &bconn{p: New(&conn.Info{Role: conn.RoleServer}, func(*protocols.Exchange) {}, Options{})}
	c.feed(conn.Ingress, startup("app", "shop"))
	c.feed(conn.Egress, authOK)
	return c
}

func (c *bconn) feed(d conn.Direction, data []byte) {
	c.t += 100
	s := conn.Segment{Dir: d, Offset: c.off[d], Data: data, Start: c.t, End: c.t + 50}
	c.off[d] += uint64(len(data))
	c.p.Segment(&s)
}

// BenchmarkExtended measures a connection in steady state executing a prepared
// statement: each iteration is one extended-protocol exchange, the client's
// Bind, Describe, Execute and Sync in one write, the server's BindComplete,
// RowDescription, DataRow, CommandComplete and ReadyForQuery in another:
// nine messages.
func BenchmarkExtended(b *testing.B) {
	c := newBConn(b)
	c.feed(conn.Ingress, join([][]byte{parse("get_item", "SELECT name, qty FROM items WHERE id = $1 AND region = 'eu'"), describe('S', "get_item"), syncMsg()}))
	c.feed(conn.Egress, join([][]byte{parseComplete(), noData(), rfq()}))
	req := join([][]byte{bind("", "get_item", "12345"), describe('P', ""), execute("", 0), syncMsg()})
	resp := join([][]byte{bindComplete(), rowDesc(), row("a row of about forty bytes of item data.."), cc("SELECT 1"), rfq()})
	const msgs = 9
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		c.feed(conn.Ingress, req)
		c.feed(conn.Egress, resp)
	}
	b.ReportMetric(float64(msgs*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPipelined is a batch of 20 executions of a prepared statement
// before one Sync, each answered by a row: 20 exchanges, 141 messages.
func BenchmarkPipelined(b *testing.B) {
	c := newBConn(b)
	c.feed(conn.Ingress, join([][]byte{parse("s", "UPDATE items SET qty = qty - $1 WHERE id = $2 RETURNING qty"), syncMsg()}))
	c.feed(conn.Egress, join([][]byte{parseComplete(), rfq()}))
	var req, resp [][]byte
	for range 20 {
		req = append(req, bind("", "s", "1", "42"), describe('P', ""), execute("", 0))
		resp = append(resp, bindComplete(), rowDesc(), row("7"), cc("UPDATE 1"))
	}
	rq, rs := join(append(req, syncMsg())), join(append(resp, rfq()))
	const msgs = 20*7 + 2
	b.SetBytes(int64(len(rq) + len(rs)))
	b.ReportAllocs()
	for b.Loop() {
		c.feed(conn.Ingress, rq)
		c.feed(conn.Egress, rs)
	}
	b.ReportMetric(float64(msgs*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSimple is a simple-protocol Query with literals (sanitised each
// time: the text differs per query in real traffic, as it does here) and
// its one-row answer: five messages.
func BenchmarkSimple(b *testing.B) {
	c := newBConn(b)
	qs := [][]byte{
		query("SELECT abalance FROM pgbench_accounts WHERE aid = 66118;"),
		query("SELECT abalance FROM pgbench_accounts WHERE aid = 88360;"),
	}
	resp := join([][]byte{rowDesc(), row("0"), cc("SELECT 1"), rfq()})
	const msgs = 5
	b.SetBytes(int64(len(qs[0]) + len(resp)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.feed(conn.Ingress, qs[i&1])
		c.feed(conn.Egress, resp)
		i++
	}
	b.ReportMetric(float64(msgs*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkFixtures replays every recorded connection, with a new parser
// per connection, as the reads delivered it.
func BenchmarkFixtures(b *testing.B) {
	var names []string
	for _, f := range fixtures {
		names = append(names, f.name)
	}
	recording.Benchmark(b, names, func(segs []recording.Seg) {
		feed(b, conn.RoleServer, segs, Options{})
	})
}
