package correlate

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Keys of the join stage's own metrics (weft's, not semconv's).
const (
	whenKey = attribute.Key("when")
	ruleKey = attribute.Key("rule")
)

var (
	whenInTime = metric.WithAttributeSet(attribute.NewSet(whenKey.String("in_time")))
	whenLate   = metric.WithAttributeSet(attribute.NewSet(whenKey.String("late")))
	ruleThread = metric.WithAttributeSet(attribute.NewSet(ruleKey.String("thread")))
	ruleSingle = metric.WithAttributeSet(attribute.NewSet(ruleKey.String("single_in_flight")))
	ruleCause  = metric.WithAttributeSet(attribute.NewSet(ruleKey.String("cause")))
	reasonKey  = attribute.Key("reason")
)

// JoinStats is a snapshot of what the join stage did.
type JoinStats struct {
	// Pairs are client and server spans matched as the two ends of one
	// request; LatePairs those matched after one end's tree was emitted
	// (a late server span still joins its client's trace, a late client
	// span cannot adopt its server span any more).
	Pairs, LatePairs uint64
	// NestedByThread and NestedBySingle count client spans made a child of
	// a server span of their process, by rule; Unattributed counts those
	// made while serving that stayed roots because no rule decided.
	NestedByThread, NestedBySingle, Unattributed uint64
	// NestedByCause counts client spans nested by the kernel's cause
	// (cause.go); CauseUndecided those whose cause the rule did not trust,
	// by reason (causeOutcome strings).
	NestedByCause uint64
	// StreamCauses counts grpc-go client stream causes the kernel sent;
	// StreamCausesDropped those forgotten (bounded) before their exchange.
	StreamCauses, StreamCausesDropped uint64
	CauseUndecided                    map[string]uint64
	// Evicted counts spans settled before their wait ended because the
	// buffer was full; Held is the number of spans in it now.
	Evicted uint64
	Held    int64
	// DroppedEdges counts service graph requests not recorded because
	// the graph had as many edges as it may.
	DroppedEdges uint64
}

// JoinStats returns a snapshot of the join stage's counters; safe from any
// goroutine.
func (c *Correlator) JoinStats() JoinStats {
	s := &c.joinStats
	return JoinStats{
		Pairs:               s.pairs.Load(),
		LatePairs:           s.latePairs.Load(),
		NestedByThread:      s.byThread.Load(),
		NestedBySingle:      s.bySingle.Load(),
		NestedByCause:       s.byCause[causeNested].Load(),
		CauseUndecided:      causeUndecided(s),
		StreamCauses:        s.streamCauses.Load(),
		StreamCausesDropped: s.streamCausesDropped.Load(),
		Unattributed:        s.unattributed.Load(),
		Evicted:             s.evicted.Load(),
		Held:                s.held.Load(),
		DroppedEdges:        c.graph.dropped.Load(),
	}
}

func causeUndecided(s *joinStats) map[string]uint64 {
	m := make(map[string]uint64, numCauseOutcomes-1)
	for o := causeNested + 1; o < numCauseOutcomes; o++ {
		m[o.String()] = s.byCause[o].Load()
	}
	return m
}

// registerJoinMetrics publishes the join stage's counters and the service
// graph on m:
//
//	weft_correlate_pairs{when=in_time|late}
//	weft_correlate_nested_client_spans{rule=cause|thread|single_in_flight}
//	weft_correlate_cause_undecided_client_spans{reason=...}
//	weft_correlate_unattributed_client_spans
//	weft_correlate_join_evicted_spans
//	weft_correlate_join_held_spans (gauge)
//	weft_correlate_service_graph_dropped_edges
//	traces_service_graph_* (servicegraph.go)
func (c *Correlator) registerJoinMetrics(m metric.Meter) error {
	if err := c.graph.register(m); err != nil {
		return err
	}
	counter := func(name, desc, unit string) (metric.Int64ObservableCounter, error) {
		in, err := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		return in, nil
	}
	pairs, err := counter("weft_correlate_pairs",
		"Client and server spans matched as the two ends of one request, in time or after one end was emitted.", "{pair}")
	if err != nil {
		return err
	}
	nested, err := counter("weft_correlate_nested_client_spans",
		"Client spans made a child of the server span of their process they were made for, by rule.", "{span}")
	if err != nil {
		return err
	}
	unattributed, err := counter("weft_correlate_unattributed_client_spans",
		"Client spans made while their process served several requests, left roots because no rule decided which.", "{span}")
	if err != nil {
		return err
	}
	undecided, err := counter("weft_correlate_cause_undecided_client_spans",
		"Client spans whose kernel cause did not decide their parent, by reason (then the thread and single-request rules are tried).", "{span}")
	if err != nil {
		return err
	}
	streamCauses, err := counter("weft_correlate_stream_causes",
		"HTTP/2 client stream causes from grpc-go's write hook (result=observed), and those forgotten before their exchange arrived (result=dropped).", "{stream}")
	if err != nil {
		return err
	}
	observed := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "observed")))
	droppedOpt := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "dropped")))
	reasons := map[causeOutcome]metric.ObserveOption{}
	for o := causeNested + 1; o < numCauseOutcomes; o++ {
		reasons[o] = metric.WithAttributeSet(attribute.NewSet(reasonKey.String(o.String())))
	}
	evicted, err := counter("weft_correlate_join_evicted_spans",
		"Spans emitted before their join wait ended because the join buffer was full.", "{span}")
	if err != nil {
		return err
	}
	dropped, err := counter("weft_correlate_service_graph_dropped_edges",
		"Service graph requests not counted because the graph reached its edge limit.", "{request}")
	if err != nil {
		return err
	}
	held, err := m.Int64ObservableGauge("weft_correlate_join_held_spans",
		metric.WithDescription("Spans in the join buffer: waiting for their other end or parent, or kept as possible parents."),
		metric.WithUnit("{span}"))
	if err != nil {
		return fmt.Errorf("register weft_correlate_join_held_spans: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := c.JoinStats()
		o.ObserveInt64(pairs, int64(st.Pairs-st.LatePairs), whenInTime)
		o.ObserveInt64(pairs, int64(st.LatePairs), whenLate)
		o.ObserveInt64(nested, int64(st.NestedByThread), ruleThread)
		o.ObserveInt64(nested, int64(st.NestedBySingle), ruleSingle)
		o.ObserveInt64(nested, int64(st.NestedByCause), ruleCause)
		o.ObserveInt64(streamCauses, int64(st.StreamCauses), observed)
		o.ObserveInt64(streamCauses, int64(st.StreamCausesDropped), droppedOpt)
		for r, opt := range reasons {
			o.ObserveInt64(undecided, int64(c.joinStats.byCause[r].Load()), opt)
		}
		o.ObserveInt64(unattributed, int64(st.Unattributed))
		o.ObserveInt64(evicted, int64(st.Evicted))
		o.ObserveInt64(dropped, int64(st.DroppedEdges))
		o.ObserveInt64(held, st.Held)
		return nil
	}, pairs, nested, undecided, streamCauses, unattributed, evicted, dropped, held)
	if err != nil {
		return fmt.Errorf("register join metrics callback: %w", err)
	}
	return nil
}
