package k8smeta

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// resultKey labels an outcome; weft's own, for weft's own metrics.
const resultKey = attribute.Key("result")

// RegisterMetrics publishes the resolver's counters, and those of its
// cgroup cache and Docker client, on m:
//
//	weft_k8smeta_lookups{result=none|container|pod}
//	weft_k8smeta_cgroup_lookups{result=hit|read}
//	weft_k8smeta_cgroup_evictions
//	weft_k8smeta_docker_lookups{result=hit|miss}
//	weft_k8smeta_docker_fetches{result=not_found|failed|all}
//	weft_k8smeta_docker_busy
//	weft_k8smeta_docker_evictions
//
// The Docker series are left out without a Docker client.
func (r *Resolver) RegisterMetrics(m metric.Meter) error {
	result := func(value string, v *atomic.Uint64) selfmetrics.Series {
		return selfmetrics.By(string(resultKey), value, v)
	}
	cs := []selfmetrics.Counter{
		{Name: "weft_k8smeta_lookups", Description: "Pid lookups by what was found: no container, a container outside any known pod, a pod.", Unit: "{lookup}", Series: []selfmetrics.Series{
			result("none", &r.none), result("container", &r.container), result("pod", &r.pod),
		}},
		{Name: "weft_k8smeta_cgroup_lookups", Description: "Pid cgroup lookups: cached, or read from /proc.", Unit: "{lookup}", Series: []selfmetrics.Series{
			result("hit", &r.cgroups.hits), result("read", &r.cgroups.reads),
		}},
		{Name: "weft_k8smeta_cgroup_evictions", Description: "Pids dropped from the cgroup cache to stay within its bound.", Unit: "{pid}", Value: &r.cgroups.evictions},
	}
	if d := r.docker; d != nil {
		cs = append(cs,
			selfmetrics.Counter{Name: "weft_k8smeta_docker_lookups", Description: "Docker container lookups: answered from the cache, or not (yet).", Unit: "{lookup}", Series: []selfmetrics.Series{
				result("hit", &d.hits), result("miss", &d.misses),
			}},
			selfmetrics.Counter{Name: "weft_k8smeta_docker_fetches", Description: "Docker inspect requests: all of them, those for containers the daemon did not know, those that failed.", Unit: "{request}", Series: []selfmetrics.Series{
				result("all", &d.fetches), result("not_found", &d.notFound), result("failed", &d.failed),
			}},
			selfmetrics.Counter{Name: "weft_k8smeta_docker_busy", Description: "Docker lookups that started no fetch because the most allowed were in flight.", Unit: "{lookup}", Value: &d.busy},
			selfmetrics.Counter{Name: "weft_k8smeta_docker_evictions", Description: "Containers dropped from the Docker cache to stay within its bound.", Unit: "{container}", Value: &d.evictions},
		)
	}
	return selfmetrics.RegisterCounters(m, cs...)
}
