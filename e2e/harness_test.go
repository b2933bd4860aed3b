package e2e

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestHarnessJaegerRoundTrip proves the harness without the agent: spans
// sent to Jaeger over OTLP gRPC by the test itself are found by the Jaeger
// client, and the span checks accept them as sent and reject every kind of
// difference (kind, name, service, attribute type and value, status, time
// window to the microsecond, span counts).
func TestHarnessJaegerRoundTrip(t *testing.T) {
	s := needSuite(t)
	svc := uniqueName("e2e-harness")
	// A window in the past with nanosecond parts, so the microsecond
	// rounding of the checks is exercised.
	from := time.Now().Add(-time.Second).Truncate(time.Microsecond).Add(300 * time.Nanosecond)
	to := from.Add(10 * time.Millisecond)
	const srvPort, cliPort = 8080, 54321
	ua := "curl/7.88.1"
	exs := []exchange{
		{method: "GET", path: "/items/7", name: "GET /items/{id}", status: 200, from: from, to: to, clientPort: cliPort, userAgent: ua},
		{method: "GET", path: "/status/404", name: "GET /status/{id}", status: 404, from: from, to: to, userAgent: ua},
		{method: "GET", path: "/status/503", name: "GET /status/{id}", status: 503, from: from, to: to, clientPort: cliPort, userAgent: ua},
	}
	type sent struct {
		want       Want
		start, end time.Time
		status     ptrace.StatusCode
	}
	spans := []sent{
		{serverWant(svc, srvPort, exs[0]), from.Add(1500 * time.Nanosecond), from.Add(3*time.Millisecond + 700*time.Nanosecond), ptrace.StatusCodeUnset},
		{clientWant(svc, srvPort, exs[1]), from.Add(4 * time.Millisecond), from.Add(6 * time.Millisecond), ptrace.StatusCodeError},
		// Exactly on both window edges: inside.
		{serverWant(svc, srvPort, exs[2]), from, to, ptrace.StatusCodeError},
		// Status Ok is not Error either.
		{serverWant(svc, srvPort, exchange{method: "POST", path: "/upload", name: "POST /upload", status: 200, from: from, to: to, clientPort: cliPort, userAgent: ua}),
			from.Add(7 * time.Millisecond), from.Add(8 * time.Millisecond), ptrace.StatusCodeOk},
	}

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(attrServiceName, svc)
	rs.Resource().Attributes().PutInt("process.pid", 4242)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("weft-e2e-harness")
	for _, sp := range spans {
		span := ss.Spans().AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		rand.Read(tid[:])
		rand.Read(sid[:])
		span.SetTraceID(tid)
		span.SetSpanID(sid)
		span.SetName(sp.want.Name)
		span.SetKind(ptrace.SpanKindServer)
		if sp.want.Kind == "client" {
			span.SetKind(ptrace.SpanKindClient)
		}
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.end))
		span.Status().SetCode(sp.status)
		if err := span.Attributes().FromRaw(sp.want.Attrs); err != nil {
			t.Fatal(err)
		}
	}
	exportOTLP(t, s.jaeger.otlpGRPC, td)

	got := waitSpans(t, Query{Service: svc}, len(spans), 10*time.Second)
	for i, sp := range spans {
		var match *Span
		for j := range got {
			if got[j].Name == sp.want.Name && got[j].StartUs == sp.start.UnixMicro() {
				match = &got[j]
			}
		}
		if match == nil {
			t.Errorf("sent span %d (%s at %d) not found in %v", i, sp.want.Name, sp.start.UnixMicro(), got)
			continue
		}
		checkSpan(t, "sent span "+sp.want.Name, *match, sp.want)
		// Jaeger floors to microseconds: start and duration.
		if wantDur := sp.end.Sub(sp.start).Microseconds(); match.DurationUs != wantDur {
			t.Errorf("span %d: duration %dµs, want %dµs", i, match.DurationUs, wantDur)
		}
		if pid := match.Resource["process.pid"]; !sameValue(pid.V, 4242) {
			t.Errorf("span %d: resource process.pid = %s (%s), want 4242 (int64)", i, pid, pid.Type)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	server := got[0]
	for _, g := range got {
		if g.StartUs == spans[0].start.UnixMicro() {
			server = g
		}
	}

	// Filters: kind and typed tags.
	if c := waitSpans(t, Query{Service: svc, Kind: "client"}, 1, 5*time.Second); c[0].Name != "GET /status/{id}" {
		t.Errorf("kind filter found %s", c[0])
	}
	waitSpans(t, Query{Service: svc, Kind: "server", Tags: map[string]any{attrStatus: 503}}, 1, 5*time.Second)
	waitSpans(t, Query{Service: svc, Tags: map[string]any{attrStatus: "503"}}, 0, 5*time.Second) // a string is not the int
	waitSpans(t, Query{Service: uniqueName("e2e-nobody")}, 0, 5*time.Second)
	waitSpans(t, Query{Service: svc, Paths: []string{"/items/7", "/upload", "/elsewhere"}}, 2, 5*time.Second)

	// The checks reject what differs.
	base := spans[0].want
	rejects := []struct {
		what string
		edit func(w *Want)
		says string
	}{
		{"kind", func(w *Want) { w.Kind = "client" }, `kind "server", want "client"`},
		{"name", func(w *Want) { w.Name = "GET /items/7" }, `name "GET /items/{id}", want "GET /items/7"`},
		{"service", func(w *Want) { w.Service = "curl" }, `want "curl"`},
		{"attribute type", func(w *Want) { w.Attrs = map[string]any{attrServerPort: "8080"} }, `server.port = 8080 (int64), want "8080" (string)`},
		{"attribute value", func(w *Want) { w.Attrs = map[string]any{attrStatus: 201} }, `http.response.status_code = 200 (int64), want 201 (int64)`},
		{"attribute missing", func(w *Want) { w.Attrs = map[string]any{"url.query": "a=1"} }, `attribute url.query missing`},
		{"status", func(w *Want) { w.Error = true }, `want Error`},
		{"start before window", func(w *Want) { w.From = time.UnixMicro(server.StartUs + 1) }, `1µs before the window`},
		{"end after window", func(w *Want) { w.To = time.UnixMicro(server.EndUs() - 1) }, `1µs after the window`},
		{"start after window", func(w *Want) { w.From, w.To = from.Add(-time.Hour), from.Add(-time.Minute) }, `after the window`},
	}
	for _, r := range rejects {
		w := base
		r.edit(&w)
		p := spanProblems(server, w)
		if len(p) != 1 && r.what != "start after window" || !strings.Contains(strings.Join(p, "\n"), r.says) {
			t.Errorf("changed %s: problems %q, want exactly one saying %q", r.what, p, r.says)
		}
	}
	if p := spanProblems(server, base); len(p) != 0 {
		t.Errorf("unchanged want: problems %q", p)
	}
	// An Error span is not accepted as not Error.
	for _, g := range got {
		if g.Name == "GET /status/{id}" && g.str(tagKind) == "client" {
			w := spans[1].want
			w.Error = false
			if p := spanProblems(g, w); len(p) != 1 || !strings.Contains(p[0], "want not Error") {
				t.Errorf("Error span checked as not Error: problems %q", p)
			}
		}
	}

	// Counting: too many and too few are errors that show what was found.
	jc := s.jaeger.client
	if _, err := jc.collectSpans(Query{Service: svc}, len(spans)-1, 2*time.Second, 100*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "want exactly 3 spans") || !strings.Contains(err.Error(), "found 4") {
		t.Errorf("one span too many: error %v", err)
	}
	if _, err := jc.collectSpans(Query{Service: svc}, len(spans)+1, 300*time.Millisecond, 100*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "want 5 spans") || !strings.Contains(err.Error(), "GET /items/{id}") || !strings.Contains(err.Error(), svc) {
		t.Errorf("one span too few: error %v", err)
	}
	if _, err := jc.collectSpans(Query{Service: svc, Tags: map[string]any{attrPath: "/nowhere"}}, 1, 300*time.Millisecond, 0); err == nil ||
		!strings.Contains(err.Error(), "without the tag and path filters") {
		t.Errorf("tag filter miss: error %v", err)
	}
}

// exportOTLP sends td to the OTLP gRPC receiver at addr.
func exportOTLP(t *testing.T, addr string, td ptrace.Traces) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		t.Fatalf("otlp export to %s: %v", addr, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedSpans() != 0 {
		t.Fatalf("otlp export to %s: %d spans rejected: %s", addr, ps.RejectedSpans(), ps.ErrorMessage())
	}
}
