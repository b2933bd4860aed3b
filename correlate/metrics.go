package correlate

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

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

var (
	kindOptions = func() (o [3]metric.ObserveOption) {
		for i, k := range spanKinds {
			o[i] = metric.WithAttributeSet(attribute.NewSet(kindKey.String(k.String())))
		}
		return o
	}()
	resultJoined  = metric.WithAttributeSet(attribute.NewSet(resultKey.String("joined")))
	resultInvalid = metric.WithAttributeSet(attribute.NewSet(resultKey.String("invalid")))
)

// RegisterMetrics publishes the correlator's counters on m, read when m's
// reader collects:
//
//	weft_correlate_spans{kind=server|client|unspecified}
//	weft_correlate_traceparents{result=joined|invalid}
//	weft_correlate_unconverted_exchanges{protocol}
//
// and the join stage's and the service graph's (joinmetrics.go). Call it
// before the first Add.
func (c *Correlator) RegisterMetrics(m metric.Meter) error {
	if err := c.registerJoinMetrics(m); err != nil {
		return err
	}
	spans, err := m.Int64ObservableCounter("weft_correlate_spans",
		metric.WithDescription("Spans made from exchanges, by span kind."),
		metric.WithUnit("{span}"))
	if err != nil {
		return fmt.Errorf("register weft_correlate_spans: %w", err)
	}
	parents, err := m.Int64ObservableCounter("weft_correlate_traceparents",
		metric.WithDescription("Incoming traceparent headers on server spans: joined, or ignored as invalid."),
		metric.WithUnit("{header}"))
	if err != nil {
		return fmt.Errorf("register weft_correlate_traceparents: %w", err)
	}
	dropped, err := m.Int64ObservableCounter("weft_correlate_unconverted_exchanges",
		metric.WithDescription("Exchanges dropped because no converter handles their protocol."),
		metric.WithUnit("{exchange}"))
	if err != nil {
		return fmt.Errorf("register weft_correlate_unconverted_exchanges: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i := range c.spans {
			o.ObserveInt64(spans, int64(c.spans[i].Load()), kindOptions[i])
		}
		o.ObserveInt64(parents, int64(c.joined.Load()), resultJoined)
		o.ObserveInt64(parents, int64(c.badParent.Load()), resultInvalid)
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
	}, spans, parents, dropped)
	if err != nil {
		return fmt.Errorf("register correlate metrics callback: %w", err)
	}
	return nil
}
