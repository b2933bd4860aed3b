package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

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
	case ExporterConsole:
		mode := "spans"
		if cfg.ConsoleSummary {
			mode = "summary every " + cfg.ConsoleSummaryInterval.String()
		}
		attrs = append(attrs, "console", mode)
	}
	e.log.Info("span exporter ready", attrs...)
	if hint := protocolHint(cfg); hint != "" {
		e.log.Warn(hint, "endpoint", cfg.ResolvedEndpoint(), "protocol", cfg.Protocol)
	}
	return e, nil
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
