package correlate

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/protocols"
)

// The service graph is counted the way Tempo's metrics-generator counts
// it, with its metric names, labels and default buckets, so dashboards made
// for Tempo (Grafana's service graph view) read weft's /metrics as they are:
//
//	traces_service_graph_request_total{client,server,connection_type}
//	traces_service_graph_request_failed_total{client,server,connection_type}
//	traces_service_graph_request_server_seconds{client,server,connection_type} (histogram)
//	traces_service_graph_request_client_seconds{client,server,connection_type} (histogram)
//
// An edge is one request: a client span and the server span at the other
// end of its connection, both on this host (connection_type ""), or
// "database" when the client span is a database call. Like Tempo's virtual
// nodes, a client span whose server was not seen counts towards the peer
// it names (service.peer.name from the listener table, the database
// namespace or system, else server.address; connection_type
// "virtual_node", or "database"; DNS queries are left out), and a root
// server span with no client counts from client "user". Edges are counted when their spans leave the
// join stage, once no partner can come any more.

// Tempo's names and buckets (seconds).
const (
	graphRequests  = "traces_service_graph_request"
	graphFailed    = "traces_service_graph_request_failed"
	graphServerDur = "traces_service_graph_request_server"
	graphClientDur = "traces_service_graph_request_client"

	connTypeNone     = ""
	connTypeDatabase = "database"
	connTypeVirtual  = "virtual_node"
	virtualUser      = "user"

	// maxEdges bounds the label sets: beyond, new edges are counted as
	// dropped instead (weft_correlate_service_graph_dropped_edges).
	maxEdges = 10000
)

var graphBuckets = []float64{0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8}

// Label keys, as Tempo spells them.
const (
	labelClient   = attribute.Key("client")
	labelServer   = attribute.Key("server")
	labelConnType = attribute.Key("connection_type")
)

// Edge is one request between two services as the service graph counts
// it: Tempo's client, server and connection_type labels. The service map
// (package servicemap) decides its edges with the same functions.
type Edge struct{ Client, Server, ConnectionType string }

// Connection types of an Edge, and the client of requests from outside.
const (
	ConnectionTypeDatabase    = connTypeDatabase
	ConnectionTypeVirtualNode = connTypeVirtual
	UserClient                = virtualUser
)

// serviceGraph records edges. Instruments are no-ops until
// RegisterMetrics; record runs on the join stage's goroutine.
type serviceGraph struct {
	requests, failed metric.Int64Counter
	serverDur        metric.Float64Histogram
	clientDur        metric.Float64Histogram
	edges            map[Edge]metric.MeasurementOption
	dropped          atomic.Uint64
}

func newServiceGraph() *serviceGraph {
	m := noop.NewMeterProvider().Meter("")
	g := &serviceGraph{edges: make(map[Edge]metric.MeasurementOption)}
	g.requests, _ = m.Int64Counter(graphRequests)
	g.failed, _ = m.Int64Counter(graphFailed)
	g.serverDur, _ = m.Float64Histogram(graphServerDur)
	g.clientDur, _ = m.Float64Histogram(graphClientDur)
	return g
}

// register replaces the no-op instruments with m's. Call it before the
// first exchange.
func (g *serviceGraph) register(m metric.Meter) error {
	var err error
	if g.requests, err = m.Int64Counter(graphRequests,
		metric.WithDescription("Requests between two services (Tempo service graph)."),
		metric.WithUnit("{request}")); err != nil {
		return fmt.Errorf("register %s: %w", graphRequests, err)
	}
	if g.failed, err = m.Int64Counter(graphFailed,
		metric.WithDescription("Failed requests between two services (Tempo service graph)."),
		metric.WithUnit("{request}")); err != nil {
		return fmt.Errorf("register %s: %w", graphFailed, err)
	}
	if g.serverDur, err = m.Float64Histogram(graphServerDur,
		metric.WithDescription("Duration of requests between two services, seen by the server (Tempo service graph)."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(graphBuckets...)); err != nil {
		return fmt.Errorf("register %s: %w", graphServerDur, err)
	}
	if g.clientDur, err = m.Float64Histogram(graphClientDur,
		metric.WithDescription("Duration of requests between two services, seen by the client (Tempo service graph)."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(graphBuckets...)); err != nil {
		return fmt.Errorf("register %s: %w", graphClientDur, err)
	}
	return nil
}

// record counts the edge n is the client or lone server end of; a paired
// server span is counted with its client.
func (g *serviceGraph) record(n *node) {
	switch {
	case n.partner != nil:
		if n.isClient() {
			g.add(PairEdge(&n.span, &n.partner.span), failed(n) || failed(n.partner), n, n.partner)
		}
	case n.isClient() && n.proto == protocols.DNS: // resolvers would be an edge from every service
	case n.isClient():
		if e, ok := loneEdge(&n.span, false); ok {
			g.add(e, failed(n), n, nil)
		}
	default:
		if e, ok := loneEdge(&n.span, n.parent == nil && !n.hasExt); ok {
			g.add(e, failed(n), nil, n)
		}
	}
}

func (g *serviceGraph) add(k Edge, fail bool, client, server *node) {
	if k.Client == "" || k.Server == "" {
		return
	}
	opt, ok := g.edges[k]
	if !ok {
		if len(g.edges) >= maxEdges {
			g.dropped.Add(1)
			return
		}
		opt = metric.WithAttributeSet(attribute.NewSet(
			labelClient.String(k.Client), labelServer.String(k.Server), labelConnType.String(k.ConnectionType)))
		g.edges[k] = opt
	}
	ctx := context.Background()
	g.requests.Add(ctx, 1, opt)
	if fail {
		g.failed.Add(ctx, 1, opt)
	}
	if client != nil {
		g.clientDur.Record(ctx, seconds(client), opt)
	}
	if server != nil {
		g.serverDur.Record(ctx, seconds(server), opt)
	}
}

func seconds(n *node) float64 { return float64(n.end-n.start) / 1e9 }

func failed(n *node) bool { return n.span.StatusCode == codes.Error }

// dbConnType is "database" for a database call's client span.
func dbConnType(s *Span) string {
	if attrValue(s, semconv.DBSystemNameKey) != "" {
		return connTypeDatabase
	}
	return connTypeNone
}

// PairEdge is the edge of a request whose client and server spans were
// both seen on this host.
func PairEdge(client, server *Span) Edge {
	return Edge{Client: serviceName(client), Server: serviceName(server), ConnectionType: dbConnType(client)}
}

// LoneEdge is the edge of a finished span whose other end was not seen:
// a client span's towards the peer it names, a root server span's (no
// parent of any kind) from UserClient. ok is false for any other span and
// when the span names no service. The service graph leaves out DNS client
// spans (resolvers would be an edge from every service); callers that
// want them skip those themselves.
func LoneEdge(s *Span) (e Edge, ok bool) { return loneEdge(s, !s.ParentSpanID.IsValid()) }

// loneEdge decides a lone span's edge; root says a server span has no
// parent, local or remote. A client span whose server end was not seen
// counts towards the database namespace (or system) it called, else its
// service.peer.name, else its server.address.
func loneEdge(s *Span, root bool) (Edge, bool) {
	var e Edge
	switch {
	case s.Kind == trace.SpanKindClient:
		e.Client = serviceName(s)
		if sys := attrValue(s, semconv.DBSystemNameKey); sys != "" {
			e.Server, e.ConnectionType = sys, connTypeDatabase
			if ns := attrValue(s, semconv.DBNamespaceKey); ns != "" {
				e.Server = ns
			}
			break
		}
		e.ConnectionType = connTypeVirtual
		for _, k := range []attribute.Key{semconv.ServicePeerNameKey, semconv.ServerAddressKey} {
			if e.Server = attrValue(s, k); e.Server != "" {
				break
			}
		}
	case s.Kind == trace.SpanKindServer && root:
		e = Edge{Client: virtualUser, Server: serviceName(s), ConnectionType: connTypeVirtual}
	}
	return e, e.Client != "" && e.Server != ""
}

func attrValue(s *Span, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.AsString()
		}
	}
	return ""
}
