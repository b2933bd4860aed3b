package correlate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// Synthetic exchange sequences for the join stage: processes, connections
// between them, and the two ends' exchanges of each request.

func ms(x float64) int64 { return int64(x * float64(time.Millisecond)) }

// testWait is the join wait of these tests.
const testWait = 100 * time.Millisecond

func newJoinTest(t *testing.T) (*Correlator, *collector) {
	t.Helper()
	return newTest(t, Config{Join: JoinConfig{Wait: testWait}, HostID: "test-host"})
}

// tproc is a traced process; fakeProcs names its service after comm.
type tproc struct {
	pid  uint32
	comm string
}

// tconn is one TCP connection seen from both ends.
type tconn struct{ client, server *conn.Info }

var nextFD int32 = 10

// dial makes a connection from cli (at port cport) to srv listening at
// srvAddr.
func dial(cli tproc, cport uint16, srv tproc, srvAddr string) tconn {
	nextFD++
	s := netip.MustParseAddrPort(srvAddr)
	c := netip.AddrPortFrom(s.Addr(), cport)
	return tconn{
		client: &conn.Info{ID: conn.ID{PID: cli.pid, FD: nextFD, Gen: uint64(nextFD)}, Tuple: conn.Tuple{Local: c, Remote: s}, Role: conn.RoleClient, Comm: cli.comm},
		server: &conn.Info{ID: conn.ID{PID: srv.pid, FD: nextFD + 100, Gen: uint64(nextFD) + 100}, Tuple: conn.Tuple{Local: s, Remote: c}, Role: conn.RoleServer, Comm: srv.comm},
	}
}

// side is one end's view of a request: times (ms), threads and status
// (0: 200; negative: no response).
type side struct {
	start, end      float64
	reqTID, respTID uint32
	status          int
	traceParent     string
	traceState      string
}

// ex makes the exchange of one end of a request with path and seq.
func (tc tconn) ex(role conn.Role, seq uint32, path string, sd side) *protocols.Exchange {
	info := tc.client
	if role == conn.RoleServer {
		info = tc.server
	}
	status := sd.status
	switch {
	case status == 0:
		status = 200
	case status < 0:
		status = 0
	}
	return &protocols.Exchange{
		Conn:        info,
		Role:        role,
		Protocol:    protocols.HTTP1,
		Start:       ms(sd.start),
		End:         ms(sd.end),
		RequestSeq:  seq,
		RequestTID:  sd.reqTID,
		ResponseTID: sd.respTID,
		HTTP: &protocols.HTTP{Method: "GET", Path: path, Version: "1.1", Status: status,
			TraceParent: sd.traceParent, TraceState: sd.traceState},
	}
}

func (tc tconn) cli(seq uint32, path string, sd side) *protocols.Exchange {
	return tc.ex(conn.RoleClient, seq, path, sd)
}

func (tc tconn) srv(seq uint32, path string, sd side) *protocols.Exchange {
	return tc.ex(conn.RoleServer, seq, path, sd)
}

// addAll adds exchanges in order.
func addAll(c *Correlator, exs ...*protocols.Exchange) {
	for _, ex := range exs {
		c.Add(ex)
	}
}

// spanLabel names a span in a rendered tree: service, kind and name.
func spanLabel(s Span) string {
	svc := "?"
	if s.Process != nil {
		svc = s.Process.ServiceName
	}
	return fmt.Sprintf("%s %s %s", svc, s.Kind, s.Name)
}

// render draws spans as trees, one block per trace (ordered by the root's
// start), children indented under their parent by start. A root whose
// parent is not among the spans shows that parent's id (^id), and its trace
// id when it differs from the one derived locally ("trace=").
func render(spans []Span) string {
	byID := map[trace.SpanID]Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	kids := map[trace.SpanID][]Span{}
	var roots []Span
	for _, s := range spans {
		if p, ok := byID[s.ParentSpanID]; ok && s.ParentSpanID.IsValid() {
			if p.TraceID != s.TraceID {
				return fmt.Sprintf("span %s has parent %s in another trace (%s vs %s)", spanLabel(s), spanLabel(p), s.TraceID, p.TraceID)
			}
			kids[s.ParentSpanID] = append(kids[s.ParentSpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	order := func(a []Span) {
		slices.SortStableFunc(a, func(x, y Span) int {
			if c := x.Start.Compare(y.Start); c != 0 {
				return c
			}
			return strings.Compare(spanLabel(x), spanLabel(y))
		})
	}
	order(roots)
	var b strings.Builder
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(spanLabel(s))
		if depth == 0 && s.ParentSpanID.IsValid() {
			fmt.Fprintf(&b, " ^%s trace=%s", s.ParentSpanID, s.TraceID)
		}
		b.WriteByte('\n')
		k := kids[s.SpanID]
		order(k)
		for _, c := range k {
			walk(c, depth+1)
		}
	}
	for i, r := range roots {
		if i > 0 {
			b.WriteString("--\n")
		}
		walk(r, 0)
	}
	return b.String()
}

// wantTree fails unless the spans render as want (leading/trailing blank
// lines and a common tab indent in want are ignored).
func wantTree(t *testing.T, spans []Span, want string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(strings.TrimLeft(want, "\n"), "\n\t "), "\n") {
		lines = append(lines, strings.TrimPrefix(strings.TrimLeft(l, "\t"), "|"))
	}
	w := strings.Join(lines, "\n") + "\n"
	if got := render(spans); got != w {
		t.Errorf("trees:\n%s\nwant:\n%s", got, w)
	}
}

// find returns the one span with this label.
func find(t *testing.T, spans []Span, label string) Span {
	t.Helper()
	var found []Span
	for _, s := range spans {
		if spanLabel(s) == label {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans labelled %q among %d", len(found), label, len(spans))
	}
	return found[0]
}
