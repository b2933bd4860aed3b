package http2

import (
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// run feeds segments to a parser for the given role and closes it. An
// unknown role is fed as the server side.
func run(t testing.TB, role conn.Role, segs []recording.Seg, opts Options) []protocols.Exchange {
	t.Helper()
	var got []protocols.Exchange
	p := collect(role, opts, &got)
	recording.Feed(role, segs, p.Segment)
	p.Close(recording.CloseTS)
	return got
}

// collect is a new parser for role that appends copies of the exchanges
// it emits to got.
func collect(role conn.Role, opts Options, got *[]protocols.Exchange) *Parser {
	return New(&conn.Info{Role: role}, func(x *protocols.Exchange) {
		c := *x
		h := *x.HTTP
		c.HTTP = &h
		*got = append(*got, c)
	}, opts)
}

// feed feeds one segment to a parser for the given role.
func feed(p *Parser, role conn.Role, s recording.Seg) {
	cs := s.Segment(role)
	p.Segment(&cs)
}
