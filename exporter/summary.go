package exporter

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// DefaultConsoleSummaryInterval is how often the summarising console
// prints: one line per service per interval.
const DefaultConsoleSummaryInterval = 5 * time.Second

const (
	// summaryMaxServices bounds the lines of one summary; the quietest
	// services beyond are folded into one line.
	summaryMaxServices = 20
	// summarySample bounds the durations kept per service and kind for
	// the percentiles (a uniform sample beyond).
	summarySample = 4096
)

// summarySender is the console for a person watching a busy host: instead
// of a line per span, every interval it prints one line per service with
// what the service served (SERVER spans) and what it called (CLIENT
// spans): counts, rates, errors and median and 99th percentile durations.
//
//	2026-01-02T15:04:05Z frontend  server 124 (24.8/s) err 3 p50 3.1ms p99 312ms | client 248 (49.6/s) err 3 p50 1.2ms p99 305ms
//
// Lines are printed when a batch arrives at least an interval after the
// last print (so an idle host prints nothing) and at shutdown.
type summarySender struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time
	since    time.Time // start of the period being counted
	services map[string]*serviceSummary
	buf      bytes.Buffer
}

type serviceSummary struct {
	server, client kindSummary
}

type kindSummary struct {
	count, errors int64
	durs          []time.Duration // a sample of at most summarySample
}

func (k *kindSummary) add(d time.Duration, isErr bool) {
	k.count++
	if isErr {
		k.errors++
	}
	if len(k.durs) < summarySample {
		k.durs = append(k.durs, d)
	} else if i := rand.Int64N(k.count); i < summarySample {
		k.durs[i] = d // reservoir sampling: every span equally likely kept
	}
}

func newSummarySender(w io.Writer, interval time.Duration, now func() time.Time) *summarySender {
	if interval <= 0 {
		interval = DefaultConsoleSummaryInterval
	}
	if now == nil {
		now = time.Now
	}
	return &summarySender{w: w, interval: interval, now: now, since: now(), services: map[string]*serviceSummary{}}
}

func (s *summarySender) Export(_ context.Context, td ptrace.Traces) error {
	for _, rs := range td.ResourceSpans().All() {
		service := "-"
		if v, ok := rs.Resource().Attributes().Get(string(semconv.ServiceNameKey)); ok {
			service = v.AsString()
		}
		sum := s.services[service]
		if sum == nil {
			sum = &serviceSummary{}
			s.services[service] = sum
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				d := sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime())
				isErr := sp.Status().Code() == ptrace.StatusCodeError
				switch sp.Kind() {
				case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
					sum.server.add(d, isErr)
				default:
					sum.client.add(d, isErr)
				}
			}
		}
	}
	// A tenth of slack: batches come on a timer of their own, and one
	// due a hair before the interval ends should not wait a whole period.
	if s.now().Sub(s.since) < s.interval-s.interval/10 {
		return nil
	}
	return s.flush()
}

// flush prints the period's lines and starts a new period.
func (s *summarySender) flush() error {
	now := s.now()
	elapsed := now.Sub(s.since)
	s.since = now
	if len(s.services) == 0 {
		return nil
	}
	type row struct {
		name string
		sum  *serviceSummary
	}
	rows := make([]row, 0, len(s.services))
	width := 0
	for name, sum := range s.services {
		rows = append(rows, row{name, sum})
	}
	// The busiest services first when there are too many for one screen;
	// then by name, so a service keeps its place from one summary to the next.
	if len(rows) > summaryMaxServices {
		sort.Slice(rows, func(i, j int) bool {
			a, b := rows[i].sum.server.count+rows[i].sum.client.count, rows[j].sum.server.count+rows[j].sum.client.count
			return a > b || a == b && rows[i].name < rows[j].name
		})
	}
	shown := rows[:min(len(rows), summaryMaxServices)]
	slices.SortFunc(shown, func(a, b row) int { return cmp.Compare(a.name, b.name) })
	for _, r := range shown {
		width = max(width, len(r.name))
	}
	stamp := now.UTC().Format("2006-01-02T15:04:05Z")
	b := &s.buf
	b.Reset()
	for _, r := range shown {
		fmt.Fprintf(b, "%s %-*s ", stamp, width, r.name)
		writeKind(b, "server", &r.sum.server, elapsed)
		b.WriteString(" | ")
		writeKind(b, "client", &r.sum.client, elapsed)
		b.WriteByte('\n')
	}
	if rest := rows[len(shown):]; len(rest) > 0 {
		var spans int64
		for _, r := range rest {
			spans += r.sum.server.count + r.sum.client.count
		}
		fmt.Fprintf(b, "%s +%d more services, %d spans\n", stamp, len(rest), spans)
	}
	clear(s.services)
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write console summary: %w", err)
	}
	return nil
}

func writeKind(b *bytes.Buffer, kind string, k *kindSummary, elapsed time.Duration) {
	if k.count == 0 {
		b.WriteString(kind)
		b.WriteString(" 0")
		return
	}
	slices.Sort(k.durs)
	pct := func(p float64) time.Duration { return k.durs[min(len(k.durs)-1, int(p*float64(len(k.durs))))] }
	fmt.Fprintf(b, "%s %d (%.1f/s) err %d p50 %s p99 %s", kind, k.count, float64(k.count)/max(elapsed.Seconds(), 0.001),
		k.errors, roundDuration(pct(0.50)), roundDuration(pct(0.99)))
}

// roundDuration keeps three significant figures or so: 312ms, 3.12ms, 45µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Shutdown prints what the last period counted.
func (s *summarySender) Shutdown(context.Context) error { return s.flush() }
