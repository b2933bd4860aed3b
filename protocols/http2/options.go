package http2

import (
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxHeaderBlockBytes = 16 << 10
	DefaultMaxTableSize        = 64 << 10
	DefaultMaxStreams          = 256
)

// Options bound what one connection's parser may hold.
type Options struct {
	// MaxHeaderBlockBytes bounds one compressed header block (HEADERS or
	// PUSH_PROMISE with its CONTINUATIONs) buffered while its frames
	// arrive; a larger block is not decoded and costs the direction its
	// HPACK table. It also bounds one decoded field.
	MaxHeaderBlockBytes int
	// MaxTableSize bounds the HPACK dynamic table kept per direction. Peers
	// that agree on a larger table leave weft unable to resolve the
	// entries it could not keep.
	MaxTableSize int
	// MaxStreams bounds the streams followed at once; beyond it the oldest
	// is dropped and counted.
	MaxStreams int
	// Stats, shared by all parsers, counts what they did; nil gives each
	// parser a private one.
	Stats *Stats
}

// Validate reports options that cannot work; zero values mean defaults.
func (o Options) Validate() error {
	var errs []error
	if o.MaxHeaderBlockBytes < 0 {
		errs = append(errs, fmt.Errorf("max header block bytes %d is negative", o.MaxHeaderBlockBytes))
	}
	if o.MaxTableSize < 0 || o.MaxTableSize > 1<<30 {
		errs = append(errs, fmt.Errorf("max table size %d is outside [0, 2^30]", o.MaxTableSize))
	}
	if o.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("max streams %d is negative", o.MaxStreams))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxHeaderBlockBytes <= 0 {
		o.MaxHeaderBlockBytes = DefaultMaxHeaderBlockBytes
	}
	if o.MaxTableSize <= 0 {
		o.MaxTableSize = DefaultMaxTableSize
	}
	o.MaxTableSize = min(o.MaxTableSize, 1<<30)
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	return o
}

// Stats counts, across connections, what parsers did with their bytes, so
// an operator can tell lost capture from traffic weft does not understand.
type Stats struct {
	Exchanges atomic.Uint64 // exchanges emitted, complete or not
	// Partial counts exchanges emitted with fields weft could not decode.
	Partial atomic.Uint64
	// Unanswered counts requests emitted without a response.
	Unanswered atomic.Uint64
	// HPACKDesyncs counts the times a direction's HPACK table became
	// unknown (a header block not captured whole, over the size limit, or
	// malformed; a capture that began mid-connection); HPACKResyncs the
	// times it was proven whole again.
	HPACKDesyncs atomic.Uint64
	HPACKResyncs atomic.Uint64
	// FramingLost counts the times uncaptured bytes or garbage hid a frame
	// boundary; FramingResyncs the times a direction found frames again.
	FramingLost    atomic.Uint64
	FramingResyncs atomic.Uint64
	// OversizedBlocks counts header blocks over MaxHeaderBlockBytes.
	OversizedBlocks atomic.Uint64
	// Malformed counts frames and header blocks that broke the protocol.
	Malformed atomic.Uint64
	// StreamsDropped counts streams dropped because MaxStreams were open.
	StreamsDropped atomic.Uint64
	// Orphans counts responses (or their ends) with no request to pair.
	Orphans atomic.Uint64
}

// RegisterMetrics exposes the counters as observable counters on m.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	return selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_http2_exchanges", Description: "HTTP/2 and gRPC exchanges emitted, complete or not.", Value: &s.Exchanges},
		selfmetrics.Counter{Name: "weft_http2_partial_exchanges", Description: "HTTP/2 exchanges emitted with header fields that could not be decoded.", Value: &s.Partial},
		selfmetrics.Counter{Name: "weft_http2_unanswered", Description: "HTTP/2 requests emitted without a response.", Value: &s.Unanswered},
		selfmetrics.Counter{Name: "weft_http2_hpack_desync", Description: "Times a direction's HPACK table became unknown (header block lost, oversized or malformed, or capture began mid-connection).", Value: &s.HPACKDesyncs},
		selfmetrics.Counter{Name: "weft_http2_hpack_resync", Description: "Times a direction's HPACK table was proven whole again.", Value: &s.HPACKResyncs},
		selfmetrics.Counter{Name: "weft_http2_framing_lost", Description: "Times uncaptured or malformed bytes hid an HTTP/2 frame boundary.", Value: &s.FramingLost},
		selfmetrics.Counter{Name: "weft_http2_framing_resync", Description: "Times a direction that lost its frame boundaries found frames again.", Value: &s.FramingResyncs},
		selfmetrics.Counter{Name: "weft_http2_oversized_header_blocks", Description: "HTTP/2 header blocks over the size limit, not decoded.", Value: &s.OversizedBlocks},
		selfmetrics.Counter{Name: "weft_http2_malformed", Description: "HTTP/2 frames and header blocks that broke the protocol.", Value: &s.Malformed},
		selfmetrics.Counter{Name: "weft_http2_streams_dropped", Description: "HTTP/2 streams dropped because too many were open on one connection.", Value: &s.StreamsDropped},
		selfmetrics.Counter{Name: "weft_http2_orphan_responses", Description: "HTTP/2 responses seen with no request to pair with.", Value: &s.Orphans},
	)
}
