package detect

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/postgres"
)

func pgEnc(t *testing.T, msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestDetectPostgres: a connection seen from its startup packet, and one
// joined late whose first captured bytes are a query or an answer, go to
// the PostgreSQL parser, and its exchanges come out; other protocols'
// first bytes do not.
func TestDetectPostgres(t *testing.T) {
	startup := pgEnc(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "u", "database": "d"}})
	ready := pgEnc(t, &pgproto3.AuthenticationOk{}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	query := pgEnc(t, &pgproto3.Query{String: "SELECT 1"})
	answer := pgEnc(t, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	type seg struct {
		d    conn.Direction
		data []byte
	}
	for _, c := range []struct {
		name     string
		role     conn.Role
		segs     []seg
		db       string
		detected uint64
	}{
		{"from the startup packet", conn.RoleClient, []seg{{conn.Egress, startup}, {conn.Ingress, ready}, {conn.Egress, query}, {conn.Ingress, answer}}, "d", 1},
		{"from an SSLRequest answered N", conn.RoleServer, []seg{{conn.Ingress, []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f")}, {conn.Egress, []byte("N")},
			{conn.Ingress, startup}, {conn.Egress, ready}, {conn.Ingress, query}, {conn.Egress, answer}}, "d", 1},
		{"joined late, query first", conn.RoleUnknown, []seg{{conn.Ingress, query}, {conn.Egress, answer}}, "", 1},
		{"joined late, answer first", conn.RoleUnknown, []seg{{conn.Ingress, answer}, {conn.Egress, query}, {conn.Ingress, answer}}, "", 1},
		{"not postgres", conn.RoleClient, []seg{{conn.Egress, []byte("\x16\x03\x01\x00\x05hello")}, {conn.Egress, query}, {conn.Ingress, answer}}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{Stats: new(Stats), Postgres: postgres.Options{Stats: new(postgres.Stats)}}
			var got []protocols.PostgresInfo
			h := New(func(x *protocols.Exchange) {
				if x.Protocol != protocols.Postgres || x.Postgres == nil {
					t.Fatalf("exchange of protocol %v", x.Protocol)
				}
				got = append(got, *x.Postgres)
			}, opts)(&conn.Info{Role: c.role})
			var off [2]uint64
			for i, s := range c.segs {
				h.Segment(&conn.Segment{Dir: s.d, Offset: off[s.d], Data: s.data, Start: int64(100 * i), End: int64(100*i + 50)})
				off[s.d] += uint64(len(s.data))
			}
			h.Close(1 << 30)
			if n := opts.Stats.Detected[protocols.Postgres].Load(); n != c.detected {
				t.Fatalf("detected postgres %d times, want %d", n, c.detected)
			}
			if c.detected == 0 {
				if len(got) != 0 {
					t.Errorf("%d exchanges from a connection that is not postgres", len(got))
				}
				return
			}
			if len(got) != 1 || got[0].Operation != "SELECT" || got[0].Query != "SELECT ?" || got[0].Database != c.db {
				t.Errorf("exchanges %+v, want one SELECT ? on database %q", got, c.db)
			}
			if n := opts.Postgres.Stats.Exchanges.Load(); n != 1 {
				t.Errorf("postgres stats count %d exchanges, want 1: the options' stats must reach the parser", n)
			}
		})
	}
}
