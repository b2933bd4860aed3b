package exporter

import "sync/atomic"

// Stats is a snapshot of the exporter's counters since it was made. Every
// submitted span ends up exported, dropped for one reason, or still queued
// (or in the batch being sent); with the none exporter spans are only
// counted as submitted.
type Stats struct {
	SpansSubmitted         int64
	SpansExported          int64
	SpansDroppedQueueFull  int64 // oldest span pushed out of a full queue
	SpansDroppedSendFailed int64 // batch failed for good, or spans rejected by the backend
	SpansDroppedShutdown   int64 // still queued when shutdown ran out of time, or submitted after it
	Batches                int64 // batches handed to the sender, whatever the outcome
	Retries                int64 // export attempts after the first, over all batches
	ExportErrors           int64 // failed export attempts, retried or not
	QueueLength            int64 // spans waiting now
}

// counters are the live values behind Stats; atomics, so Submit and a
// metrics scrape never wait for each other.
type counters struct {
	submitted, exported                                  atomic.Int64
	droppedQueueFull, droppedSendFailed, droppedShutdown atomic.Int64
	batches, retries, exportErrors                       atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		SpansSubmitted:         c.submitted.Load(),
		SpansExported:          c.exported.Load(),
		SpansDroppedQueueFull:  c.droppedQueueFull.Load(),
		SpansDroppedSendFailed: c.droppedSendFailed.Load(),
		SpansDroppedShutdown:   c.droppedShutdown.Load(),
		Batches:                c.batches.Load(),
		Retries:                c.retries.Load(),
		ExportErrors:           c.exportErrors.Load(),
	}
}
