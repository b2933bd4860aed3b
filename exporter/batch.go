package exporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftrace/weft/correlate"
)

// run is the one goroutine that converts and sends: a batch goes out when
// it is full or when the schedule delay has passed since the last send.
func (e *Exporter) run() {
	defer close(e.done)
	timer := time.NewTimer(e.cfg.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-e.stop:
			e.flush(true)
			return
		case <-e.wake:
			if !e.flush(false) {
				continue // a stale wake-up: keep the timer running
			}
		case <-timer.C:
			e.flush(true)
		}
		e.logQueueDrops()
		timer.Reset(e.cfg.ScheduleDelay)
	}
}

// flush sends full batches, and with all the last partial one too, and
// reports whether it sent any. Once shutdown has run out of time it drops
// what is left instead.
func (e *Exporter) flush(all bool) (sent bool) {
	for {
		e.mu.Lock()
		if e.ctx.Err() != nil {
			n := e.queue.discard()
			e.mu.Unlock()
			e.stats.droppedShutdown.Add(int64(n))
			return sent
		}
		n := e.queue.len()
		if n == 0 || (!all && n < e.cfg.MaxExportBatchSize) {
			e.mu.Unlock()
			return sent
		}
		e.batch = e.queue.pop(e.batch[:0], e.cfg.MaxExportBatchSize)
		e.mu.Unlock()
		e.export(e.batch)
		clear(e.batch) // hold no spans until the next batch
		sent = true
	}
}

// export converts and sends one batch and counts where its spans went.
func (e *Exporter) export(batch []correlate.Span) {
	n := int64(len(batch))
	e.stats.batches.Add(1)
	err := e.send(e.conv.convert(batch))
	var ps *PartialSuccessError
	switch {
	case err == nil:
		e.stats.exported.Add(n)
	case errors.As(err, &ps):
		rejected := min(max(ps.Rejected, 0), n)
		e.stats.exported.Add(n - rejected)
		e.stats.droppedSendFailed.Add(rejected)
		e.log.Warn("backend rejected spans", "rejected", rejected, "spans", n, "message", ps.Message)
	case e.ctx.Err() != nil:
		e.stats.droppedShutdown.Add(n)
	default:
		e.stats.droppedSendFailed.Add(n)
		e.log.Warn("drop span batch", "spans", n, "err", err)
	}
}

// send exports td, retrying retryable errors with backoff until the export
// timeout; a wait that would not fit in what is left of it is not started.
func (e *Exporter) send(td ptrace.Traces) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ExportTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	b := backoff{next: e.cfg.RetryInitialInterval, max: e.cfg.RetryMaxInterval}
	for attempt := 1; ; attempt++ {
		err := e.attempt(ctx, td)
		if err == nil {
			return nil
		}
		e.stats.exportErrors.Add(1)
		ok, hint := retryable(err)
		if !ok {
			return err
		}
		wait := max(b.wait(), hint)
		if time.Until(deadline) < wait {
			return fmt.Errorf("give up after %d attempts: %w", attempt, err)
		}
		e.log.Debug("retry span batch", "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("give up after %d attempts: %w", attempt, err)
		case <-t.C:
		}
		e.stats.retries.Add(1)
	}
}

// attempt is one Export bounded by the per-request timeout.
func (e *Exporter) attempt(ctx context.Context, td ptrace.Traces) error {
	if e.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.Timeout)
		defer cancel()
	}
	return e.sender.Export(ctx, td)
}

// logQueueDrops reports queue-full drops once per loop turn rather than
// per span, which Submit could not afford.
func (e *Exporter) logQueueDrops() {
	d := e.stats.droppedQueueFull.Load()
	if d > e.loggedDrops {
		e.log.Warn("span queue full, dropped oldest spans", "dropped", d-e.loggedDrops, "queue_size", e.cfg.MaxQueueSize)
		e.loggedDrops = d
	}
}
