package correlate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// pgExchange is a PostgreSQL exchange seen from role, on a connection from
// 10.0.0.9:51234 to 10.0.0.5:5432.
func pgExchange(role conn.Role, g protocols.PostgresInfo) *protocols.Exchange {
	tuple := conn.Tuple{Local: netip.MustParseAddrPort("10.0.0.5:5432"), Remote: netip.MustParseAddrPort("10.0.0.9:51234")}
	if role == conn.RoleClient {
		tuple.Local, tuple.Remote = tuple.Remote, tuple.Local
	}
	return &protocols.Exchange{
		Conn:     &conn.Info{ID: conn.ID{PID: 42, FD: 7, Gen: 1}, Tuple: tuple, Role: role, Comm: "app"},
		Role:     role,
		Protocol: protocols.Postgres,
		Start:    1000, End: 5000,
		RequestSeq: 77, RequestTID: 42, ResponseTID: 42,
		Postgres: &g,
	}
}

func TestPostgresSpans(t *testing.T) {
	sel := protocols.PostgresInfo{Operation: "SELECT", Query: "SELECT * FROM t WHERE id = ?", RawQuery: "SELECT * FROM t WHERE id = 7",
		Database: "shop", User: "alice", Application: "api", Rows: 3}
	failed := protocols.PostgresInfo{Operation: "SELECT", Query: "SELECT ?/?", RawQuery: "SELECT 1/0", Database: "shop", SQLState: "22012", Rows: -1, Failed: true}
	tests := []struct {
		name    string
		cfg     Config
		ex      *protocols.Exchange
		kind    trace.SpanKind
		spanNm  string
		status  codes.Code
		want    []string
		without []string
	}{
		{
			name: "client select", ex: pgExchange(conn.RoleClient, sel),
			kind: trace.SpanKindClient, spanNm: "SELECT shop", status: codes.Unset,
			want: []string{
				"db.system.name=postgresql", "db.namespace=shop", "db.operation.name=SELECT",
				"db.query.text=SELECT * FROM t WHERE id = ?", "db.response.returned_rows=3",
				"server.address=10.0.0.5", "server.port=5432",
				"network.peer.address=10.0.0.5", "network.peer.port=5432",
			},
		},
		{
			name: "server select", ex: pgExchange(conn.RoleServer, sel),
			kind: trace.SpanKindServer, spanNm: "SELECT shop", status: codes.Unset,
			want: []string{
				"db.system.name=postgresql", "db.namespace=shop", "db.operation.name=SELECT",
				"db.query.text=SELECT * FROM t WHERE id = ?", "db.response.returned_rows=3",
				"server.address=10.0.0.5", "server.port=5432", "client.address=10.0.0.9", "client.port=51234",
				"network.peer.address=10.0.0.9", "network.peer.port=51234",
			},
		},
		{
			name: "literals kept when asked", cfg: Config{KeepQueryLiterals: true}, ex: pgExchange(conn.RoleClient, sel),
			kind: trace.SpanKindClient, spanNm: "SELECT shop", status: codes.Unset,
			want:    []string{"db.query.text=SELECT * FROM t WHERE id = 7"},
			without: []string{"db.query.text=SELECT * FROM t WHERE id = ?"},
		},
		{
			name: "error", ex: pgExchange(conn.RoleClient, failed),
			kind: trace.SpanKindClient, spanNm: "SELECT shop", status: codes.Error,
			want:    []string{"db.response.status_code=22012", "error.type=22012", "db.query.text=SELECT ?/?"},
			without: []string{"db.response.returned_rows=-1"},
		},
		{
			name: "error without a code", ex: pgExchange(conn.RoleServer, protocols.PostgresInfo{Operation: "INSERT", Failed: true, Rows: -1}),
			kind: trace.SpanKindServer, spanNm: "INSERT", status: codes.Error,
			want: []string{"error.type=_OTHER"},
		},
		{
			name: "warning is no error", ex: pgExchange(conn.RoleClient, protocols.PostgresInfo{Operation: "COMMIT", Query: "COMMIT", Database: "shop", SQLState: "25P01", Rows: -1}),
			kind: trace.SpanKindClient, spanNm: "COMMIT shop", status: codes.Unset,
			want: []string{"db.response.status_code=25P01"},
		},
		{
			name: "no response", ex: pgExchange(conn.RoleClient, protocols.PostgresInfo{Operation: "SELECT", Query: "SELECT pg_sleep(?)", Rows: -1, NoResponse: true}),
			kind: trace.SpanKindClient, spanNm: "SELECT", status: codes.Error,
			want: []string{"error.type=no_response"},
		},
		{
			name: "batch", ex: pgExchange(conn.RoleClient, protocols.PostgresInfo{Operation: "BATCH INSERT", Query: "INSERT ?; INSERT ?", Database: "d", Rows: -1, BatchSize: 2}),
			kind: trace.SpanKindClient, spanNm: "BATCH INSERT d", status: codes.Unset,
			want: []string{"db.operation.name=BATCH INSERT", "db.operation.batch.size=2"},
		},
		{
			name: "nothing known", ex: pgExchange(conn.RoleUnknown, protocols.PostgresInfo{Rows: -1}),
			kind: trace.SpanKindUnspecified, spanNm: "postgresql", status: codes.Unset,
			want:    []string{"db.system.name=postgresql", "network.peer.address=10.0.0.9"},
			without: []string{"server.address=10.0.0.5", "db.namespace=", "db.operation.name=", "db.query.text="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, col := newTest(t, tt.cfg)
			s := addOne(t, c, col, tt.ex)
			if s.Kind != tt.kind || s.Name != tt.spanNm || s.StatusCode != tt.status {
				t.Errorf("kind %v name %q status %v, want %v %q %v", s.Kind, s.Name, s.StatusCode, tt.kind, tt.spanNm, tt.status)
			}
			got := attrStrings(s.Attributes)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing %s in %v", w, got)
				}
			}
			for _, w := range tt.without {
				for _, g := range got {
					if strings.HasPrefix(g, w) {
						t.Errorf("unexpected %s in %v", g, got)
					}
				}
			}
			for _, g := range got {
				for _, secret := range []string{"alice", "api", "= 7"} {
					if strings.Contains(g, secret) && !tt.cfg.KeepQueryLiterals {
						t.Errorf("attribute %s carries %q, which no span may", g, secret)
					}
				}
			}
			if len(s.Attributes) > maxPostgresAttrs {
				t.Errorf("%d attributes, preallocated %d", len(s.Attributes), maxPostgresAttrs)
			}
			if s.Start != testClock(1000) || s.End != testClock(5000) || !s.SpanID.IsValid() || !s.TraceID.IsValid() {
				t.Errorf("times %v-%v ids %v %v", s.Start, s.End, s.TraceID, s.SpanID)
			}
		})
	}
	c, _ := newTest(t, Config{})
	c.Add(&protocols.Exchange{Protocol: protocols.Postgres})
	if n := c.Stats().Unconverted; n != 1 {
		t.Errorf("an exchange without its PostgresInfo: %d unconverted, want 1", n)
	}
}

func TestPostgresMaximalAttributes(t *testing.T) {
	c, col := newTest(t, Config{})
	s := addOne(t, c, col, pgExchange(conn.RoleServer, protocols.PostgresInfo{Operation: "BATCH", Query: "q", RawQuery: "q", Database: "d",
		SQLState: "22012", Rows: 5, Failed: true, BatchSize: 3}))
	if len(s.Attributes) != cap(s.Attributes) || len(s.Attributes) > maxPostgresAttrs {
		t.Errorf("%d attributes in a slice of capacity %d (max %d): %v", len(s.Attributes), cap(s.Attributes), maxPostgresAttrs, attrStrings(s.Attributes))
	}
}
