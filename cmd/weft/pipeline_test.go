package main

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftrace/weft/bpf"
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/exporter"
	"github.com/weftrace/weft/procmeta"
	"github.com/weftrace/weft/protocols/detect"
	"github.com/weftrace/weft/servicemap"
)

// countingSender counts the spans that reach OTLP form.
type countingSender struct{ spans atomic.Int64 }

func (s *countingSender) Export(_ context.Context, td ptrace.Traces) error {
	s.spans.Add(int64(td.SpanCount()))
	return nil
}
func (s *countingSender) Shutdown(context.Context) error { return nil }

// pipeline is the agent's user-space chain, fed decoded kernel events.
type pipeline struct {
	sink   *eventSink
	corr   *correlate.Correlator
	exp    *exporter.Exporter
	smap   *servicemap.Map
	sender *countingSender
}

func newPipeline(tb testing.TB) *pipeline {
	cfg := exporter.DefaultConfig()
	cfg.MaxQueueSize = 1 << 20
	cfg.ScheduleDelay = 50 * time.Millisecond
	sender := &countingSender{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	exp, err := exporter.NewWithSender(cfg, sender, log)
	if err != nil {
		tb.Fatal(err)
	}
	procs := procmeta.NewCache(procmeta.Config{ProcRoot: tb.TempDir()})
	smap := servicemap.New(servicemap.Config{})
	corr := correlate.New(correlate.Config{Clock: bpf.NewClock().Wall}, procs, spanSinks(exp, smap))
	table := conn.NewTable(conn.TableConfig{}, detect.New(corr.Add, detect.Options{}))
	return &pipeline{sink: &eventSink{table: table, procs: procs, corr: corr, evictEvery: int64(time.Second)}, corr: corr, exp: exp, smap: smap, sender: sender}
}

// sample lays a data event and its payload out as the ring buffer would.
func sample(ev bpf.DataEvent, payload []byte) (*bpf.DataEvent, []byte) {
	buf := make([]byte, int(unsafe.Sizeof(ev))+len(payload))
	p := (*bpf.DataEvent)(unsafe.Pointer(&buf[0]))
	*p = ev
	copy(buf[unsafe.Sizeof(ev):], payload)
	return p, buf[unsafe.Sizeof(ev):]
}

// TestPipelineSpans checks the wiring: one request/response seen from both
// ends gives one client and one server span in OTLP form, joined, and the
// event goroutine's timer (Tick) ends the join wait.
func TestPipelineSpans(t *testing.T) {
	p := newPipeline(t)
	p.exchanges(3)
	p.sink.Tick(int64(time.Second) + int64(correlate.DefaultJoinWait))
	if st := p.corr.JoinStats(); st.Pairs != 3 || st.Held != 6 {
		t.Fatalf("join stats after the wait %+v, want 3 pairs, 6 spans kept as possible parents", st)
	}
	p.sink.Tick(int64(time.Second) + 2*int64(correlate.DefaultJoinWait))
	if st := p.corr.JoinStats(); st.Held != 0 {
		t.Fatalf("join stats after expiry %+v, want none held", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.sender.spans.Load(); got != 6 {
		t.Fatalf("spans exported = %d, want 6 (3 exchanges x client+server)", got)
	}
}

var (
	request  = []byte("GET /items/42 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
	response = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\nDate: Wed, 25 Nov 2026 18:00:00 GMT\r\n\r\n{\"id\":42,\"x\"}")
)

// exchanges feeds n keep-alive exchanges on one connection seen from both
// ends: 4 data events per exchange. It returns the number of events.
func (p *pipeline) exchanges(n int) int {
	client := bpf.ConnEvent{Kind: bpf.EventConnOpen, Tgid: 100, Tid: 100, Fd: 5, Gen: 1, Family: 2, Sport: 40000, Dport: 8000, Role: bpf.RoleClient}
	client.Saddr[0], client.Daddr[0] = 127, 127
	server := bpf.ConnEvent{Kind: bpf.EventConnOpen, Tgid: 200, Tid: 200, Fd: 7, Gen: 2, Family: 2, Sport: 8000, Dport: 40000, Role: bpf.RoleServer}
	server.Saddr[0], server.Daddr[0] = 127, 127
	copy(client.Comm[:], "curl")
	copy(server.Comm[:], "srv")
	p.sink.ConnOpen(&client)
	p.sink.ConnOpen(&server)

	cReq, cReqB := sample(bpf.DataEvent{Kind: bpf.EventData, Tgid: 100, Fd: 5, Gen: 1, Dir: bpf.DirEgress}, request)
	sReq, sReqB := sample(bpf.DataEvent{Kind: bpf.EventData, Tgid: 200, Fd: 7, Gen: 2, Dir: bpf.DirIngress}, request)
	sResp, sRespB := sample(bpf.DataEvent{Kind: bpf.EventData, Tgid: 200, Fd: 7, Gen: 2, Dir: bpf.DirEgress}, response)
	cResp, cRespB := sample(bpf.DataEvent{Kind: bpf.EventData, Tgid: 100, Fd: 5, Gen: 1, Dir: bpf.DirIngress}, response)
	ts := uint64(1_000_000)
	for i := 0; i < n; i++ {
		for _, e := range []struct {
			ev *bpf.DataEvent
			b  []byte
		}{{cReq, cReqB}, {sReq, sReqB}, {sResp, sRespB}, {cResp, cRespB}} {
			e.ev.Offset = uint64(i) * uint64(len(e.b))
			e.ev.Len, e.ev.Captured = uint32(len(e.b)), uint32(len(e.b))
			e.ev.TsEnterNs, e.ev.TsExitNs = ts, ts+1000
			ts += 2000
			p.sink.Data(e.ev, e.b)
		}
	}
	return 4 * n
}

// BenchmarkEventsToPdata measures decoded kernel events through the whole
// user-space chain (conn table, detection, HTTP/1 parser, correlator,
// exporter queue and service map, batch conversion to pdata) on one core.
func BenchmarkEventsToPdata(b *testing.B) {
	p := newPipeline(b)
	b.ReportAllocs()
	b.ResetTimer()
	events := p.exchanges(b.N)
	p.corr.FlushAll()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.exp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got, want := p.sender.spans.Load(), int64(2*b.N); got != want {
		b.Fatalf("spans = %d, want %d", got, want)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "spans/s")
}
