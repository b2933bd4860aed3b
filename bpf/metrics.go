package bpf

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics exports the kernel side's counters: events lost per CPU
// (ring buffer full), samples received and samples that did not decode.
func (t *Tracer) RegisterMetrics(m metric.Meter) error {
	lost, err := m.Int64ObservableCounter("weft_bpf_events_lost",
		metric.WithDescription("Events the kernel could not put in the ring buffer (it was full), per CPU."))
	if err != nil {
		return err
	}
	recv, err := m.Int64ObservableCounter("weft_bpf_events_received",
		metric.WithDescription("Ring buffer samples read."))
	if err != nil {
		return err
	}
	bad, err := m.Int64ObservableCounter("weft_bpf_events_malformed",
		metric.WithDescription("Ring buffer samples that did not decode and were dropped."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(recv, int64(t.Received()))
		o.ObserveInt64(bad, int64(t.Malformed()))
		perCPU, err := t.Lost()
		if err != nil {
			return err
		}
		for cpu, n := range perCPU {
			o.ObserveInt64(lost, int64(n), metric.WithAttributes(attribute.String("cpu", strconv.Itoa(cpu))))
		}
		return nil
	}, lost, recv, bad)
	return err
}
