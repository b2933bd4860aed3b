package exporter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// consoleKeys are the attributes worth a place on a span's console line,
// in the order shown; the others are only counted.
var consoleKeys = []attribute.Key{
	semconv.HTTPRequestMethodKey,
	semconv.URLFullKey,
	semconv.URLPathKey,
	semconv.HTTPRouteKey,
	semconv.HTTPResponseStatusCodeKey,
	semconv.RPCSystemNameKey,
	semconv.RPCMethodKey,
	semconv.RPCResponseStatusCodeKey,
	semconv.DBSystemNameKey,
	semconv.DBOperationNameKey,
	semconv.DBQueryTextKey,
	semconv.DNSQuestionNameKey,
	semconv.ServerAddressKey,
	semconv.ServerPortKey,
	semconv.ErrorTypeKey,
}

// maxConsoleValue keeps one long value (a SQL query) from hiding the rest.
const maxConsoleValue = 80

// consoleSender writes one line per span for a person watching a terminal:
//
//	2026-01-02T15:04:05.000Z checkout SERVER "GET /orders" 1.234ms OK http.request.method=GET ... +2 trace=...
type consoleSender struct {
	w   io.Writer
	buf bytes.Buffer
}

func newConsoleSender(w io.Writer) *consoleSender { return &consoleSender{w: w} }

func (s *consoleSender) Export(_ context.Context, td ptrace.Traces) error {
	s.buf.Reset()
	for _, rs := range td.ResourceSpans().All() {
		service := "-"
		if v, ok := rs.Resource().Attributes().Get(string(semconv.ServiceNameKey)); ok {
			service = v.AsString()
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.line(service, sp)
			}
		}
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return fmt.Errorf("write console: %w", err)
	}
	return nil
}

func (s *consoleSender) line(service string, sp ptrace.Span) {
	b := &s.buf
	start := sp.StartTimestamp().AsTime()
	b.WriteString(start.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte(' ')
	b.WriteString(service)
	b.WriteByte(' ')
	b.WriteString(strings.ToUpper(sp.Kind().String()))
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(sp.Name()))
	b.WriteByte(' ')
	b.WriteString(sp.EndTimestamp().AsTime().Sub(start).Round(time.Microsecond).String())
	b.WriteByte(' ')
	switch sp.Status().Code() {
	case ptrace.StatusCodeOk:
		b.WriteString("OK")
	case ptrace.StatusCodeError:
		b.WriteString("ERROR")
		if msg := sp.Status().Message(); msg != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(msg))
		}
	default:
		b.WriteString("UNSET")
	}
	attrs := sp.Attributes()
	shown := 0
	for _, k := range consoleKeys {
		v, ok := attrs.Get(string(k))
		if !ok {
			continue
		}
		shown++
		b.WriteByte(' ')
		b.WriteString(string(k))
		b.WriteByte('=')
		b.WriteString(consoleValue(v))
	}
	if rest := attrs.Len() - shown; rest > 0 {
		fmt.Fprintf(b, " +%d", rest)
	}
	b.WriteString(" trace=")
	b.WriteString(sp.TraceID().String())
	b.WriteByte('\n')
}

// consoleValue shortens a value and quotes it when it has spaces, so the
// line still splits into fields.
func consoleValue(v pcommon.Value) string {
	s := v.AsString()
	if len(s) > maxConsoleValue {
		s = truncate(s, maxConsoleValue) + "..."
	}
	if v.Type() == pcommon.ValueTypeStr && (s == "" || strings.ContainsAny(s, " \t\n\"=")) {
		return strconv.Quote(s)
	}
	return s
}

func (s *consoleSender) Shutdown(context.Context) error { return nil }

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
