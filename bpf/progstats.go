package bpf

import (
	"context"
	"fmt"
	"io"
	"reflect"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sys/unix"
)

// enableProgramStats turns on the kernel's BPF run-time statistics (run
// count and run time of every program) until the returned Closer is
// closed. The kernel counts each run with two clock reads, so they are off
// unless asked for. If another tool (bpftop, sysctl kernel.bpf_stats_enabled)
// has them on too, they stay on until it is done as well.
func enableProgramStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable bpf run-time statistics: %w (needs Linux 5.8+ and CAP_SYS_ADMIN)", err)
	}
	return c, nil
}

// namedProgram is one loaded program and its name in the C source
// (exit_read), which the kernel keeps only to 15 characters.
type namedProgram struct {
	name string
	prog *ebpf.Program
}

// programList returns every program of p by its C name, in the generated
// struct's order. It reads the bpf2go struct tags, so a program added to
// the C side is listed without touching this file.
func programList(p *weftPrograms) []namedProgram {
	v := reflect.ValueOf(p).Elem()
	var out []namedProgram
	for i := 0; i < v.NumField(); i++ {
		prog, ok := v.Field(i).Interface().(*ebpf.Program)
		name := v.Type().Field(i).Tag.Get("ebpf")
		if !ok || prog == nil || name == "" {
			continue
		}
		out = append(out, namedProgram{name: name, prog: prog})
	}
	return out
}

// ProgramStats reports whether the kernel's run-time statistics are on for
// this tracer (Config.ProgramStats).
func (t *Tracer) ProgramStats() bool { return t.stats != nil }

// registerProgramStats exports, per program the tracer loaded (syscall
// tracepoints, OpenSSL and Go uprobes), the kernel's count of its runs and
// their total run time. Only called when statistics are on.
func (t *Tracer) registerProgramStats(m metric.Meter) error {
	runtime, err := m.Float64ObservableCounter("weft_bpf_program_run_seconds",
		metric.WithUnit("s"),
		metric.WithDescription("Time the kernel spent running this BPF program of weft, summed over every run since weft loaded it (kernel run-time statistics, on with --bpf-stats)."))
	if err != nil {
		return fmt.Errorf("register weft_bpf_program_run_seconds: %w", err)
	}
	runs, err := m.Int64ObservableCounter("weft_bpf_program_runs",
		metric.WithDescription("Runs of this BPF program of weft since weft loaded it (kernel run-time statistics, on with --bpf-stats)."))
	if err != nil {
		return fmt.Errorf("register weft_bpf_program_runs: %w", err)
	}
	progs := programList(&t.objs.weftPrograms)
	labels := make([]metric.ObserveOption, len(progs))
	for i, p := range progs {
		labels[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("program", p.name)))
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i, p := range progs {
			s, err := p.prog.Stats()
			if err != nil {
				continue // closed by a racing Close: nothing to report
			}
			o.ObserveFloat64(runtime, s.Runtime.Seconds(), labels[i])
			o.ObserveInt64(runs, int64(s.RunCount), labels[i])
		}
		return nil
	}, runtime, runs)
	if err != nil {
		return fmt.Errorf("register program stats callback: %w", err)
	}
	return nil
}
