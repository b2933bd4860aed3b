package bpf

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestProgramList: every program of the generated struct is listed once,
// by its C name (longer than the kernel's 15 characters where it is).
func TestProgramList(t *testing.T) {
	spec, err := loadWeft()
	if err != nil {
		t.Fatal(err)
	}
	// Stand-ins: programList only needs non-nil pointers.
	var p weftPrograms
	v := reflect.ValueOf(&p).Elem()
	for i := 0; i < v.NumField(); i++ {
		v.Field(i).Set(reflect.ValueOf(new(ebpf.Program)))
	}
	got := map[string]bool{}
	for _, np := range programList(&p) {
		if got[np.name] {
			t.Errorf("%s listed twice", np.name)
		}
		got[np.name] = true
	}
	for name := range spec.Programs {
		if !got[name] {
			t.Errorf("program %s not listed", name)
		}
	}
	if len(got) != len(spec.Programs) {
		t.Errorf("%d programs listed, the object has %d", len(got), len(spec.Programs))
	}
	if !got["uretprobe_ssl_write_ex"] || !got["exit_read"] {
		t.Errorf("names %v: want the C names", got)
	}
}

// loopbackIO makes a few reads and writes on a loopback TCP connection.
func loopbackIO(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 5)
	for range 10 {
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// programMetrics collects m's reader and returns, per metric name starting
// with weft_bpf_program_, the value per program label.
func programMetrics(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	add := func(name string, attrs attribute.Set, v float64) {
		prog, _ := attrs.Value("program")
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][prog.AsString()] = v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if !strings.HasPrefix(m.Name, "weft_bpf_program_") {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, p.Value)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// TestProgramStats: with Config.ProgramStats every loaded program has its
// run count and run time exported, and the syscall programs have run;
// without it the metrics are absent and the kernel counts nothing.
func TestProgramStats(t *testing.T) {
	requireKernel(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	tr, err := Load(Config{SelfPID: 1, ProgramStats: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Run(nopHandler{}) }()
	r := sdkmetric.NewManualReader()
	if err := tr.RegisterMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("test")); err != nil {
		t.Fatal(err)
	}
	loopbackIO(t)
	got := programMetrics(t, r)
	tr.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs, secs := got["weft_bpf_program_runs"], got["weft_bpf_program_run_seconds"]
	if n := len(programList(&tr.objs.weftPrograms)); len(runs) != n || len(secs) != n {
		t.Fatalf("%d programs with runs, %d with run time, want %d each: %v", len(runs), len(secs), n, got)
	}
	for _, p := range []string{"enter_read", "exit_read", "enter_write", "exit_write"} {
		if runs[p] < 10 || secs[p] <= 0 || secs[p] > 10 {
			t.Errorf("%s: %v runs, %v s; want >= 10 runs and a run time", p, runs[p], secs[p])
		}
	}
	if _, ok := runs["uretprobe_ssl_write_ex"]; !ok {
		t.Errorf("uprobe programs missing: %v", runs)
	}

	// Off: no metrics, and closing the first tracer turned the kernel's
	// statistics off again.
	tr, err = Load(Config{SelfPID: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.ProgramStats() {
		t.Fatal("statistics on without Config.ProgramStats")
	}
	r = sdkmetric.NewManualReader()
	if err := tr.RegisterMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("test")); err != nil {
		t.Fatal(err)
	}
	loopbackIO(t)
	if got := programMetrics(t, r); len(got) != 0 {
		t.Errorf("program metrics without Config.ProgramStats: %v", got)
	}
	s, err := tr.objs.ExitWrite.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if sysctl, _ := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled"); s.RunCount != 0 && strings.TrimSpace(string(sysctl)) == "0" {
		t.Errorf("exit_write counted %d runs after the statistics were closed (unless another tool, e.g. bpftop, holds them on)", s.RunCount)
	}
}
