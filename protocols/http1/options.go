package http1

import (
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxPending     = 64
)

// Options bound what one connection's parser may hold.
type Options struct {
	// MaxHeaderBytes bounds one message head (start line, headers and
	// trailers): the most a direction ever buffers.
	MaxHeaderBytes int
	// MaxPending bounds the requests waiting for their response, the depth
	// of pipelining followed before the oldest is dropped.
	MaxPending int
	// Stats, shared by all parsers, counts what they did; nil gives each
	// parser a private one.
	Stats *Stats
}

// Validate reports options that cannot work; zero values mean defaults.
func (o Options) Validate() error {
	var errs []error
	if o.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("max header bytes %d is negative", o.MaxHeaderBytes))
	}
	if o.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("max pending %d is negative", o.MaxPending))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	return o
}

// Stats counts, across connections, what parsers did with their bytes, so
// an operator can tell lost capture from traffic weft does not understand.
type Stats struct {
	Exchanges  atomic.Uint64 // exchanges emitted, answered or not
	Malformed  atomic.Uint64 // messages dropped as not HTTP/1 or over a limit
	Desyncs    atomic.Uint64 // times uncaptured bytes cost a direction its place
	Overflows  atomic.Uint64 // pending requests dropped because the queue was full
	Unanswered atomic.Uint64 // requests emitted with no response (status 0)
	Orphans    atomic.Uint64 // responses that had no request to pair with
}

// RegisterMetrics exposes the counters as observable counters on m.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	return selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_http1_exchanges", Description: "HTTP/1 exchanges emitted, answered or not.", Value: &s.Exchanges},
		selfmetrics.Counter{Name: "weft_http1_malformed", Description: "HTTP/1 messages dropped as malformed or over a size limit.", Value: &s.Malformed},
		selfmetrics.Counter{Name: "weft_http1_desyncs", Description: "Times uncaptured bytes inside an HTTP/1 head made a direction resynchronise.", Value: &s.Desyncs},
		selfmetrics.Counter{Name: "weft_http1_pending_overflows", Description: "Pipelined HTTP/1 requests dropped because the pending queue was full.", Value: &s.Overflows},
		selfmetrics.Counter{Name: "weft_http1_unanswered", Description: "HTTP/1 requests emitted without a response.", Value: &s.Unanswered},
		selfmetrics.Counter{Name: "weft_http1_orphan_responses", Description: "HTTP/1 responses seen with no request to pair with.", Value: &s.Orphans},
	)
}
