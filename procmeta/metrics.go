package procmeta

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// resultKey labels an outcome. Semconv has no key for a cache's result;
// this one is weft's own and only ever labels weft's own metrics.
const resultKey = attribute.Key("result")

var (
	resultHit      = metric.WithAttributeSet(attribute.NewSet(resultKey.String("hit")))
	resultMiss     = metric.WithAttributeSet(attribute.NewSet(resultKey.String("miss")))
	resultFallback = metric.WithAttributeSet(attribute.NewSet(resultKey.String("fallback")))
	resultFound    = metric.WithAttributeSet(attribute.NewSet(resultKey.String("found")))
	resultNotFound = metric.WithAttributeSet(attribute.NewSet(resultKey.String("not_found")))
)

// RegisterMetrics publishes the cache's counters on m, read when m's
// reader collects:
//
//	weft_procmeta_lookups{result=hit|miss|fallback}
//	weft_procmeta_reads{result=found|not_found}
//	weft_procmeta_evictions
//	weft_procmeta_expired
//	weft_procmeta_processes (gauge)
func (c *Cache) RegisterMetrics(m metric.Meter) error {
	lookups, err := m.Int64ObservableCounter("weft_procmeta_lookups",
		metric.WithDescription("Process lookups by outcome: cached, read from /proc, or built from the kernel comm."),
		metric.WithUnit("{lookup}"))
	if err != nil {
		return fmt.Errorf("register weft_procmeta_lookups: %w", err)
	}
	reads, err := m.Int64ObservableCounter("weft_procmeta_reads",
		metric.WithDescription("Reads of /proc for a process, by whether the process was there."),
		metric.WithUnit("{read}"))
	if err != nil {
		return fmt.Errorf("register weft_procmeta_reads: %w", err)
	}
	evictions, err := m.Int64ObservableCounter("weft_procmeta_evictions",
		metric.WithDescription("Processes dropped from the cache to stay within its size bound."),
		metric.WithUnit("{process}"))
	if err != nil {
		return fmt.Errorf("register weft_procmeta_evictions: %w", err)
	}
	expired, err := m.Int64ObservableCounter("weft_procmeta_expired",
		metric.WithDescription("Exited processes removed from the cache after their grace period."),
		metric.WithUnit("{process}"))
	if err != nil {
		return fmt.Errorf("register weft_procmeta_expired: %w", err)
	}
	size, err := m.Int64ObservableGauge("weft_procmeta_processes",
		metric.WithDescription("Processes in the cache, exiting ones included."),
		metric.WithUnit("{process}"))
	if err != nil {
		return fmt.Errorf("register weft_procmeta_processes: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		o.ObserveInt64(lookups, int64(s.Hits), resultHit)
		o.ObserveInt64(lookups, int64(s.Misses), resultMiss)
		o.ObserveInt64(lookups, int64(s.Fallbacks), resultFallback)
		o.ObserveInt64(reads, int64(s.ReadsFound), resultFound)
		o.ObserveInt64(reads, int64(s.ReadsNotFound), resultNotFound)
		o.ObserveInt64(evictions, int64(s.Evictions))
		o.ObserveInt64(expired, int64(s.Expired))
		o.ObserveInt64(size, int64(s.Processes))
		return nil
	}, lookups, reads, evictions, expired, size)
	if err != nil {
		return fmt.Errorf("register procmeta metrics callback: %w", err)
	}
	return nil
}
