package servicemap

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the map. A zero field takes its default, so Config{} is
// usable as is.
type Config struct {
	// Window is how far back rates and latencies reach.
	Window time.Duration
	// Buckets is how many slices Window is kept in: the window slides by
	// Window/Buckets.
	Buckets int
	// MaxNodes and MaxEdges bound the graph; a span that would add a node
	// or edge beyond them is counted as dropped instead. Edges idle for a
	// whole window leave the graph, and nodes with them.
	MaxNodes int
	MaxEdges int
	// Clock is the time spans are counted at (their arrival); nil means
	// time.Now.
	Clock func() time.Time
}

// Defaults of Config.
const (
	DefaultWindow   = 60 * time.Second
	DefaultBuckets  = 10
	DefaultMaxNodes = 1000
	DefaultMaxEdges = 5000
)

// Validate rejects negative bounds and a window too short for its buckets.
func (c Config) Validate() error {
	var errs []error
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("service map window %v is negative", c.Window))
	}
	if c.Buckets < 0 {
		errs = append(errs, fmt.Errorf("service map buckets %d is negative", c.Buckets))
	}
	if c.MaxNodes < 0 {
		errs = append(errs, fmt.Errorf("service map max nodes %d is negative", c.MaxNodes))
	}
	if c.MaxEdges < 0 {
		errs = append(errs, fmt.Errorf("service map max edges %d is negative", c.MaxEdges))
	}
	if d := c.withDefaults(); len(errs) == 0 && d.Window/time.Duration(d.Buckets) < time.Millisecond {
		errs = append(errs, fmt.Errorf("service map window %v is too short for %d buckets", d.Window, d.Buckets))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.MaxNodes == 0 {
		c.MaxNodes = DefaultMaxNodes
	}
	if c.MaxEdges == 0 {
		c.MaxEdges = DefaultMaxEdges
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}
