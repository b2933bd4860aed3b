package otlpsink

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestSinkCountsSpansByServerPort(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, port := range []int64{8080, 8080, 5432, 0} {
		sp := spans.AppendEmpty()
		sp.SetName("s")
		if i < 3 {
			sp.Attributes().PutInt("server.port", port)
		}
	}
	cc, err := grpc.NewClient(strings.TrimPrefix(s.Endpoint(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	if n, all := s.Spans(8080); n != 2 || all != 4 {
		t.Errorf("port 8080: %d of %d, want 2 of 4", n, all)
	}
	if n, _ := s.Spans(5432); n != 1 {
		t.Errorf("port 5432: %d, want 1", n)
	}
}
