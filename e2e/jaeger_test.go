package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftrace/weft/internal/jaeger"
)

const (
	// spanTimeout bounds how long a test waits for spans to reach Jaeger.
	spanTimeout = 20 * time.Second
	// settleTime is how long waitSpans keeps looking after it saw enough
	// spans, to catch extra ones: several of weft's export windows
	// (OTEL_BSP_SCHEDULE_DELAY=200 ms) plus Jaeger's ingestion.
	settleTime = time.Second
)

// jaegerServiceName is the OTEL_SERVICE_NAME Jaeger runs with: weft traces
// its query API like any other HTTP server.
const jaegerServiceName = "e2e-jaeger"

// jaegerProc is a running Jaeger all-in-one (in-memory storage) bound to
// loopback only, on ports picked for this run.
type jaegerProc struct {
	*process
	otlpGRPC string // host:port of the OTLP gRPC receiver
	otlpHTTP string // host:port of the OTLP HTTP receiver
	client   *jaegerClient
}

// jaegerBinary finds the pinned Jaeger binary (internal/jaeger).
func jaegerBinary() (string, error) { return jaeger.Binary("") }

// startJaeger starts Jaeger with its config and log in dir and waits until
// both its query API and its OTLP gRPC receiver answer.
func startJaeger(dir string) (*jaegerProc, error) {
	bin, err := jaegerBinary()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	conf := jaeger.Config(jaeger.Ports{Query: ports[0], QueryGRPC: ports[1], OTLPGRPC: ports[2], OTLPHTTP: ports[3]}, 100000, "")
	if err := os.WriteFile(cfg, conf, 0o644); err != nil {
		return nil, fmt.Errorf("write jaeger config: %w", err)
	}
	p, err := spawn("jaeger", dir, filepath.Join(dir, "jaeger.log"),
		childEnv("OTEL_SERVICE_NAME="+jaegerServiceName), nil, bin, "--config", "file:"+cfg)
	if err != nil {
		return nil, err
	}
	j := &jaegerProc{
		process:  p,
		otlpGRPC: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		otlpHTTP: fmt.Sprintf("127.0.0.1:%d", ports[3]),
		client:   newJaegerClient(fmt.Sprintf("http://127.0.0.1:%d", ports[0])),
	}
	err = waitUntil(60*time.Second, p, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := j.client.Services(ctx); err != nil {
			return err
		}
		return tcpReady(j.otlpGRPC)
	})
	if err != nil {
		p.stop(syscall.SIGKILL, time.Second)
		return nil, fmt.Errorf("start jaeger: %w\njaeger log (%s):\n%s", err, p.logPath, tail(p.logPath, 30))
	}
	return j, nil
}

// jaegerClient reads Jaeger's HTTP query API (the one its UI uses).
type jaegerClient struct {
	base string
	hc   *http.Client
}

func newJaegerClient(base string) *jaegerClient {
	return &jaegerClient{base: base, hc: &http.Client{Timeout: 10 * time.Second}}
}

// apiResponse is the envelope of every /api/ answer.
type apiResponse[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

func getAPI[T any](ctx context.Context, c *jaegerClient, path string, q url.Values) (T, error) {
	var zero T
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return zero, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return zero, fmt.Errorf("jaeger api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return zero, fmt.Errorf("jaeger api: GET %s: %s", u, resp.Status)
	}
	var out apiResponse[T]
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber() // int64 tag values must stay exact
	if err := dec.Decode(&out); err != nil {
		return zero, fmt.Errorf("jaeger api: decode GET %s: %w", u, err)
	}
	if len(out.Errors) > 0 {
		return zero, fmt.Errorf("jaeger api: GET %s: %d: %s", u, out.Errors[0].Code, out.Errors[0].Msg)
	}
	return out.Data, nil
}

// Services lists the service names Jaeger has seen (GET /api/services).
func (c *jaegerClient) Services(ctx context.Context) ([]string, error) {
	s, err := getAPI[[]string](ctx, c, "/api/services", nil)
	sort.Strings(s)
	return s, err
}

// Spans returns every span of the traces that have a span of service (GET
// /api/traces), over the last six hours and the next hour, so spans whose
// timestamps are off still show up (and fail the window checks instead of
// going missing).
func (c *jaegerClient) Spans(ctx context.Context, service string) ([]Span, error) {
	now := time.Now()
	q := url.Values{
		"service": {service},
		"start":   {strconv.FormatInt(now.Add(-6*time.Hour).UnixMicro(), 10)},
		"end":     {strconv.FormatInt(now.Add(time.Hour).UnixMicro(), 10)},
		"limit":   {"10000"},
	}
	traces, err := getAPI[[]jTrace](ctx, c, "/api/traces", q)
	if err != nil {
		return nil, err
	}
	var spans []Span
	seen := map[string]bool{}
	for _, tr := range traces {
		for _, js := range tr.Spans {
			s, err := js.span(tr.Processes)
			if err != nil {
				return nil, err
			}
			if k := s.TraceID + "/" + s.SpanID; !seen[k] {
				seen[k] = true
				spans = append(spans, s)
			}
		}
	}
	return spans, nil
}

// Jaeger's JSON model (github.com/jaegertracing/jaeger/model/json).
type jTrace struct {
	TraceID   string              `json:"traceID"`
	Spans     []jSpan             `json:"spans"`
	Processes map[string]jProcess `json:"processes"`
}

type jSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64    `json:"startTime"` // µs since the epoch
	Duration  int64    `json:"duration"`  // µs
	Tags      []jTag   `json:"tags"`
	ProcessID string   `json:"processID"`
	Warnings  []string `json:"warnings"`
}

type jProcess struct {
	ServiceName string `json:"serviceName"`
	Tags        []jTag `json:"tags"`
}

type jTag struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

func (js jSpan) span(procs map[string]jProcess) (Span, error) {
	s := Span{
		TraceID:    js.TraceID,
		SpanID:     js.SpanID,
		Name:       js.OperationName,
		StartUs:    js.StartTime,
		DurationUs: js.Duration,
		Warnings:   js.Warnings,
	}
	for _, r := range js.References {
		if r.RefType == "CHILD_OF" && r.TraceID == js.TraceID {
			s.ParentID = r.SpanID
		}
	}
	var err error
	if s.Tags, err = decodeTags(js.Tags); err != nil {
		return s, fmt.Errorf("span %s: %w", js.SpanID, err)
	}
	p, ok := procs[js.ProcessID]
	if !ok {
		return s, fmt.Errorf("span %s: process %q missing from trace", js.SpanID, js.ProcessID)
	}
	s.Service = p.ServiceName
	if s.Resource, err = decodeTags(p.Tags); err != nil {
		return s, fmt.Errorf("span %s process: %w", js.SpanID, err)
	}
	return s, nil
}

func decodeTags(tags []jTag) (map[string]TagValue, error) {
	m := make(map[string]TagValue, len(tags))
	for _, t := range tags {
		v := TagValue{Type: t.Type}
		var err error
		switch t.Type {
		case "string", "binary":
			var s string
			err = json.Unmarshal(t.Value, &s)
			v.V = s
		case "bool":
			var b bool
			err = json.Unmarshal(t.Value, &b)
			v.V = b
		case "int64":
			var n json.Number
			if err = json.Unmarshal(t.Value, &n); err == nil {
				v.V, err = n.Int64()
			}
		case "float64":
			var n json.Number
			if err = json.Unmarshal(t.Value, &n); err == nil {
				v.V, err = n.Float64()
			}
		default:
			v.V = string(t.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("tag %s (%s) = %s: %w", t.Key, t.Type, t.Value, err)
		}
		if _, dup := m[t.Key]; dup {
			return nil, fmt.Errorf("tag %s appears twice", t.Key)
		}
		m[t.Key] = v
	}
	return m, nil
}

// Span is one span as Jaeger's API returns it, with its process resolved.
type Span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	StartUs, DurationUs       int64 // Jaeger keeps microseconds
	Service                   string
	Tags                      map[string]TagValue // span tags (attributes, span.kind, status)
	Resource                  map[string]TagValue // process tags (resource attributes)
	Warnings                  []string
}

// EndUs is the span's end in microseconds since the epoch.
func (s Span) EndUs() int64 { return s.StartUs + s.DurationUs }

// TagValue is a typed tag value: V is a string, int64, float64 or bool as
// Type ("string", "int64", "float64", "bool", "binary") says.
type TagValue struct {
	Type string
	V    any
}

func (v TagValue) String() string {
	if s, ok := v.V.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v.V)
}

// str returns the tag's string value, or "" when it is missing or not a string.
func (s Span) str(key string) string {
	v, _ := s.Tags[key].V.(string)
	return v
}

func (s Span) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q service=%q kind=%s start=%s dur=%dµs trace=%s span=%s",
		s.Name, s.Service, s.str("span.kind"), time.UnixMicro(s.StartUs).UTC().Format("15:04:05.000000"),
		s.DurationUs, s.TraceID, s.SpanID)
	if s.ParentID != "" {
		fmt.Fprintf(&b, " parent=%s", s.ParentID)
	}
	keys := make([]string, 0, len(s.Tags))
	for k := range s.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("\n      tags:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s(%s)", k, s.Tags[k], s.Tags[k].Type)
	}
	if len(s.Warnings) > 0 {
		fmt.Fprintf(&b, "\n      warnings: %q", s.Warnings)
	}
	return b.String()
}

// Query selects spans: those of Service (required: Jaeger searches by
// service) with the given span.kind, tags (typed, exact) and url.path (one
// of Paths), each when set.
type Query struct {
	Service string
	Kind    string // "server", "client" or "" for any
	Tags    map[string]any
	Paths   []string
}

func (q Query) String() string {
	s := "service=" + strconv.Quote(q.Service)
	if q.Kind != "" {
		s += " kind=" + q.Kind
	}
	keys := make([]string, 0, len(q.Tags))
	for k := range q.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%v", k, q.Tags[k])
	}
	if len(q.Paths) > 0 {
		s += fmt.Sprintf(" %s in %q", attrPath, q.Paths)
	}
	return s
}

func (q Query) match(s Span) bool {
	if s.Service != q.Service {
		return false
	}
	if q.Kind != "" && s.str("span.kind") != q.Kind {
		return false
	}
	for k, want := range q.Tags {
		got, ok := s.Tags[k]
		if !ok || !sameValue(got.V, want) {
			return false
		}
	}
	return len(q.Paths) == 0 || slices.Contains(q.Paths, s.str(attrPath))
}

// find returns the spans of q currently in Jaeger.
func (c *jaegerClient) find(ctx context.Context, q Query) ([]Span, error) {
	all, err := c.Spans(ctx, q.Service)
	if err != nil {
		return nil, err
	}
	var out []Span
	for _, s := range all {
		if q.match(s) {
			out = append(out, s)
		}
	}
	sortSpans(out, nil)
	return out, nil
}

// collectSpans polls Jaeger until at least want spans match q or timeout
// passes, then looks again after settle and requires exactly want. The
// error says what was found.
func (c *jaegerClient) collectSpans(q Query, want int, timeout, settle time.Duration) ([]Span, error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+settle+15*time.Second)
	defer cancel()
	var (
		spans   []Span
		lastErr error
	)
	err := poll(timeout, 100*time.Millisecond, nil, func() error {
		spans, lastErr = c.find(ctx, q)
		if lastErr != nil {
			return lastErr
		}
		if len(spans) < want {
			return fmt.Errorf("%d of %d spans", len(spans), want)
		}
		return nil
	})
	if err != nil {
		return spans, c.report(ctx, q, began, fmt.Sprintf("want %d spans matching {%s} within %v, found %d", want, q, timeout, len(spans)), spans, lastErr)
	}
	time.Sleep(settle) // the exporter's next flush windows: catch extra spans
	spans, err = c.find(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(spans) != want {
		return spans, c.report(ctx, q, began, fmt.Sprintf("want exactly %d spans matching {%s}, found %d (after %v more)", want, q, len(spans), settle), spans, nil)
	}
	return spans, nil
}

// report builds an error with what Jaeger holds: the spans found; when q
// filters on tags or paths, the latest spans of q's service and kind without
// those filters; the service names Jaeger knows; and when nothing was found,
// spans matching q under other service names that started at most 10 s
// before the wait began.
func (c *jaegerClient) report(ctx context.Context, q Query, began time.Time, what string, spans []Span, lastErr error) error {
	var b strings.Builder
	b.WriteString(what)
	if lastErr != nil {
		fmt.Fprintf(&b, "\n  last error: %v", lastErr)
	}
	for i, s := range spans {
		fmt.Fprintf(&b, "\n  [%d] %s", i, s)
	}
	if len(q.Tags) > 0 || len(q.Paths) > 0 {
		broad := Query{Service: q.Service, Kind: q.Kind}
		if others, err := c.find(ctx, broad); err == nil && len(others) > 0 {
			const keep = 10
			fmt.Fprintf(&b, "\n  latest spans matching {%s} (without the tag and path filters), %d in all:", broad, len(others))
			for _, s := range others[max(0, len(others)-keep):] {
				fmt.Fprintf(&b, "\n    %s", s)
			}
		}
	}
	svcs, err := c.Services(ctx)
	if err != nil {
		fmt.Fprintf(&b, "\n  services: (%v)", err)
		return errors.New(b.String())
	}
	fmt.Fprintf(&b, "\n  services in jaeger: %q", svcs)
	if len(spans) == 0 {
		// Nothing under this service: show recent spans under other names
		// that otherwise match (a wrong service name is a common cause).
		var others []Span
		since := began.Add(-10 * time.Second).UnixMicro()
		for _, svc := range svcs {
			if svc == q.Service || noisyServices[svc] {
				continue
			}
			alt := q
			alt.Service = svc
			found, err := c.find(ctx, alt)
			if err != nil {
				continue
			}
			for _, s := range found {
				if s.StartUs >= since {
					others = append(others, s)
				}
			}
		}
		sortSpans(others, nil)
		if len(others) > 0 {
			const keep = 10
			fmt.Fprintf(&b, "\n  spans matching the query under OTHER services, from 10 s before the wait on, %d in all (latest %d):", len(others), min(keep, len(others)))
			for _, s := range others[max(0, len(others)-keep):] {
				fmt.Fprintf(&b, "\n    %s", s)
			}
		}
	}
	return errors.New(b.String())
}

// noisyServices are the processes that talk HTTP all through the run (the
// test binary polling Jaeger's API, Jaeger answering): never candidates
// for a test's missing spans.
var noisyServices = map[string]bool{
	filepath.Base(os.Args[0]): true,
	jaegerServiceName:         true,
}

// waitSpans waits for exactly want spans matching q (see collectSpans) and
// returns them in time order; it fails the test otherwise.
func waitSpans(t *testing.T, q Query, want int, timeout time.Duration) []Span {
	t.Helper()
	spans, err := suite.jaeger.client.collectSpans(q, want, timeout, settleTime)
	if err != nil {
		t.Fatal(err)
	}
	return spans
}

// sortSpans orders spans by start, then end, then by the position of their
// url.path in order (Jaeger's microseconds cannot order exchanges read in
// one syscall, such as pipelined requests), then by span id.
func sortSpans(spans []Span, order []string) {
	rank := func(s Span) int {
		if i := slices.Index(order, s.str(attrPath)); i >= 0 {
			return i
		}
		return len(order)
	}
	sort.SliceStable(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		switch {
		case a.StartUs != b.StartUs:
			return a.StartUs < b.StartUs
		case a.EndUs() != b.EndUs():
			return a.EndUs() < b.EndUs()
		case rank(a) != rank(b):
			return rank(a) < rank(b)
		}
		return a.SpanID < b.SpanID
	})
}

// jaegerProblems returns the last n warning and error lines of Jaeger's log
// (zap console format: time, level, caller, message, fields), without the
// expected warning about the UI assets a source build does not embed.
func jaegerProblems(path string, n int) string {
	var out []string
	for _, l := range strings.Split(tail(path, 2000), "\n") {
		if (strings.Contains(l, "\twarn\t") || strings.Contains(l, "\terror\t")) && !strings.Contains(l, "ui assets not embedded") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return "  (none)"
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}
