package selfmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Counter is one observable counter. It reports either Value, with no
// attributes, or Series, several values under one name told apart by
// their attributes (reason="idle", protocol="http"), never both.
type Counter struct {
	Name, Description string
	Unit              string // empty for none
	Value             *atomic.Uint64
	Series            []Series
}

// Series is one value of a Counter and the attributes that tell it apart
// from its siblings.
type Series struct {
	Value *atomic.Uint64
	Attrs attribute.Set
}

// By is the series of v labelled key=value.
func By(key, value string, v *atomic.Uint64) Series {
	return Series{Value: v, Attrs: attribute.NewSet(attribute.String(key, value))}
}

// Gauge is one observable gauge, read by Value at collection time.
type Gauge struct {
	Name, Description string
	Unit              string // empty for none
	Value             func() int64
}

// observation is one series ready to observe.
type observation struct {
	v    *atomic.Uint64
	opts []metric.ObserveOption
}

// RegisterCounters registers each counter on m as an Int64ObservableCounter
// whose callback loads its atomics when m's reader collects.
func RegisterCounters(m metric.Meter, cs ...Counter) error {
	for _, c := range cs {
		obs, err := c.observations()
		if err != nil {
			return fmt.Errorf("register %s: %w", c.Name, err)
		}
		_, err = m.Int64ObservableCounter(c.Name,
			metric.WithDescription(c.Description),
			metric.WithUnit(c.Unit),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for _, ob := range obs {
					o.Observe(int64(ob.v.Load()), ob.opts...)
				}
				return nil
			}))
		if err != nil {
			return fmt.Errorf("register %s: %w", c.Name, err)
		}
	}
	return nil
}

// RegisterGauges registers each gauge on m as an Int64ObservableGauge read
// when m's reader collects.
func RegisterGauges(m metric.Meter, gs ...Gauge) error {
	for _, g := range gs {
		if g.Value == nil {
			return fmt.Errorf("register %s: no value", g.Name)
		}
		value := g.Value
		_, err := m.Int64ObservableGauge(g.Name,
			metric.WithDescription(g.Description),
			metric.WithUnit(g.Unit),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(value())
				return nil
			}))
		if err != nil {
			return fmt.Errorf("register %s: %w", g.Name, err)
		}
	}
	return nil
}

func (c Counter) observations() ([]observation, error) {
	switch {
	case c.Value != nil && len(c.Series) > 0:
		return nil, errors.New("both Value and Series set")
	case c.Value != nil:
		return []observation{{v: c.Value}}, nil
	case len(c.Series) == 0:
		return nil, errors.New("no value")
	}
	obs := make([]observation, len(c.Series))
	for i, s := range c.Series {
		if s.Value == nil {
			return nil, fmt.Errorf("series %d has no value", i)
		}
		obs[i].v = s.Value
		if s.Attrs.Len() > 0 {
			obs[i].opts = []metric.ObserveOption{metric.WithAttributeSet(s.Attrs)}
		}
	}
	return obs, nil
}
