package main

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftrace/weft/bpf"
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/procmeta"
	"github.com/weftrace/weft/protocols/detect"
)

// digPipeline is the user-space chain with the spans kept, as dig is seen
// by weft: pid 300 has exited before /proc is read (the fake /proc is
// empty), its queries move on worker thread 301, which dig names
// isc-net-0000, and the kernel's process-info event (from that thread) is
// the only record of its argv.
type digPipeline struct {
	sink  *eventSink
	corr  *correlate.Correlator
	spans []correlate.Span
}

const (
	digPID    = 300
	digWorker = 301
	digComm   = "isc-net-0000"
)

func newDigPipeline(t *testing.T) *digPipeline {
	p := &digPipeline{}
	procs := procmeta.NewCache(procmeta.Config{ProcRoot: t.TempDir(), HostName: "h"})
	p.corr = correlate.New(correlate.Config{Clock: func(ns int64) time.Time { return time.Unix(0, ns) }}, procs, func(s correlate.Span) { p.spans = append(p.spans, s) })
	table := conn.NewTable(conn.TableConfig{}, detect.New(p.corr.Add, detect.Options{}))
	p.sink = &eventSink{table: table, procs: procs, corr: p.corr, evictEvery: int64(time.Second)}

	info := bpf.ProcInfoEvent{Kind: bpf.EventProcInfo, Tgid: digPID}
	copy(info.Comm[:], digComm)
	p.sink.ProcessInfo(&info, []byte("dig\x00@127.0.0.1\x00-p\x005353\x00x.test\x00"), []byte("PATH=/usr/bin\x00"))

	open := bpf.ConnEvent{Kind: bpf.EventConnOpen, Tgid: digPID, Tid: digWorker, Fd: 9, Gen: 1, Family: 2, Sport: 41000, Dport: 5353, Role: bpf.RoleClient, Proto: uint16(bpf.ProtoUDP), TsNs: 1_000_000}
	open.Saddr[0], open.Daddr[0] = 127, 127
	open.Saddr[3], open.Daddr[3] = 1, 1
	copy(open.Comm[:], digComm)
	p.sink.ConnOpen(&open)
	return p
}

// datagram feeds one DNS message moved by dig's worker thread at ts.
func (p *digPipeline) datagram(t *testing.T, dir uint8, ts uint64, response bool) {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, Response: response, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("x.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	ev := bpf.DataEvent{Kind: bpf.EventData, Tgid: digPID, Tid: digWorker, Fd: 9, Gen: 1, Dir: dir, Proto: bpf.ProtoUDP,
		Len: uint32(len(msg)), Captured: uint32(len(msg)), TsEnterNs: ts, TsExitNs: ts + 1000, PeerFamily: 2, PeerPort: 5353}
	ev.Peer[0], ev.Peer[3] = 127, 1
	e, payload := sample(ev, msg)
	p.sink.Data(e, payload)
}

func (p *digPipeline) close(ts uint64) []correlate.Span {
	p.sink.ConnClose(&bpf.ConnEvent{Kind: bpf.EventConnClose, Tgid: digPID, Tid: digWorker, Fd: 9, Gen: 1, TsNs: ts})
	p.corr.FlushAll()
	return p.spans
}

func attr(s correlate.Span, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// TestWorkerThreadServiceName: dig's CLIENT span is named after dig (its
// argv[0]), not after the worker thread that moved the bytes, even though
// dig has exited and every kernel event carries the worker's comm.
func TestWorkerThreadServiceName(t *testing.T) {
	p := newDigPipeline(t)
	p.datagram(t, bpf.DirEgress, 2_000_000, false)
	p.datagram(t, bpf.DirIngress, 2_500_000, true)
	spans := p.close(3_000_000)
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Process == nil || s.Process.ServiceName != "dig" || s.Process.ExeName != "dig" {
		t.Fatalf("process = %+v, want service and executable dig", s.Process)
	}
	for _, kv := range s.Process.Attributes {
		if kv.Value.String() == digComm {
			t.Errorf("resource attribute %s is the worker thread's name", kv.Key)
		}
	}
	if got := attr(s, semconv.ErrorTypeKey); got != "" {
		t.Errorf("answered query has error.type %q", got)
	}
}

// TestWorkerThreadCommNotKept: a connection opened by a thread other than
// the leader does not carry that thread's comm as the process's name.
func TestWorkerThreadCommNotKept(t *testing.T) {
	procs := procmeta.NewCache(procmeta.Config{ProcRoot: t.TempDir(), HostName: "h"})
	var infos []*conn.Info
	table := conn.NewTable(conn.TableConfig{}, func(info *conn.Info) conn.Handler {
		infos = append(infos, info)
		return nopHandler{}
	})
	corr := correlate.New(correlate.Config{Clock: bpf.NewClock().Wall}, procs, func(correlate.Span) {})
	sink := &eventSink{table: table, procs: procs, corr: corr}
	for _, ev := range []bpf.ConnEvent{
		{Kind: bpf.EventConnOpen, Tgid: 400, Tid: 401, Fd: 3, Gen: 1, Family: 2, Role: bpf.RoleClient},
		{Kind: bpf.EventConnOpen, Tgid: 400, Tid: 400, Fd: 4, Gen: 1, Family: 2, Role: bpf.RoleClient},
	} {
		copy(ev.Comm[:], map[uint32]string{400: "app", 401: "worker-7"}[ev.Tid])
		sink.ConnOpen(&ev)
		sink.Data(sample(bpf.DataEvent{Kind: bpf.EventData, Tgid: 400, Tid: ev.Tid, Fd: ev.Fd, Gen: 1, Dir: bpf.DirEgress, Len: 1, Captured: 1}, []byte("x")))
	}
	if len(infos) != 2 || infos[0].Comm != "" || infos[1].Comm != "app" {
		for _, i := range infos {
			t.Logf("%+v", *i)
		}
		t.Fatalf("comms kept: want \"\" for the worker's connection, \"app\" for the leader's")
	}
}

type nopHandler struct{}

func (nopHandler) Segment(*conn.Segment) {}
func (nopHandler) Close(int64)           {}

// TestDigRefused: dig asks a port where nothing listens. The kernel events
// show the query, no response (the ECONNREFUSED read moved no bytes) and
// the close 0.3 ms later: the span is an Error with error.type=no_response,
// not a timeout, and ends at the close.
func TestDigRefused(t *testing.T) {
	p := newDigPipeline(t)
	p.datagram(t, bpf.DirEgress, 2_000_000, false)
	spans := p.close(2_300_000)
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	if got := attr(s, semconv.ErrorTypeKey); got != correlate.ErrorTypeNoResponse {
		t.Errorf("error.type = %q, want %q", got, correlate.ErrorTypeNoResponse)
	}
	if s.StatusCode.String() != "Error" || s.End.Sub(s.Start) != 300*time.Microsecond {
		t.Errorf("status %v, duration %v; want Error, 300µs", s.StatusCode, s.End.Sub(s.Start))
	}
	if s.Process == nil || s.Process.ServiceName != "dig" {
		t.Errorf("process = %+v, want dig", s.Process)
	}
}
