package correlate

import (
	"strings"
	"sync/atomic"

	"github.com/weftrace/weft/protocols"
)

// DefaultMaxSpanNames is how many distinct span names a service may have
// before further new names are replaced by their protocol's generic name.
const DefaultMaxSpanNames = 1000

// maxNamedServices bounds the services whose span names are remembered;
// beyond, one service's set is forgotten (it starts over), so the memory
// held stays under maxNamedServices × the cap.
const maxNamedServices = 256

// Generic span names, semconv's fallbacks when nothing of low cardinality
// is known: the method for HTTP, db.system.name for a database,
// rpc.system.name for gRPC, and "DNS".
const (
	grpcSystemName = "grpc"
	dnsSystemName  = "DNS"
)

// nameCap keeps the number of distinct span names per service bounded:
// span names become backends' operation lists and metric labels, and a
// service answering on 100k distinct paths that the templating does not
// recognise as ids (a crawler, a scanner) would otherwise make 100k
// operations. The first max names of a service keep their name; later new
// ones get overflowName's, and are counted. Used from the goroutine that
// calls Add.
type nameCap struct {
	max      int // <= 0: no cap
	services map[string]map[string]struct{}
	capped   atomic.Uint64
}

func newNameCap(max int) *nameCap {
	return &nameCap{max: max, services: make(map[string]map[string]struct{})}
}

// name is the name a span of service made from ex may carry: name itself
// while the service has fewer than max distinct names or already has this
// one, else overflowName's.
func (n *nameCap) name(service, name string, ex *protocols.Exchange) string {
	if n.max <= 0 {
		return name
	}
	set, ok := n.services[service]
	if !ok {
		if len(n.services) >= maxNamedServices {
			for k := range n.services { // any one: it starts over
				delete(n.services, k)
				break
			}
		}
		set = make(map[string]struct{})
		n.services[service] = set
	}
	if _, ok := set[name]; ok {
		return name
	}
	if len(set) < n.max {
		set[name] = struct{}{}
		return name
	}
	fallback := overflowName(ex, name)
	if fallback != name {
		n.capped.Add(1)
	}
	return fallback
}

// overflowName is the generic name of an exchange's span, from a bounded
// set: the HTTP method part of an HTTP span's name (a known method or
// "HTTP", see httpSpan), "grpc", "DNS" or "postgresql".
func overflowName(ex *protocols.Exchange, name string) string {
	switch ex.Protocol {
	case protocols.HTTP1, protocols.HTTP2:
		if ex.HTTP != nil && ex.HTTP.GRPC {
			return grpcSystemName
		}
		method, _, _ := strings.Cut(name, " ")
		return method
	case protocols.DNS:
		return dnsSystemName
	case protocols.Postgres:
		return postgresSystemName
	}
	return name
}
