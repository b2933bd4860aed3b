package exporter

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
)

// TestConsoleSummary: batches are counted, not printed, until an interval
// has passed; then one line per service (by name) says its server and
// client spans' counts, rates, errors, p50 and p99; an idle period prints
// nothing; shutdown prints what is left.
func TestConsoleSummary(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	var out bytes.Buffer
	s := newSummarySender(&out, 5*time.Second, clock)
	conv := newConverter("v", nil)
	export := func(spans ...correlate.Span) {
		t.Helper()
		if err := s.Export(context.Background(), conv.convert(spans)); err != nil {
			t.Fatal(err)
		}
	}
	withDur := func(sp correlate.Span, d time.Duration, isErr bool) correlate.Span {
		sp.End = sp.Start.Add(d)
		if isErr {
			sp.StatusCode = codes.Error
		}
		return sp
	}
	var batch []correlate.Span
	for i := range 100 {
		// checkout serves 100 requests of 1..100 ms, 2 failed.
		batch = append(batch, withDur(httpSpan(procCheckout, trace.SpanKindServer, "GET /orders/{id}", i), time.Duration(i+1)*time.Millisecond, i%40 == 39))
	}
	for i := range 10 {
		batch = append(batch, withDur(httpSpan(procCurl, trace.SpanKindClient, "GET", i), 2*time.Millisecond, i == 0))
	}
	now = now.Add(2 * time.Second)
	export(batch[:50]...)
	if out.Len() != 0 {
		t.Fatalf("printed before the interval passed:\n%s", out.String())
	}
	now = now.Add(2600 * time.Millisecond) // 4.6 s: within the tenth of slack
	export(batch[50:]...)
	want := strings.Join([]string{
		"2026-03-14T15:09:31Z checkout server 100 (21.7/s) err 2 p50 51ms p99 100ms | client 0",
		"2026-03-14T15:09:31Z curl     server 0 | client 10 (2.2/s) err 1 p50 2ms p99 2ms",
		"",
	}, "\n")
	if got := out.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	now = now.Add(time.Minute)
	if err := s.flush(); err != nil || out.Len() != 0 {
		t.Errorf("idle period printed %q (%v), want nothing", out.String(), err)
	}
	now = now.Add(time.Second)
	export(batch[0])
	if out.Len() != 0 {
		t.Fatalf("printed before the interval passed:\n%s", out.String())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "2026-03-14T15:10:32Z checkout server 1 (1.0/s) err 0 p50 1ms p99 1ms | client 0\n"; got != want {
		t.Errorf("summary at shutdown: %q, want %q", got, want)
	}
}

// TestConsoleSummaryBounded: past summaryMaxServices services the
// quietest are folded into one line, and durations are sampled.
func TestConsoleSummaryBounded(t *testing.T) {
	now := t0
	var out bytes.Buffer
	s := newSummarySender(&out, time.Second, func() time.Time { return now })
	conv := newConverter("v", nil)
	var spans []correlate.Span
	for i := range summaryMaxServices + 3 {
		p := *procCheckout
		p.Attributes = append(p.Attributes[:0:0], p.Attributes...)
		p.Attributes[0] = p.Attributes[0].Key.String("svc-" + string(rune('a'+i)))
		for n := range 1 + i { // svc-a is the quietest
			spans = append(spans, httpSpan(&p, trace.SpanKindServer, "GET /", n))
		}
	}
	if err := s.Export(context.Background(), conv.convert(spans)); err != nil {
		t.Fatal(err)
	}
	busiest := &s.services["svc-w"].server
	for range summarySample + 10 {
		busiest.add(time.Millisecond, false)
	}
	if n := len(busiest.durs); n != summarySample || busiest.count != summarySample+10+23 {
		t.Errorf("%d durations kept of %d, want %d of %d", n, busiest.count, summarySample, summarySample+10+23)
	}
	now = now.Add(time.Second)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != summaryMaxServices+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), summaryMaxServices+1, out.String())
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " +3 more services, 6 spans") {
		t.Errorf("last line %q, want the three quietest folded (1+2+3 spans)", last)
	}
	if strings.Contains(out.String(), "svc-a ") {
		t.Errorf("the quietest service has a line of its own:\n%s", out.String())
	}
}
