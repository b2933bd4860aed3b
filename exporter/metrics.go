package exporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Drop reasons, the values of the reason attribute on
// weft_exporter_spans_dropped.
const (
	DropReasonQueueFull  = "queue_full"
	DropReasonSendFailed = "send_failed"
	DropReasonShutdown   = "shutdown"
)

// RegisterMetrics exposes Stats as observable instruments read at collection
// time, so counting stays a few atomic adds. Counter names carry no _total:
// the Prometheus exporter appends it.
func (e *Exporter) RegisterMetrics(m metric.Meter) error {
	counter := func(name, unit, desc string) (metric.Int64ObservableCounter, error) {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			return nil, fmt.Errorf("register metric %s: %w", name, err)
		}
		return c, nil
	}
	gauge := func(name, unit, desc string) (metric.Int64ObservableGauge, error) {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			return nil, fmt.Errorf("register metric %s: %w", name, err)
		}
		return g, nil
	}

	submitted, err := counter("weft_exporter_spans_submitted", "{span}", "Spans handed to the exporter.")
	if err != nil {
		return err
	}
	exported, err := counter("weft_exporter_spans_exported", "{span}", "Spans the backend accepted.")
	if err != nil {
		return err
	}
	dropped, err := counter("weft_exporter_spans_dropped", "{span}", "Spans lost, by reason: queue_full, send_failed, shutdown.")
	if err != nil {
		return err
	}
	batches, err := counter("weft_exporter_batches", "{batch}", "Batches handed to the sender.")
	if err != nil {
		return err
	}
	retries, err := counter("weft_exporter_retries", "{attempt}", "Export attempts after the first.")
	if err != nil {
		return err
	}
	exportErrors, err := counter("weft_exporter_export_errors", "{attempt}", "Failed export attempts, retried or not.")
	if err != nil {
		return err
	}
	queueLen, err := gauge("weft_exporter_queue_length", "{span}", "Spans waiting to be sent.")
	if err != nil {
		return err
	}
	queueCap, err := gauge("weft_exporter_queue_capacity", "{span}", "Most spans the queue holds before dropping the oldest.")
	if err != nil {
		return err
	}

	reason := func(r string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	queueFull, sendFailed, shutdown := reason(DropReasonQueueFull), reason(DropReasonSendFailed), reason(DropReasonShutdown)

	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := e.Stats()
		o.ObserveInt64(submitted, s.SpansSubmitted)
		o.ObserveInt64(exported, s.SpansExported)
		o.ObserveInt64(dropped, s.SpansDroppedQueueFull, queueFull)
		o.ObserveInt64(dropped, s.SpansDroppedSendFailed, sendFailed)
		o.ObserveInt64(dropped, s.SpansDroppedShutdown, shutdown)
		o.ObserveInt64(batches, s.Batches)
		o.ObserveInt64(retries, s.Retries)
		o.ObserveInt64(exportErrors, s.ExportErrors)
		o.ObserveInt64(queueLen, s.QueueLength)
		o.ObserveInt64(queueCap, int64(e.cfg.MaxQueueSize))
		return nil
	}, submitted, exported, dropped, batches, retries, exportErrors, queueLen, queueCap)
	if err != nil {
		return fmt.Errorf("register exporter metrics callback: %w", err)
	}
	return nil
}
