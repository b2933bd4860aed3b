package correlate

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftrace/weft/internal/selfmetrics"
	"github.com/weftrace/weft/protocols"
)

// Keys of weft's own metrics. Semconv has none for a span's kind, a
// protocol weft could not convert, or a header's fate; these label only
// weft's metrics, never spans.
const (
	kindKey     = attribute.Key("kind")
	protocolKey = attribute.Key("protocol")
	resultKey   = attribute.Key("result")
)

// RegisterMetrics publishes the correlator's counters on m, read when m's
// reader collects:
//
//	weft_correlate_spans{kind=server|client|unspecified}
//	weft_correlate_traceparents{result=joined|invalid}
//	weft_correlate_unconverted_exchanges{protocol}
//	weft_correlate_capped_span_names
//
// and the join stage's and the service graph's (joinmetrics.go). Call it
// before the first Add.
func (c *Correlator) RegisterMetrics(m metric.Meter) error {
	if err := c.registerJoinMetrics(m); err != nil {
		return err
	}
	spans := make([]selfmetrics.Series, len(spanKinds))
	for i, k := range spanKinds {
		spans[i] = selfmetrics.By(string(kindKey), k.String(), &c.spans[i])
	}
	err := selfmetrics.RegisterCounters(m,
		selfmetrics.Counter{Name: "weft_correlate_spans", Description: "Spans made from exchanges, by span kind.", Unit: "{span}", Series: spans},
		selfmetrics.Counter{Name: "weft_correlate_traceparents", Description: "Incoming traceparent headers on server spans: joined, or ignored as invalid.", Unit: "{header}", Series: []selfmetrics.Series{
			selfmetrics.By(string(resultKey), "joined", &c.joined),
			selfmetrics.By(string(resultKey), "invalid", &c.badParent),
		}},
		selfmetrics.Counter{Name: "weft_correlate_capped_span_names", Description: "Spans given their protocol's generic name (the HTTP method, grpc, DNS, postgresql) because their service already had the most distinct span names allowed (--max-span-names).", Unit: "{span}", Value: &c.names.capped},
	)
	if err != nil {
		return err
	}
	dropped, err := m.Int64ObservableCounter("weft_correlate_unconverted_exchanges",
		metric.WithDescription("Exchanges dropped because no converter handles their protocol."),
		metric.WithUnit("{exchange}"))
	if err != nil {
		return fmt.Errorf("register weft_correlate_unconverted_exchanges: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		// Protocols without a name share "unknown": sum them into one series.
		byName := make(map[string]int64)
		for p := range c.unconverted {
			if n := c.unconverted[p].Load(); n > 0 {
				byName[protocols.Protocol(p).String()] += int64(n)
			}
		}
		for name, n := range byName {
			o.ObserveInt64(dropped, n, metric.WithAttributes(protocolKey.String(name)))
		}
		return nil
	}, dropped)
	if err != nil {
		return fmt.Errorf("register correlate metrics callback: %w", err)
	}
	return nil
}
