package conn

import (
	"errors"
	"fmt"
	"time"
)

// TableConfig bounds what the connection table holds. A zero field takes
// its default (see DefaultTableConfig), so TableConfig{} is usable as is.
type TableConfig struct {
	// MaxConns is the most connections tracked at once; opening one more
	// evicts the least recently used. It bounds memory when close events
	// are lost.
	MaxConns int
	// IdleTimeout is how long a connection may see no event before
	// EvictIdle ends it. Long, because pooled connections sit idle for
	// minutes and a connection evicted too early comes back without its
	// tuple or role.
	IdleTimeout time.Duration
	// ReorderWindow is how long, in event time, data ahead of a gap waits
	// for the gap to be filled before the gap is given up as lost. Chunks
	// from different CPUs are reordered by microseconds; a gap still open
	// after this long was lost in the ring buffer.
	ReorderWindow time.Duration
	// MaxPendingBytes is the most captured bytes held out of order per
	// connection and direction.
	MaxPendingBytes int
	// MaxPendingChunks is the most chunks held out of order per connection
	// and direction (chunks with no captured bytes cost memory too).
	MaxPendingChunks int
	// MaxTotalPendingBytes is the most captured bytes held out of order
	// across the whole table.
	MaxTotalPendingBytes int
}

// Defaults of TableConfig.
const (
	DefaultMaxConns             = 1 << 16
	DefaultIdleTimeout          = 10 * time.Minute
	DefaultReorderWindow        = 100 * time.Millisecond
	DefaultMaxPendingBytes      = 64 << 10
	DefaultMaxPendingChunks     = 64
	DefaultMaxTotalPendingBytes = 32 << 20
)

// DefaultTableConfig returns the configuration NewTable uses for zero fields.
func DefaultTableConfig() TableConfig {
	return TableConfig{
		MaxConns:             DefaultMaxConns,
		IdleTimeout:          DefaultIdleTimeout,
		ReorderWindow:        DefaultReorderWindow,
		MaxPendingBytes:      DefaultMaxPendingBytes,
		MaxPendingChunks:     DefaultMaxPendingChunks,
		MaxTotalPendingBytes: DefaultMaxTotalPendingBytes,
	}
}

// Validate reports fields that are negative: zero means "default", but a
// negative bound is a mistake worth stopping start-up for.
func (c TableConfig) Validate() error {
	var errs []error
	check := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("conn table config: %s is negative (%d)", name, v))
		}
	}
	check("MaxConns", int64(c.MaxConns))
	check("IdleTimeout", int64(c.IdleTimeout))
	check("ReorderWindow", int64(c.ReorderWindow))
	check("MaxPendingBytes", int64(c.MaxPendingBytes))
	check("MaxPendingChunks", int64(c.MaxPendingChunks))
	check("MaxTotalPendingBytes", int64(c.MaxTotalPendingBytes))
	return errors.Join(errs...)
}

// withDefaults replaces every field that is not positive with its default,
// so the table never runs with a bound of zero.
func (c TableConfig) withDefaults() TableConfig {
	d := DefaultTableConfig()
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ReorderWindow <= 0 {
		c.ReorderWindow = d.ReorderWindow
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = d.MaxPendingBytes
	}
	if c.MaxPendingChunks <= 0 {
		c.MaxPendingChunks = d.MaxPendingChunks
	}
	if c.MaxTotalPendingBytes <= 0 {
		c.MaxTotalPendingBytes = d.MaxTotalPendingBytes
	}
	return c
}
