package dns

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultQuickClose      = 500 * time.Millisecond
	DefaultMaxPending      = 256
	DefaultMaxMessageBytes = 4096
)

// Options bound what one connection's parser may hold and how long it waits.
type Options struct {
	// Timeout is how long a query waits for its response before it is
	// emitted as timed out. Expiry is checked on every later segment of the
	// connection, by the segment's time, on Close, and on Parser.Expire.
	Timeout time.Duration
	// QuickClose: a query a client sent whose socket then closed
	// unanswered sooner than this was not timed out but given up at once
	// (typically refused: nothing listens, the read fails with
	// ECONNREFUSED), and is reported as such. No resolver's own timeout is
	// this short (glibc's, Go's and dig's are a second or more).
	QuickClose time.Duration
	// MaxPending bounds the queries waiting for a response on one socket
	// (a server socket holds one per client in flight); beyond it the
	// oldest is dropped and counted.
	MaxPending int
	// MaxMessageBytes bounds how much of one TCP message is held when it
	// spans segments; the rest is stepped over by its length and the
	// message decoded as far as it was kept.
	MaxMessageBytes int
	// Stats, shared by all parsers, counts what they did; nil gives each
	// parser a private one.
	Stats *Stats
}

// Validate reports options that cannot work; zero values mean defaults.
func (o Options) Validate() error {
	var errs []error
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", o.Timeout))
	}
	if o.QuickClose < 0 {
		errs = append(errs, fmt.Errorf("quick close %v is negative", o.QuickClose))
	}
	if o.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("max pending %d is negative", o.MaxPending))
	}
	if o.MaxMessageBytes < 0 || o.MaxMessageBytes > 0 && o.MaxMessageBytes < headerLen {
		errs = append(errs, fmt.Errorf("max message bytes %d is below a DNS header (%d)", o.MaxMessageBytes, headerLen))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.QuickClose <= 0 {
		o.QuickClose = DefaultQuickClose
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxMessageBytes < headerLen {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	return o
}

// Stats counts, across connections, what parsers did, so an operator can
// tell lost capture and timeouts from traffic weft does not understand.
type Stats struct {
	Exchanges   atomic.Uint64 // exchanges emitted, answered or not
	TimedOut    atomic.Uint64 // queries emitted without a response after the timeout, or a close that came later than QuickClose
	NoResponse  atomic.Uint64 // client queries whose socket closed unanswered within QuickClose (given up at once, e.g. refused)
	Retransmits atomic.Uint64 // repeated queries folded into the waiting one
	Malformed   atomic.Uint64 // messages dropped as not DNS (or a query without a question)
	Orphans     atomic.Uint64 // responses with no waiting query to pair with
	Overflows   atomic.Uint64 // waiting queries dropped because MaxPending were waiting
	Desyncs     atomic.Uint64 // TCP messages, or a direction's framing, lost to uncaptured bytes
	Partial     atomic.Uint64 // responses decoded only in part (capture cut them short)
	Multicast   atomic.Uint64 // queries to a multicast group (mDNS, LLMNR), not followed
}

// RegisterMetrics exposes the counters as observable counters on m.
func (s *Stats) RegisterMetrics(m metric.Meter) error {
	return selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_dns_exchanges", Description: "DNS exchanges emitted, answered or not.", Value: &s.Exchanges},
		selfmetrics.Counter{Name: "weft_dns_timeouts", Description: "DNS queries emitted without a response (timeout, or the socket closed first, but not at once).", Value: &s.TimedOut},
		selfmetrics.Counter{Name: "weft_dns_no_responses", Description: "DNS client queries whose socket closed unanswered at once, well before any timeout (the client gave up, typically refused: nothing listening).", Value: &s.NoResponse},
		selfmetrics.Counter{Name: "weft_dns_retransmits", Description: "Repeated DNS queries folded into the query already waiting.", Value: &s.Retransmits},
		selfmetrics.Counter{Name: "weft_dns_malformed", Description: "Messages on DNS sockets dropped as not DNS.", Value: &s.Malformed},
		selfmetrics.Counter{Name: "weft_dns_orphan_responses", Description: "DNS responses dropped because no query was waiting for them.", Value: &s.Orphans},
		selfmetrics.Counter{Name: "weft_dns_pending_overflows", Description: "DNS queries dropped unanswered because too many were waiting on one socket.", Value: &s.Overflows},
		selfmetrics.Counter{Name: "weft_dns_desyncs", Description: "Times uncaptured bytes cost DNS over TCP a message or a direction's framing.", Value: &s.Desyncs},
		selfmetrics.Counter{Name: "weft_dns_partial_responses", Description: "DNS responses decoded only in part because the capture cut them short.", Value: &s.Partial},
		selfmetrics.Counter{Name: "weft_dns_multicast_queries", Description: "DNS queries to a multicast group (mDNS, LLMNR) not followed: any host may answer.", Value: &s.Multicast},
	)
}
