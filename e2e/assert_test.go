package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Attribute names (semconv), as Jaeger shows them as tag keys.
var (
	attrMethod       = string(semconv.HTTPRequestMethodKey)
	attrPath         = string(semconv.URLPathKey)
	attrScheme       = string(semconv.URLSchemeKey)
	attrStatus       = string(semconv.HTTPResponseStatusCodeKey)
	attrServerAddr   = string(semconv.ServerAddressKey)
	attrServerPort   = string(semconv.ServerPortKey)
	attrClientAddr   = string(semconv.ClientAddressKey)
	attrPeerAddr     = string(semconv.NetworkPeerAddressKey)
	attrPeerPort     = string(semconv.NetworkPeerPortKey)
	attrProtoVersion = string(semconv.NetworkProtocolVersionKey)
	attrUserAgent    = string(semconv.UserAgentOriginalKey)
	attrServiceName  = string(semconv.ServiceNameKey)
)

// Tags Jaeger derives from OTLP span fields.
const (
	tagKind       = "span.kind"        // "server", "client", ...
	tagStatusCode = "otel.status_code" // "ERROR" or "OK"; absent when Unset
	tagError      = "error"            // true when the status is Error
)

// Want is what one span must be. Attrs values are string, int (compared as
// int64), int64, float64 or bool: the Jaeger tag must have that type and
// value. When To is set, the span must start at or after From and end at or
// before To, within Jaeger's microsecond granularity and nothing more.
type Want struct {
	Service string
	Kind    string
	Name    string
	Error   bool // status Error (Jaeger: error=true, otel.status_code=ERROR); false: anything else
	Attrs   map[string]any
	From    time.Time
	To      time.Time
}

// spanProblems lists every way s differs from w (nil when it matches).
func spanProblems(s Span, w Want) []string {
	var p []string
	if s.Service != w.Service {
		p = append(p, fmt.Sprintf("service %q, want %q", s.Service, w.Service))
	}
	if got := s.str(tagKind); got != w.Kind {
		p = append(p, fmt.Sprintf("kind %q, want %q", got, w.Kind))
	}
	if s.Name != w.Name {
		p = append(p, fmt.Sprintf("name %q, want %q", s.Name, w.Name))
	}
	keys := make([]string, 0, len(w.Attrs))
	for k := range w.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := normalize(w.Attrs[k])
		got, ok := s.Tags[k]
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("attribute %s missing, want %s (%s)", k, TagValue{V: want}, typeName(want)))
		case !sameValue(got.V, want):
			p = append(p, fmt.Sprintf("attribute %s = %s (%s), want %s (%s)", k, got, got.Type, TagValue{V: want}, typeName(want)))
		}
	}
	isErr, _ := s.Tags[tagError].V.(bool)
	code := s.str(tagStatusCode)
	if w.Error && (!isErr || code != "ERROR") {
		p = append(p, fmt.Sprintf("status: error=%v otel.status_code=%q, want Error (error=true otel.status_code=\"ERROR\")", isErr, code))
	}
	if !w.Error && (isErr || code == "ERROR") {
		p = append(p, fmt.Sprintf("status: error=%v otel.status_code=%q, want not Error", isErr, code))
	}
	if !w.To.IsZero() {
		lo, hi := floorMicro(w.From), ceilMicro(w.To)
		win := fmt.Sprintf("[%s, %s]", fmtMicro(lo), fmtMicro(hi))
		if s.StartUs < lo {
			p = append(p, fmt.Sprintf("starts at %s, %dµs before the window %s", fmtMicro(s.StartUs), lo-s.StartUs, win))
		}
		if s.EndUs() > hi {
			p = append(p, fmt.Sprintf("ends at %s, %dµs after the window %s", fmtMicro(s.EndUs()), s.EndUs()-hi, win))
		}
		if s.StartUs > hi {
			p = append(p, fmt.Sprintf("starts at %s, after the window %s", fmtMicro(s.StartUs), win))
		}
	}
	if s.DurationUs < 0 {
		p = append(p, fmt.Sprintf("negative duration %dµs", s.DurationUs))
	}
	return p
}

// checkSpan reports (t.Errorf) every way s differs from w.
func checkSpan(t testing.TB, label string, s Span, w Want) {
	t.Helper()
	if p := spanProblems(s, w); len(p) > 0 {
		t.Errorf("%s:\n    - %s\n    span: %s", label, strings.Join(p, "\n    - "), s)
	}
}

func floorMicro(t time.Time) int64 { return t.UnixMicro() } // floors for times after 1970
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

func fmtMicro(us int64) string { return time.UnixMicro(us).UTC().Format("15:04:05.000000") }

// normalize turns the integer and float kinds a test writes into the types
// decoded Jaeger tags have.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint16:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

func sameValue(got, want any) bool { return got == normalize(want) }

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "int64"
	case float64:
		return "float64"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}

// exchange is one HTTP request/response a test made, with what its spans
// must say.
type exchange struct {
	method     string
	path       string // url.path: the target without the query
	name       string // span name: method and path template
	status     int
	from, to   time.Time // the span window measured around the request
	clientPort int       // the client's local port (network.peer.port of the server span); 0: not known
	userAgent  string
	scheme     string // url.scheme; "" means http
}

func (ex exchange) urlScheme() string {
	if ex.scheme == "" {
		return "http"
	}
	return ex.scheme
}

const loopback = "127.0.0.1"

// serverWant is what the SERVER span of ex, exported for service svc
// listening on srvPort, must be: Error only for 5xx.
func serverWant(svc string, srvPort int, ex exchange) Want {
	attrs := map[string]any{
		attrMethod:       ex.method,
		attrPath:         ex.path,
		attrScheme:       ex.urlScheme(),
		attrStatus:       ex.status,
		attrServerAddr:   loopback,
		attrServerPort:   srvPort,
		attrClientAddr:   loopback,
		attrPeerAddr:     loopback,
		attrProtoVersion: "1.1",
		attrUserAgent:    ex.userAgent,
	}
	if ex.clientPort != 0 {
		attrs[attrPeerPort] = ex.clientPort
	}
	return Want{Service: svc, Kind: "server", Name: ex.name, Error: ex.status >= 500, Attrs: attrs, From: ex.from, To: ex.to}
}

// clientWant is what the CLIENT span of ex, exported for service svc that
// connected to srvPort, must be: Error for 4xx and 5xx.
func clientWant(svc string, srvPort int, ex exchange) Want {
	attrs := map[string]any{
		attrMethod:       ex.method,
		attrPath:         ex.path,
		attrScheme:       ex.urlScheme(),
		attrStatus:       ex.status,
		attrServerAddr:   loopback,
		attrServerPort:   srvPort,
		attrPeerAddr:     loopback,
		attrPeerPort:     srvPort,
		attrProtoVersion: "1.1",
		attrUserAgent:    ex.userAgent,
	}
	return Want{Service: svc, Kind: "client", Name: ex.name, Error: ex.status >= 400, Attrs: attrs, From: ex.from, To: ex.to}
}

// checkExchanges waits for one span of kind per exchange of service svc and
// checks the i-th span (in time order) against the i-th exchange.
func checkExchanges(t *testing.T, svc, kind string, srvPort int, exs []exchange) {
	t.Helper()
	checkExchangesQuery(t, Query{Service: svc, Kind: kind}, srvPort, exs)
}

// checkExchangesByPath is checkExchanges for a service name other runs share
// (an executable name such as "curl"): it counts only the spans whose
// url.path is one of the exchanges' paths, which the test made unique.
func checkExchangesByPath(t *testing.T, svc, kind string, srvPort int, exs []exchange) {
	t.Helper()
	q := Query{Service: svc, Kind: kind}
	for _, ex := range exs {
		q.Paths = append(q.Paths, ex.path)
	}
	checkExchangesQuery(t, q, srvPort, exs)
}

func checkExchangesQuery(t *testing.T, q Query, srvPort int, exs []exchange) {
	t.Helper()
	spans := waitSpans(t, q, len(exs), spanTimeout)
	order := make([]string, len(exs))
	for i, ex := range exs {
		order[i] = ex.path
	}
	sortSpans(spans, order)
	for i, ex := range exs {
		w := serverWant(q.Service, srvPort, ex)
		if q.Kind == "client" {
			w = clientWant(q.Service, srvPort, ex)
		}
		checkSpan(t, fmt.Sprintf("%s span %d of %d (%s %s -> %d)", q.Kind, i+1, len(exs), ex.method, ex.path, ex.status), spans[i], w)
	}
}
