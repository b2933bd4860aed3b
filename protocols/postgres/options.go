package postgres

import (
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxQueryBytes     = 8 << 10
	DefaultMaxPending        = 1024
	DefaultMaxStatements     = 512
	DefaultMaxStatementBytes = 256 << 10
)

// Options bound what one connection's parser may hold.
type Options struct {
	// MaxQueryBytes bounds the statement text kept from one Query or
	// Parse message; longer text is cut (and the message body beyond is
	// stepped over, not buffered).
	MaxQueryBytes int
	// MaxPending bounds the operations waiting for the server's answer:
	// the depth of pipelining followed.
	MaxPending int
	// MaxStatements and MaxStatementBytes bound the prepared statements
	// remembered by name, by count and by total text; the oldest are
	// forgotten first.
	MaxStatements     int
	MaxStatementBytes int
	// Stats, shared by all parsers, counts what they did; nil gives each
	// parser a private one.
	Stats *Stats
}

// Validate reports options that cannot work; zero values mean defaults.
func (o Options) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max query bytes", o.MaxQueryBytes},
		{"max pending", o.MaxPending},
		{"max statements", o.MaxStatements},
		{"max statement bytes", o.MaxStatementBytes},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxQueryBytes <= 0 {
		o.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxStatements <= 0 {
		o.MaxStatements = DefaultMaxStatements
	}
	if o.MaxStatementBytes <= 0 {
		o.MaxStatementBytes = DefaultMaxStatementBytes
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	return o
}

// Stats counts, across connections, what parsers did with their bytes, so
// an operator can tell lost capture from traffic weft does not understand.
type Stats struct {
	Exchanges  atomic.Uint64 // exchanges emitted
	Malformed  atomic.Uint64 // messages that broke the framing or failed to decode
	Desyncs    atomic.Uint64 // times uncaptured bytes cost a direction its place
	Overflows  atomic.Uint64 // pending operations dropped because the queue was full
	Unanswered atomic.Uint64 // operations emitted without their answer (connection ended)
	Orphans    atomic.Uint64 // server messages with no operation to answer
	Unknown    atomic.Uint64 // operations emitted whose outcome was lost with uncaptured bytes
	Skipped    atomic.Uint64 // operations the server skipped after an earlier error (not emitted)
	Evicted    atomic.Uint64 // prepared statements forgotten to stay within bounds
	Unprepared atomic.Uint64 // executions of a statement whose text was never seen
	Encrypted  atomic.Uint64 // connections handed to TLS or GSSAPI encryption, no longer parsed
}

// RegisterMetrics exposes the counters as observable counters on m.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	return selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_postgres_exchanges", Description: "PostgreSQL operations emitted as exchanges.", Value: &s.Exchanges},
		selfmetrics.Counter{Name: "weft_postgres_malformed", Description: "PostgreSQL messages that broke the framing or did not decode.", Value: &s.Malformed},
		selfmetrics.Counter{Name: "weft_postgres_desyncs", Description: "Times uncaptured bytes made a PostgreSQL stream direction resynchronise.", Value: &s.Desyncs},
		selfmetrics.Counter{Name: "weft_postgres_pending_overflows", Description: "PostgreSQL operations dropped because the pending queue was full.", Value: &s.Overflows},
		selfmetrics.Counter{Name: "weft_postgres_unanswered", Description: "PostgreSQL operations emitted without an answer because the connection ended.", Value: &s.Unanswered},
		selfmetrics.Counter{Name: "weft_postgres_orphan_messages", Description: "PostgreSQL server messages seen with no operation to answer.", Value: &s.Orphans},
		selfmetrics.Counter{Name: "weft_postgres_unknown_outcomes", Description: "PostgreSQL operations emitted whose outcome was lost with uncaptured bytes.", Value: &s.Unknown},
		selfmetrics.Counter{Name: "weft_postgres_skipped_after_error", Description: "PostgreSQL operations the server skipped after an earlier error in their pipeline.", Value: &s.Skipped},
		selfmetrics.Counter{Name: "weft_postgres_statements_evicted", Description: "Prepared statements forgotten to keep a connection within its bounds.", Value: &s.Evicted},
		selfmetrics.Counter{Name: "weft_postgres_unprepared_executions", Description: "PostgreSQL executions of a prepared statement whose text weft never saw.", Value: &s.Unprepared},
		selfmetrics.Counter{Name: "weft_postgres_encrypted_connections", Description: "PostgreSQL connections that switched to TLS or GSSAPI and are no longer parsed.", Value: &s.Encrypted},
	)
}
