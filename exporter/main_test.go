package exporter

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/procmeta"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds. The deadline only turns a hang into a
// failure; no assertion depends on how fast anything happens.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pipelineConfig is a config for pipeline tests: nothing is sent on a timer
// unless a test asks, and retries are quick.
func pipelineConfig() Config {
	c := DefaultConfig()
	c.ScheduleDelay = time.Hour
	c.RetryInitialInterval = time.Millisecond
	c.RetryMaxInterval = 2 * time.Millisecond
	return c
}

func shutdown(t *testing.T, e *Exporter) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Shutdown(ctx)
}

var (
	t0 = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

	procCheckout = &procmeta.Process{
		PID: 4242, ServiceName: "checkout", ExeName: "checkout", ExePath: "/app/checkout", Command: "/app/checkout",
		Attributes: []attribute.KeyValue{
			semconv.ServiceName("checkout"),
			semconv.ProcessPID(4242),
			semconv.ProcessExecutableName("checkout"),
			semconv.HostName("node-1"),
		},
	}
	procCurl = &procmeta.Process{
		PID: 777, ServiceName: "curl", ExeName: "curl", ExePath: "/usr/bin/curl", Command: "curl",
		Attributes: []attribute.KeyValue{
			semconv.ServiceName("curl"),
			semconv.ProcessPID(777),
			semconv.ProcessExecutableName("curl"),
			semconv.HostName("node-1"),
		},
	}
)

func traceID(b byte) trace.TraceID {
	var id trace.TraceID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func spanID(b byte) trace.SpanID {
	var id trace.SpanID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// httpSpan is a span as the correlator makes one for an HTTP exchange.
func httpSpan(p *procmeta.Process, kind trace.SpanKind, name string, n int) correlate.Span {
	return correlate.Span{
		TraceID:      traceID(byte(n)),
		SpanID:       spanID(byte(0x10 + n)),
		ParentSpanID: spanID(byte(0x40 + n)),
		Name:         name,
		Kind:         kind,
		Start:        t0.Add(time.Duration(n) * time.Millisecond),
		End:          t0.Add(time.Duration(n)*time.Millisecond + 1500*time.Microsecond),
		Attributes: []attribute.KeyValue{
			semconv.HTTPRequestMethodKey.String("GET"),
			semconv.URLPath("/orders/" + fmt.Sprint(n)),
			semconv.HTTPRoute("/orders/{id}"),
			semconv.HTTPResponseStatusCode(200),
			semconv.ServerAddress("checkout.shop.svc"),
			semconv.ServerPort(8080),
			semconv.ClientAddress("10.1.2.3"),
			semconv.NetworkProtocolVersion("1.1"),
			semconv.UserAgentOriginal("curl/8.5.0"),
			semconv.URLScheme("http"),
		},
		Process: p,
	}
}

// namedSpans are spans told apart by name, for pipeline tests.
func namedSpan(name string) correlate.Span {
	s := httpSpan(procCheckout, trace.SpanKindServer, name, 1)
	s.StatusCode = codes.Ok
	return s
}

// fakeSender records what it is given and returns scripted errors.
type fakeSender struct {
	mu       sync.Mutex
	batches  [][]string // span names per successful export
	calls    int
	errs     []error // returned by the first calls, in order
	errAll   error   // returned by every call once errs is used up
	block    chan struct{}
	entered  chan struct{} // receives once per call, when block is set
	shutdown bool
}

func (f *fakeSender) Export(ctx context.Context, td ptrace.Traces) error {
	f.mu.Lock()
	f.calls++
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	} else {
		err = f.errAll
	}
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if block != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	var names []string
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				names = append(names, sp.Name())
			}
		}
	}
	f.mu.Lock()
	f.batches = append(f.batches, names)
	f.mu.Unlock()
	return nil
}

func (f *fakeSender) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown = true
	return nil
}

func (f *fakeSender) got() (batches [][]string, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...), f.calls
}
