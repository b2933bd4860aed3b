package procmeta

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the cache and says where /proc is. A zero field takes its
// default, so Config{} is usable as is.
type Config struct {
	// ProcRoot is the procfs mount to read; tests point it at a fake tree.
	ProcRoot string
	// ExitGrace is how long a process stays cached after Forget: spans of
	// its last exchanges are still being built when the exit event arrives.
	ExitGrace time.Duration
	// MaxProcesses bounds the cache when exit events are lost; one more
	// evicts a least recently used entry.
	MaxProcesses int
	// HostName is the host.name resource attribute; empty means
	// os.Hostname(), read once by NewCache.
	HostName string
	// Now is the clock Forget stamps exits with (time.Now when nil), the
	// same clock whose readings Sweep is given.
	Now func() time.Time
	// Enricher, when set, adds the process's container and pod to its
	// identity (k8smeta.Resolver); nil leaves processes as /proc says.
	Enricher Enricher
	// EnrichRetry is how often an Enricher answer that is not final is
	// asked for again (on a Lookup of the process), and EnrichFor for how
	// long after the process was first seen.
	EnrichRetry, EnrichFor time.Duration
}

// Defaults of Config.
const (
	DefaultProcRoot     = "/proc"
	DefaultExitGrace    = 30 * time.Second
	DefaultMaxProcesses = 16384
	DefaultEnrichRetry  = time.Second
	DefaultEnrichFor    = 2 * time.Minute
)

// Validate reports fields that are negative: zero means "default", but a
// negative bound is a mistake worth stopping start-up for.
func (c Config) Validate() error {
	var errs []error
	if c.ExitGrace < 0 {
		errs = append(errs, fmt.Errorf("procmeta config: ExitGrace is negative (%s)", c.ExitGrace))
	}
	if c.MaxProcesses < 0 {
		errs = append(errs, fmt.Errorf("procmeta config: MaxProcesses is negative (%d)", c.MaxProcesses))
	}
	if c.EnrichRetry < 0 || c.EnrichFor < 0 {
		errs = append(errs, fmt.Errorf("procmeta config: EnrichRetry (%s) or EnrichFor (%s) is negative", c.EnrichRetry, c.EnrichFor))
	}
	return errors.Join(errs...)
}

// withDefaults replaces unset and non-positive fields with their defaults,
// so the cache never runs unbounded or with a grace of zero.
func (c Config) withDefaults() Config {
	if c.ProcRoot == "" {
		c.ProcRoot = DefaultProcRoot
	}
	if c.ExitGrace <= 0 {
		c.ExitGrace = DefaultExitGrace
	}
	if c.MaxProcesses <= 0 {
		c.MaxProcesses = DefaultMaxProcesses
	}
	if c.EnrichRetry <= 0 {
		c.EnrichRetry = DefaultEnrichRetry
	}
	if c.EnrichFor <= 0 {
		c.EnrichFor = DefaultEnrichFor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
