package servicemap

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
)

// RegisterMetrics publishes the map's bounds on m, read when m's reader
// collects:
//
//	weft_servicemap_spans_dropped{reason=edge_limit|node_limit}
//	weft_servicemap_nodes, weft_servicemap_edges (gauges)
func (m *Map) RegisterMetrics(mt metric.Meter) error {
	dropped := make([]selfmetrics.Series, numReasons)
	for i := range dropped {
		dropped[i] = selfmetrics.By("reason", reasonNames[i], &m.dropped[i])
	}
	if err := selfmetrics.RegisterCounters(mt, selfmetrics.Counter{
		Name:        "weft_servicemap_spans_dropped",
		Description: "Spans left off the service map because it had MaxEdges edges or MaxNodes nodes already, by reason.",
		Unit:        "{span}",
		Series:      dropped,
	}); err != nil {
		return err
	}
	return selfmetrics.RegisterGauges(mt,
		selfmetrics.Gauge{Name: "weft_servicemap_nodes", Description: "Nodes on the service map.", Unit: "{node}", Value: m.numNodes.Load},
		selfmetrics.Gauge{Name: "weft_servicemap_edges", Description: "Edges on the service map.", Unit: "{edge}", Value: m.numEdges.Load},
	)
}
