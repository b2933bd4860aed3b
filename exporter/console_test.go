package exporter

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/correlate"
)

func TestConsoleLines(t *testing.T) {
	server := httpSpan(procCheckout, trace.SpanKindServer, "GET /orders/{id}", 1)
	server.StatusCode = codes.Ok
	client := httpSpan(procCurl, trace.SpanKindClient, "GET", 2)
	client.StatusCode = codes.Error
	client.StatusMessage = "connection reset"
	db := correlate.Span{
		TraceID: traceID(9), SpanID: spanID(9), Name: "SELECT", Kind: trace.SpanKindClient,
		Start: t0, End: t0.Add(2*time.Second + 345678*time.Nanosecond),
		Attributes: []attribute.KeyValue{
			semconv.DBSystemNamePostgreSQL,
			semconv.DBQueryText("SELECT id, customer, total, created_at FROM orders WHERE customer = $1 ORDER BY created_at DESC LIMIT 50"),
		},
	}

	var out bytes.Buffer
	s := newConsoleSender(&out)
	if err := s.Export(context.Background(), newConverter("v", nil).convert([]correlate.Span{server, client, db})); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`2026-03-14T15:09:26.536Z checkout SERVER "GET /orders/{id}" 1.5ms OK http.request.method=GET url.path=/orders/1 http.route=/orders/{id} http.response.status_code=200 server.address=checkout.shop.svc server.port=8080 +4 trace=0102030405060708090a0b0c0d0e0f10`,
		`2026-03-14T15:09:26.537Z curl CLIENT "GET" 1.5ms ERROR "connection reset" http.request.method=GET url.path=/orders/2 http.route=/orders/{id} http.response.status_code=200 server.address=checkout.shop.svc server.port=8080 +4 trace=02030405060708090a0b0c0d0e0f1011`,
		`2026-03-14T15:09:26.535Z - CLIENT "SELECT" 2.000346s UNSET db.system.name=postgresql db.query.text="SELECT id, customer, total, created_at FROM orders WHERE customer = $1 ORDER BY ..." trace=090a0b0c0d0e0f101112131415161718`,
		``,
	}, "\n")
	if got := out.String(); got != want {
		t.Errorf("console output:\n%s\nwant:\n%s", got, want)
	}
}

func TestTruncateKeepsRunesWhole(t *testing.T) {
	if got := truncate("héllo", 2); got != "h" {
		t.Errorf("truncate(héllo, 2) = %q, want h (é is two bytes)", got)
	}
	if got := truncate("abc", 5); got != "abc" {
		t.Errorf("truncate(abc, 5) = %q", got)
	}
}
