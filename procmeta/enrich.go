package procmeta

import (
	"slices"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Enricher adds what is known about a process from outside it — its
// container and pod — to its identity. k8smeta.Resolver is one. Enrich
// must answer at once (map reads, at most one small /proc read per pid)
// and be safe for concurrent use.
type Enricher interface {
	// Enrich returns pid's resource attributes by semconv name (never
	// service.name), the service name they give ("" for none: the
	// process's own name is used), and whether the answer is final. An
	// answer that is not final (metadata still being fetched) is asked
	// for again, every Config.EnrichRetry for Config.EnrichFor.
	Enrich(pid uint32) (attrs []attribute.KeyValue, serviceName string, final bool)
	// Exec says pid exec'd (or was announced for the first time): what
	// was cached about it may be stale, since a container runtime moves
	// its process into the container's cgroup between two execs (runc
	// init, then the entrypoint).
	Exec(pid uint32)
	// Forget says pid exited.
	Forget(pid uint32)
}

// enrichment is one Enrich answer.
type enrichment struct {
	attrs       []attribute.KeyValue
	serviceName string
	final       bool
}

func (a enrichment) equal(b enrichment) bool {
	return a.serviceName == b.serviceName && slices.Equal(a.attrs, b.attrs)
}

// enrich asks the Enricher, if any, about pid; without one the answer is
// empty and final.
func (c *Cache) enrich(pid uint32) enrichment {
	if c.cfg.Enricher == nil {
		return enrichment{final: true}
	}
	attrs, svc, final := c.cfg.Enricher.Enrich(pid)
	return enrichment{attrs: attrs, serviceName: svc, final: final}
}

// refresh asks the Enricher again about an entry whose answer was not
// final, at most once per EnrichRetry, and replaces its Process when the
// answer changed. p is the entry's Process as the caller read it; the
// Process to use now is returned.
func (c *Cache) refresh(pid uint32, e *entry, p *Process) *Process {
	next := e.enrichAt.Load()
	if next == 0 {
		return p
	}
	now := c.cfg.Now().UnixNano()
	if now < next || !e.enrichAt.CompareAndSwap(next, now+int64(c.cfg.EnrichRetry)) {
		return p // not due, or another goroutine is refreshing it
	}
	enr := c.enrich(pid)
	c.refreshes.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[pid] != e {
		return p // replaced meanwhile
	}
	if enr.final || now-e.seenAt >= int64(c.cfg.EnrichFor) {
		e.enrichAt.Store(0)
	}
	if !enr.equal(e.enr) {
		e.enr = enr
		e.proc = newProcess(pid, e.comm, e.info, c.host, enr)
	}
	return e.proc
}

// addEnrichment appends the enricher's attributes to attrs, leaving out
// service.name and any key weft already set for the process itself.
func addEnrichment(attrs []attribute.KeyValue, enr enrichment) []attribute.KeyValue {
	for _, kv := range enr.attrs {
		if kv.Key == semconv.ServiceNameKey || indexKey(attrs, kv.Key) >= 0 {
			continue
		}
		attrs = append(attrs, kv)
	}
	return attrs
}
