package postgres

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// harness feeds hand-written segments: each call is one syscall at time
// 100*n (Start) to 100*n+50 (End) on thread n.
type harness struct {
	t     *testing.T
	p     *Parser
	info  *conn.Info
	stats *Stats
	n     int64
	off   [2]uint64
	isn   [2]uint32
	got   []protocols.Exchange
	// req and resp send toward the server and toward the client, as
	// the traced process's direction for its role.
	reqDir conn.Direction
}

func newHarness(t *testing.T, role conn.Role, opts Options) *harness {
	h := &harness{t: t, info: &conn.Info{Role: role}, stats: new(Stats), isn: [2]uint32{0xFFFF_FFF0, 7000}}
	opts.Stats = h.stats
	h.p = New(h.info, func(x *protocols.Exchange) {
		c := *x
		pg := *x.Postgres
		c.Postgres = &pg
		h.got = append(h.got, c)
	}, opts)
	if role == conn.RoleServer {
		h.reqDir = conn.Ingress
	}
	return h
}

func (h *harness) seg(d conn.Direction, data []byte, skip uint64) *conn.Segment {
	h.n++
	s := &conn.Segment{
		Dir: d, Offset: h.off[d], Skip: skip,
		Start: 100 * h.n, End: 100*h.n + 50,
		Seq: h.isn[d] + uint32(h.off[d]), TID: uint32(h.n),
	}
	if skip == 0 {
		s.Data = data
	}
	h.off[d] += s.Len()
	h.p.Segment(s)
	return s
}

// req sends client messages in one write (one read on the server).
func (h *harness) req(msgs ...[]byte) *conn.Segment { return h.seg(h.reqDir, join(msgs), 0) }

// resp sends server messages in one segment.
func (h *harness) resp(msgs ...[]byte) *conn.Segment {
	return h.seg(h.reqDir.Opposite(), join(msgs), 0)
}

func (h *harness) skip(toServer bool, n uint64) {
	d := h.reqDir
	if !toServer {
		d = d.Opposite()
	}
	h.seg(d, nil, n)
}

func join(msgs [][]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m...)
	}
	return b
}

// enc encodes pgproto3 messages.
func enc(msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			panic(err)
		}
	}
	return b
}

// startup is a startup packet for user and database.
func startup(user, db string) []byte {
	params := map[string]string{"user": user}
	if db != "" {
		params["database"] = db
	}
	return enc(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
}

// authOK is the server's answer to a trusted startup.
var authOK = enc(&pgproto3.AuthenticationOk{}, &pgproto3.ParameterStatus{Name: "server_version", Value: "15.18"},
	&pgproto3.BackendKeyData{ProcessID: 7, SecretKey: []byte{1, 2, 3, 4}}, &pgproto3.ReadyForQuery{TxStatus: 'I'})

func query(q string) []byte { return enc(&pgproto3.Query{String: q}) }
func rfq() []byte           { return enc(&pgproto3.ReadyForQuery{TxStatus: 'I'}) }
func cc(tag string) []byte  { return enc(&pgproto3.CommandComplete{CommandTag: []byte(tag)}) }
func rowDesc() []byte {
	return enc(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("x"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}})
}
func row(v string) []byte { return enc(&pgproto3.DataRow{Values: [][]byte{[]byte(v)}}) }
func errResp(code string) []byte {
	return enc(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: "boom: secret 'x'"})
}
func notice(sev, code string) []byte {
	return enc(&pgproto3.NoticeResponse{Severity: sev, SeverityUnlocalized: sev, Code: code, Message: "note"})
}
func parse(name, q string) []byte { return enc(&pgproto3.Parse{Name: name, Query: q}) }
func bind(portal, name string, params ...string) []byte {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: name}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return enc(b)
}
func describe(kind byte, name string) []byte {
	return enc(&pgproto3.Describe{ObjectType: kind, Name: name})
}
func execute(portal string, maxRows uint32) []byte {
	return enc(&pgproto3.Execute{Portal: portal, MaxRows: maxRows})
}
func syncMsg() []byte       { return enc(&pgproto3.Sync{}) }
func parseComplete() []byte { return enc(&pgproto3.ParseComplete{}) }
func bindComplete() []byte  { return enc(&pgproto3.BindComplete{}) }
func noData() []byte        { return enc(&pgproto3.NoData{}) }

// sslRequest is the 8-byte SSLRequest (or GSSENCRequest, CancelRequest
// with a longer body).
func untyped(code uint32, extra int) []byte {
	b := make([]byte, 8+extra)
	binary.BigEndian.PutUint32(b, uint32(8+extra))
	binary.BigEndian.PutUint32(b[4:], code)
	return b
}

// connect runs a trusted startup for user on db.
func (h *harness) connect() {
	h.req(startup("alice", "shop"))
	h.resp(authOK)
}

func (h *harness) stat(name string, got, want uint64) {
	h.t.Helper()
	if got != want {
		h.t.Errorf("%s = %d, want %d", name, got, want)
	}
}

// summary is the part of the exchanges most tests check.
func summary(xs []protocols.Exchange) string {
	var b strings.Builder
	for _, x := range xs {
		g := x.Postgres
		b.WriteString(g.Operation + " " + g.Query + " rows=" + itoa(g.Rows))
		if g.SQLState != "" {
			b.WriteString(" " + g.SQLState)
		}
		if g.Failed {
			b.WriteString(" failed")
		}
		if g.NoResponse {
			b.WriteString(" no-response")
		}
		b.WriteString("; ")
	}
	return b.String()
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func (h *harness) want(s string) {
	h.t.Helper()
	if got := summary(h.got); got != s {
		h.t.Errorf("exchanges:\n got  %q\n want %q", got, s)
	}
}
