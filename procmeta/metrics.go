package procmeta

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// resultKey labels an outcome. Semconv has no key for a cache's result;
// this one is weft's own and only ever labels weft's own metrics.
const resultKey = attribute.Key("result")

// RegisterMetrics publishes the cache's counters on m, read when m's
// reader collects:
//
//	weft_procmeta_lookups{result=hit|miss|fallback}
//	weft_procmeta_reads{result=found|not_found}
//	weft_procmeta_evictions
//	weft_procmeta_expired
//	weft_procmeta_enrich_refreshes
//	weft_procmeta_processes (gauge)
func (c *Cache) RegisterMetrics(m metric.Meter) error {
	result := func(value string, v *atomic.Uint64) selfmetrics.Series {
		return selfmetrics.By(string(resultKey), value, v)
	}
	err := selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_procmeta_lookups", Description: "Process lookups by outcome: cached, read from /proc, or built from the kernel comm.", Unit: "{lookup}", Series: []selfmetrics.Series{
			result("hit", &c.hits),
			result("miss", &c.misses),
			result("fallback", &c.fallbacks),
		}},
		selfmetrics.Counter{Name: "weft_procmeta_reads", Description: "Reads of /proc for a process, by whether the process was there.", Unit: "{read}", Series: []selfmetrics.Series{
			result("found", &c.readsFound),
			result("not_found", &c.readsNotFound),
		}},
		selfmetrics.Counter{Name: "weft_procmeta_evictions", Description: "Processes dropped from the cache to stay within its size bound.", Unit: "{process}", Value: &c.evictions},
		selfmetrics.Counter{Name: "weft_procmeta_enrich_refreshes", Description: "Container and pod metadata asked for again for a process whose first answer was incomplete.", Unit: "{lookup}", Value: &c.refreshes},
		selfmetrics.Counter{Name: "weft_procmeta_expired", Description: "Exited processes removed from the cache after their grace period.", Unit: "{process}", Value: &c.expired},
	)
	if err != nil {
		return err
	}
	return selfmetrics.RegisterGauges(m, selfmetrics.Gauge{Name: "weft_procmeta_processes", Description: "Processes in the cache, exiting ones included.", Unit: "{process}",
		Value: func() int64 { return int64(c.Len()) }})
}
