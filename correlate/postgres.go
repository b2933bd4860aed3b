package correlate

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/protocols"
)

// maxPostgresAttrs is the most attributes a PostgreSQL span gets, so the
// slice is allocated once at its final size.
const maxPostgresAttrs = 14

// postgresSystemName names a span whose operation and database are both
// unknown, as semconv's span-name rules fall back to db.system.name.
const postgresSystemName = "postgresql"

// postgresSpan fills s from a PostgreSQL exchange by the semconv database
// conventions: CLIENT for the application, SERVER for the backend process;
// named "{db.operation.name} {db.namespace}"; Error when the server
// answered ErrorResponse (error.type and db.response.status_code are the
// SQLSTATE) or never answered. db.query.text has its literals replaced by
// ? unless Config.KeepQueryLiterals is set. No row data and no bind
// parameter ever reaches a span: the parser never keeps them.
func (c *Correlator) postgresSpan(ex *protocols.Exchange, s *Span) {
	g := ex.Postgres
	s.Kind = spanKind(ex.Role)
	s.Name = postgresSpanName(g.Operation, g.Database)
	attrs := make([]attribute.KeyValue, 0, maxPostgresAttrs)
	attrs = append(attrs, semconv.DBSystemNamePostgreSQL)
	if g.Database != "" {
		attrs = append(attrs, semconv.DBNamespace(g.Database))
	}
	if g.Operation != "" {
		attrs = append(attrs, semconv.DBOperationName(g.Operation))
	}
	text := g.Query
	if c.keepLiterals {
		text = g.RawQuery
	}
	if text != "" {
		attrs = append(attrs, semconv.DBQueryText(text))
	}
	if g.BatchSize > 1 {
		attrs = append(attrs, semconv.DBOperationBatchSize(g.BatchSize))
	}
	if g.SQLState != "" {
		// An error's code, or a warning's: semconv wants both.
		attrs = append(attrs, semconv.DBResponseStatusCode(g.SQLState))
	}
	if g.Rows >= 0 {
		attrs = append(attrs, semconv.DBResponseReturnedRows(int(g.Rows)))
	}
	if ex.Conn != nil {
		t := ex.Conn.Tuple
		peer := addrString(t.Remote.Addr())
		switch s.Kind {
		case trace.SpanKindClient:
			attrs = appendAddrPort(attrs, semconv.ServerAddressKey, semconv.ServerPortKey, peer, t.Remote.Port())
		case trace.SpanKindServer:
			attrs = appendAddrPort(attrs, semconv.ServerAddressKey, semconv.ServerPortKey, addrString(t.Local.Addr()), t.Local.Port())
			attrs = appendAddrPort(attrs, semconv.ClientAddressKey, semconv.ClientPortKey, peer, t.Remote.Port())
		}
		attrs = appendAddrPort(attrs, semconv.NetworkPeerAddressKey, semconv.NetworkPeerPortKey, peer, t.Remote.Port())
	}
	switch {
	case g.Failed && g.SQLState != "":
		s.StatusCode = codes.Error
		attrs = append(attrs, semconv.ErrorTypeKey.String(g.SQLState))
	case g.Failed:
		s.StatusCode = codes.Error
		attrs = append(attrs, semconv.ErrorTypeOther)
	case g.NoResponse:
		s.StatusCode = codes.Error
		attrs = append(attrs, semconv.ErrorTypeKey.String(ErrorTypeNoResponse))
	}
	s.Attributes = attrs
}

// postgresSpanName is "{operation} {database}", or whichever of the two
// is known, or "postgresql".
func postgresSpanName(op, db string) string {
	switch {
	case op != "" && db != "":
		return op + " " + db
	case op != "":
		return op
	case db != "":
		return db
	}
	return postgresSystemName
}
