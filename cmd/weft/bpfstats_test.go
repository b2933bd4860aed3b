package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/weftrace/weft/bpf"
)

// TestBPFStatsMetricNames: --bpf-stats puts each program's run time and
// run count on /metrics under their documented names, labelled by
// program; without it neither is there. Root only (it loads the probes).
func TestBPFStatsMetricNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	for _, on := range []bool{true, false} {
		args := []string{"--exporter", "none"}
		if on {
			args = append(args, "--bpf-stats")
		}
		cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.bpf.ProgramStats != on {
			t.Fatalf("%q: ProgramStats %v", args, cfg.bpf.ProgramStats)
		}
		tr, err := bpf.Load(cfg.bpf, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := newMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.RegisterMetrics(m.meter); err != nil {
			t.Fatal(err)
		}
		os.ReadFile("/proc/self/stat") // a read, seen (and skipped: weft's own) by exit_read
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		tr.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatalf("/metrics: %v\n%s", err, rec.Body)
		}
		for _, name := range []string{"weft_bpf_program_run_seconds_total", "weft_bpf_program_runs_total"} {
			f, ok := families[name]
			if !on {
				if ok {
					t.Errorf("%s on /metrics without --bpf-stats", name)
				}
				continue
			}
			if !ok {
				t.Errorf("%s missing from /metrics with --bpf-stats:\n%s", name, rec.Body)
				continue
			}
			if f.GetType().String() != "COUNTER" {
				t.Errorf("%s is a %v, want COUNTER", name, f.GetType())
			}
			var exitRead float64 = -1
			for _, s := range f.Metric {
				if len(s.Label) != 1 || s.Label[0].GetName() != "program" {
					t.Errorf("%s labels %v, want program only", name, s.Label)
				}
				if s.Label[0].GetValue() == "exit_read" {
					exitRead = s.GetCounter().GetValue()
				}
			}
			if exitRead <= 0 {
				t.Errorf("%s{program=\"exit_read\"} = %v, want > 0", name, exitRead)
			}
		}
		if on && !strings.Contains(rec.Body.String(), `program="uretprobe_ssl_write_ex"`) {
			t.Errorf("uprobe programs missing from /metrics")
		}
	}
}
