package dns

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultMaxPending      = 256
	DefaultMaxMessageBytes = 4096
)

// Options bound what one connection's parser may hold and how long it waits.
type Options struct {
	// Timeout is how long a query waits for its response before it is
	// emitted as timed out. Expiry is checked on every later segment of the
	// connection, by the segment's time, on Close, and on Parser.Expire.
	Timeout time.Duration
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
	TimedOut    atomic.Uint64 // queries emitted without a response
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
	for _, c := range []struct {
		name, desc string
		v          *atomic.Uint64
	}{
		{"weft_dns_exchanges", "DNS exchanges emitted, answered or not.", &s.Exchanges},
		{"weft_dns_timeouts", "DNS queries emitted without a response (timeout, or the socket closed first).", &s.TimedOut},
		{"weft_dns_retransmits", "Repeated DNS queries folded into the query already waiting.", &s.Retransmits},
		{"weft_dns_malformed", "Messages on DNS sockets dropped as not DNS.", &s.Malformed},
		{"weft_dns_orphan_responses", "DNS responses dropped because no query was waiting for them.", &s.Orphans},
		{"weft_dns_pending_overflows", "DNS queries dropped unanswered because too many were waiting on one socket.", &s.Overflows},
		{"weft_dns_desyncs", "Times uncaptured bytes cost DNS over TCP a message or a direction's framing.", &s.Desyncs},
		{"weft_dns_partial_responses", "DNS responses decoded only in part because the capture cut them short.", &s.Partial},
		{"weft_dns_multicast_queries", "DNS queries to a multicast group (mDNS, LLMNR) not followed: any host may answer.", &s.Multicast},
	} {
		v := c.v
		_, err := m.Int64ObservableCounter(c.name,
			metric.WithDescription(c.desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(int64(v.Load()))
				return nil
			}))
		if err != nil {
			return fmt.Errorf("register %s: %w", c.name, err)
		}
	}
	return nil
}
