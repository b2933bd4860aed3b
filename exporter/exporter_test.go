package exporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newPipeline(t *testing.T, cfg Config, s Sender) *Exporter {
	t.Helper()
	e, err := NewWithSender(cfg, s, nil)
	if err != nil {
		t.Fatalf("NewWithSender: %v", err)
	}
	return e
}

func TestBatchBySize(t *testing.T) {
	cfg := pipelineConfig() // schedule delay of an hour: only size can trigger
	cfg.MaxExportBatchSize = 3
	f := &fakeSender{}
	e := newPipeline(t, cfg, f)
	for i := range 7 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	waitFor(t, "two full batches", func() bool { b, _ := f.got(); return len(b) == 2 })
	b, _ := f.got()
	want := [][]string{{"0", "1", "2"}, {"3", "4", "5"}}
	if !slices.EqualFunc(b, want, slices.Equal) {
		t.Errorf("batches = %v, want %v", b, want)
	}
	if got := e.Stats().QueueLength; got != 1 {
		t.Errorf("queue length = %d, want the 1 span of a partial batch", got)
	}
	if err := shutdown(t, e); err != nil {
		t.Fatal(err)
	}
	b, _ = f.got()
	if len(b) != 3 || !slices.Equal(b[2], []string{"6"}) {
		t.Errorf("after shutdown batches = %v, want the partial batch [6] last", b)
	}
}

func TestBatchByTime(t *testing.T) {
	cfg := pipelineConfig()
	cfg.ScheduleDelay = 5 * time.Millisecond
	cfg.MaxExportBatchSize = 100 // never reached: only the timer can send
	f := &fakeSender{}
	e := newPipeline(t, cfg, f)
	defer shutdown(t, e)
	for i := range 3 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	waitFor(t, "a batch sent by the timer", func() bool { b, _ := f.got(); return len(b) >= 1 })
	b, _ := f.got()
	if !slices.Equal(b[0], []string{"0", "1", "2"}) {
		t.Errorf("first batch = %v, want [0 1 2]", b[0])
	}
}

func TestQueueDropsOldest(t *testing.T) {
	cfg := pipelineConfig()
	cfg.MaxQueueSize = 4
	cfg.MaxExportBatchSize = 1
	f := &fakeSender{block: make(chan struct{}), entered: make(chan struct{}, 16)}
	e := newPipeline(t, cfg, f)

	e.Submit(namedSpan("0"))
	<-f.entered // the loop holds span 0 in a blocked export; the queue is empty
	for i := 1; i <= 6; i++ {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	st := e.Stats()
	if st.SpansDroppedQueueFull != 2 || st.QueueLength != 4 {
		t.Errorf("dropped %d with %d queued, want 2 dropped and 4 queued", st.SpansDroppedQueueFull, st.QueueLength)
	}
	close(f.block)
	if err := shutdown(t, e); err != nil {
		t.Fatal(err)
	}
	var names []string
	b, _ := f.got()
	for _, batch := range b {
		names = append(names, batch...)
	}
	if want := []string{"0", "3", "4", "5", "6"}; !slices.Equal(names, want) {
		t.Errorf("exported %v, want %v (1 and 2 dropped as the oldest)", names, want)
	}
	if st := e.Stats(); st.SpansExported != 5 || st.SpansSubmitted != 7 {
		t.Errorf("stats = %+v, want 7 submitted and 5 exported", st)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	cfg := pipelineConfig()
	unavailable := Retryable(errors.New("unavailable"), 0)
	f := &fakeSender{errs: []error{unavailable, unavailable}}
	e := newPipeline(t, cfg, f)
	for i := range 3 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	if err := shutdown(t, e); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	b, calls := f.got()
	if calls != 3 || len(b) != 1 || len(b[0]) != 3 {
		t.Errorf("calls = %d, batches = %v; want 3 calls and the batch sent once", calls, b)
	}
	st := e.Stats()
	if st.Retries != 2 || st.ExportErrors != 2 || st.SpansExported != 3 || st.SpansDroppedSendFailed != 0 || st.Batches != 1 {
		t.Errorf("stats = %+v, want 2 retries, 2 errors, 3 exported, 1 batch", st)
	}
}

func TestNoRetryOnPermanentError(t *testing.T) {
	cfg := pipelineConfig()
	f := &fakeSender{errs: []error{errors.New("400 bad request")}}
	e := newPipeline(t, cfg, f)
	for i := range 3 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	err := shutdown(t, e)
	if err == nil || !strings.Contains(err.Error(), "3 spans not sent") {
		t.Errorf("shutdown error = %v, want it to count 3 spans not sent", err)
	}
	if _, calls := f.got(); calls != 1 {
		t.Errorf("calls = %d, want 1: a permanent error is not retried", calls)
	}
	st := e.Stats()
	if st.Retries != 0 || st.ExportErrors != 1 || st.SpansDroppedSendFailed != 3 || st.SpansExported != 0 {
		t.Errorf("stats = %+v, want no retry, 1 error, 3 dropped for send failure", st)
	}
}

func TestRetryBoundedByExportTimeout(t *testing.T) {
	cfg := pipelineConfig()
	cfg.ExportTimeout = 200 * time.Millisecond
	f := &fakeSender{errAll: Retryable(errors.New("unavailable"), 0)}
	e := newPipeline(t, cfg, f)
	e.Submit(namedSpan("0"))
	e.Submit(namedSpan("1"))
	if err := shutdown(t, e); err == nil {
		t.Error("shutdown error = nil, want the 2 unsent spans reported")
	}
	st := e.Stats()
	if st.SpansDroppedSendFailed != 2 || st.Retries == 0 || st.ExportErrors != st.Retries+1 {
		t.Errorf("stats = %+v, want some retries, one more error than retries, 2 dropped", st)
	}
}

func TestRetryHintBeyondBudgetGivesUp(t *testing.T) {
	cfg := pipelineConfig()
	f := &fakeSender{errAll: Retryable(errors.New("429"), time.Hour)}
	e := newPipeline(t, cfg, f)
	e.Submit(namedSpan("0"))
	_ = shutdown(t, e)
	if _, calls := f.got(); calls != 1 {
		t.Errorf("calls = %d, want 1: a wait past the export timeout is not started", calls)
	}
	if st := e.Stats(); st.SpansDroppedSendFailed != 1 || st.Retries != 0 {
		t.Errorf("stats = %+v, want 1 dropped, no retry", st)
	}
}

func TestPartialSuccess(t *testing.T) {
	f := &fakeSender{errs: []error{&PartialSuccessError{Rejected: 2, Message: "too old"}}}
	e := newPipeline(t, pipelineConfig(), f)
	for i := range 5 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	_ = shutdown(t, e)
	st := e.Stats()
	if st.SpansExported != 3 || st.SpansDroppedSendFailed != 2 || st.Retries != 0 {
		t.Errorf("stats = %+v, want 3 exported, 2 rejected, no retry", st)
	}
}

func TestShutdownFlushes(t *testing.T) {
	cfg := pipelineConfig()
	cfg.MaxExportBatchSize = 4
	f := &fakeSender{}
	e := newPipeline(t, cfg, f)
	for i := range 10 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	if err := shutdown(t, e); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	b, _ := f.got()
	var n int
	for _, batch := range b {
		n += len(batch)
	}
	if n != 10 {
		t.Errorf("flushed %d spans in %v, want 10", n, b)
	}
	if !f.shutdown {
		t.Error("sender not shut down")
	}
	e.Submit(namedSpan("late"))
	if st := e.Stats(); st.SpansDroppedShutdown != 1 || st.SpansExported != 10 {
		t.Errorf("stats = %+v, want 10 exported and the late span dropped", st)
	}
	if err := shutdown(t, e); err != nil {
		t.Errorf("second shutdown = %v, want the first result (nil)", err)
	}
}

func TestShutdownDeadlineDropsTheRest(t *testing.T) {
	cfg := pipelineConfig()
	cfg.MaxExportBatchSize = 2
	cfg.MaxQueueSize = 10
	// The collector hangs: the first export waits until shutdown gives up.
	f := &fakeSender{block: make(chan struct{}), entered: make(chan struct{}, 16)}
	e := newPipeline(t, cfg, f)
	for i := range 5 {
		e.Submit(namedSpan(fmt.Sprint(i)))
	}
	<-f.entered // a batch of 2 is in flight, 3 spans wait
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has already passed
	err := e.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "5 spans not sent") {
		t.Errorf("shutdown error = %v, want 5 spans not sent", err)
	}
	if st := e.Stats(); st.SpansDroppedShutdown != 5 || st.SpansExported != 0 || st.QueueLength != 0 {
		t.Errorf("stats = %+v, want all 5 dropped at shutdown and none queued", st)
	}
}

func TestConcurrentSubmitAccountsForEverySpan(t *testing.T) {
	cfg := pipelineConfig()
	cfg.MaxQueueSize = 64
	cfg.MaxExportBatchSize = 16
	f := &fakeSender{}
	e := newPipeline(t, cfg, f)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				e.Submit(namedSpan(fmt.Sprint(g, "-", i)))
			}
		})
	}
	wg.Wait()
	if err := shutdown(t, e); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	b, _ := f.got()
	var sent int64
	for _, batch := range b {
		sent += int64(len(batch))
	}
	if st.SpansSubmitted != 2000 || st.SpansExported != sent ||
		st.SpansExported+st.SpansDroppedQueueFull != st.SpansSubmitted {
		t.Errorf("stats = %+v with %d received: every span must be exported or dropped", st, sent)
	}
}

func TestNoneExporterDiscards(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exporter = ExporterNone
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Submit(namedSpan("x"))
	if err := shutdown(t, e); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.SpansSubmitted != 1 || st.Batches != 0 {
		t.Errorf("stats = %+v, want 1 submitted and nothing sent", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxQueueSize = 0
	if _, err := New(cfg, nil); err == nil {
		t.Error("New accepted a zero queue size")
	}
	if _, err := NewWithSender(DefaultConfig(), nil, nil); err == nil {
		t.Error("NewWithSender accepted a nil sender")
	}
}
