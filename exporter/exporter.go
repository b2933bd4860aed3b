package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftrace/weft/correlate"
)

// Exporter takes finished spans from the correlator and sends them in
// batches from one background goroutine. Submit never waits on the network.
type Exporter struct {
	cfg    Config
	log    *slog.Logger
	sender Sender // nil for the none exporter
	stats  counters

	mu     sync.Mutex
	queue  *ring
	closed bool

	// Owned by the loop goroutine.
	conv        *converter
	batch       []correlate.Span
	loggedDrops int64

	wake   chan struct{}   // a full batch is waiting
	stop   chan struct{}   // closed by Shutdown
	done   chan struct{}   // closed when the loop has exited
	ctx    context.Context // exports run in it; cancelled when shutdown runs out of time
	cancel context.CancelFunc

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, builds the sender it names and starts the background
// sender goroutine; Shutdown stops it. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exporter config: %w", err)
	}
	sender, err := newSender(cfg, os.Stdout)
	if err != nil {
		return nil, err
	}
	e := start(cfg, sender, logger)
	attrs := []any{"exporter", cfg.ResolvedExporter()}
	switch cfg.ResolvedExporter() {
	case ExporterOTLP:
		attrs = append(attrs, "endpoint", cfg.ResolvedEndpoint(), "protocol", cfg.Protocol)
	case ExporterJSONL:
		attrs = append(attrs, "path", cfg.JSONLPath)
	}
	e.log.Info("span exporter ready", attrs...)
	if hint := protocolHint(cfg); hint != "" {
		e.log.Warn(hint, "endpoint", cfg.ResolvedEndpoint(), "protocol", cfg.Protocol)
	}
	return e, nil
}

// protocolHint catches the usual mix-up of the two OTLP ports: the
// specification's default protocol is http/protobuf, also on 4317.
func protocolHint(c Config) string {
	if c.ResolvedExporter() != ExporterOTLP {
		return ""
	}
	ep := c.ResolvedEndpoint()
	var port string
	if u, err := url.Parse(ep); err == nil && u.Host != "" {
		port = u.Port()
	} else if _, p, err := net.SplitHostPort(ep); err == nil {
		port = p
	}
	switch {
	case c.Protocol == ProtocolHTTPProtobuf && port == "4317":
		return "otlp endpoint port 4317 is the gRPC port; set OTEL_EXPORTER_OTLP_PROTOCOL=grpc if the collector speaks gRPC there"
	case c.Protocol == ProtocolGRPC && port == "4318":
		return "otlp endpoint port 4318 is the HTTP port; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf if the collector speaks HTTP there"
	}
	return ""
}

// NewWithSender is New with a sender of the caller's own, for tests and
// embedders; cfg.Exporter and the OTLP fields are then ignored.
func NewWithSender(cfg Config, sender Sender, logger *slog.Logger) (*Exporter, error) {
	if sender == nil {
		return nil, errors.New("exporter: nil sender")
	}
	cfg.Exporter = ExporterNone // only the pipeline fields apply
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exporter config: %w", err)
	}
	return start(cfg, sender, logger), nil
}

func start(cfg Config, sender Sender, logger *slog.Logger) *Exporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{
		cfg:    cfg,
		log:    logger,
		sender: sender,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if sender == nil {
		close(e.done)
		return e
	}
	e.queue = newRing(cfg.MaxQueueSize)
	e.conv = newConverter(version(), cfg.ResourceAttributes)
	e.batch = make([]correlate.Span, 0, cfg.MaxExportBatchSize)
	e.wake = make(chan struct{}, 1)
	go e.run()
	return e
}

// Submit queues a finished span. It never waits for the sender: it holds a
// lock for a few instructions, and when the queue is full the oldest queued
// span is dropped and counted. Safe for concurrent use.
func (e *Exporter) Submit(s correlate.Span) {
	e.stats.submitted.Add(1)
	if e.sender == nil {
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.stats.droppedShutdown.Add(1)
		return
	}
	dropped := e.queue.push(s)
	full := e.queue.len() >= e.cfg.MaxExportBatchSize
	e.mu.Unlock()
	if dropped {
		e.stats.droppedQueueFull.Add(1)
	}
	if full {
		select {
		case e.wake <- struct{}{}:
		default: // the loop is already told
		}
	}
}

// Stats returns the counters now.
func (e *Exporter) Stats() Stats {
	s := e.stats.snapshot()
	s.QueueLength = int64(e.queueLen())
	return s
}

func (e *Exporter) queueLen() int {
	if e.queue == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queue.len()
}

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

// Shutdown stops accepting spans, sends what is queued until ctx is done,
// drops the rest and closes the sender. Its error counts the spans that
// were not sent from the start of the shutdown. Later calls return the
// first call's result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() { e.shutdownErr = e.shutdown(ctx) })
	return e.shutdownErr
}

func (e *Exporter) shutdown(ctx context.Context) error {
	defer e.cancel()
	if e.sender == nil {
		return nil
	}
	lostBefore := e.stats.droppedSendFailed.Load() + e.stats.droppedShutdown.Load()
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	select {
	case <-e.done:
	case <-ctx.Done():
		e.cancel() // abort the export in flight; the loop drops the rest
		<-e.done
	}
	var errs []error
	if lost := e.stats.droppedSendFailed.Load() + e.stats.droppedShutdown.Load() - lostBefore; lost > 0 {
		errs = append(errs, fmt.Errorf("%d spans not sent", lost))
	}
	if err := e.sender.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown exporter: %w", err)
	}
	return nil
}
