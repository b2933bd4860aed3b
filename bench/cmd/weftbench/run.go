package main

import (
	"fmt"
	"os"
	"time"

	"github.com/weftrace/weft/bench"
	"github.com/weftrace/weft/bench/otlpsink"
)

// runWorkload starts w's server once, warms it up, then runs the load
// rounds times without and with weft, alternating the order (base, traced,
// traced, base, ...) so a drift on the machine falls on both.
func runWorkload(w workload, o options, dir string, sink *otlpsink.Sink) bench.Result {
	r := bench.Result{Workload: w.name, Description: w.desc, SpansNote: w.spansNote}
	fail := func(err error) bench.Result {
		r.Error = err.Error()
		r.Summarize()
		return r
	}
	wdir, err := os.MkdirTemp(dir, w.name+"-")
	if err != nil {
		return fail(err)
	}
	port, stop, err := w.start(wdir)
	if err != nil {
		return fail(err)
	}
	defer stop()
	if _, err := w.load(port, 2*time.Second, func() {}); err != nil {
		return fail(fmt.Errorf("warm-up: %w", err))
	}
	rounds := o.rounds
	if w.rounds > 0 {
		rounds = min(rounds, w.rounds)
	}
	for i := range rounds {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, traced := range order {
			var run bench.Run
			var err error
			if traced {
				run, err = tracedRun(w, o, port, wdir, sink)
			} else {
				run, err = baseRun(w, o, port)
			}
			if err != nil {
				return fail(err)
			}
			fmt.Printf("  %-6s %8.0f req/s%s\n", map[bool]string{false: "base", true: "traced"}[traced],
				float64(run.Requests)/run.Seconds, runDetail(run))
			r.Runs = append(r.Runs, run)
		}
	}
	r.Summarize()
	return r
}

func runDetail(run bench.Run) string {
	s := ""
	if run.P99Nanos > 0 {
		s += fmt.Sprintf("  p50 %v p99 %v", time.Duration(run.P50Nanos).Round(time.Microsecond), time.Duration(run.P99Nanos).Round(time.Microsecond))
	}
	if run.Traced && run.Requests > 0 {
		s += fmt.Sprintf("  BPF %.0f ns/req  weft CPU %.1f µs/req  RSS %.0f MiB  lost %d  spans/req %.3f",
			run.NetBPFSeconds()*1e9/float64(run.Requests), run.NetCPUSeconds()*1e6/float64(run.Requests),
			float64(run.PeakRSSBytes)/(1<<20), run.EventsLost, float64(run.SpansReceived)/float64(run.Requests))
	}
	return s
}

func fromLoad(out loadOut, traced bool) bench.Run {
	run := bench.Run{Traced: traced, Requests: out.requests, Seconds: out.seconds}
	if out.latency && out.hist != nil && out.hist.Count() > 0 {
		run.LatencySamples = out.hist
		run.P50Nanos = int64(out.hist.Quantile(0.5))
		run.P99Nanos = int64(out.hist.Quantile(0.99))
	}
	return run
}

func baseRun(w workload, o options, port int) (bench.Run, error) {
	out, err := w.load(port, o.duration, func() {})
	if err != nil {
		return bench.Run{}, err
	}
	return fromLoad(out, false), nil
}

// tracedRun starts a weft, lets it finish its start-up work, measures its
// idle rates with the load's processes in place, runs the load, waits
// until the workload's spans stop arriving (so the export is counted) and
// stops weft. Each traced run has a weft of its own: its peak RSS is that
// run's, and baseline runs have no probes attached at all.
func tracedRun(w workload, o options, port int, dir string, sink *otlpsink.Sink) (bench.Run, error) {
	wp, err := startWeft(o.weftBin, sink.Endpoint(), dir)
	if err != nil {
		return bench.Run{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			wp.stop() // already failing
		}
	}()
	var s0, s1 weftSnapshot
	var spans0, startHWM int64
	var readyErr error
	ready := func() {
		settle(wp, 15*time.Second)
		if s0, readyErr = wp.snapshot(); readyErr != nil {
			return
		}
		time.Sleep(o.idle)
		if s1, readyErr = wp.snapshot(); readyErr != nil {
			return
		}
		startHWM, readyErr = wp.status("VmHWM")
		spans0, _ = sink.Spans(port)
	}
	out, err := w.load(port, o.duration, ready)
	if err == nil {
		err = readyErr
	}
	if err != nil {
		return bench.Run{}, fmt.Errorf("%w (weft log: %s)", err, tailFile(wp.logPath, 5))
	}
	sEnd, err := wp.snapshot() // the kernel's cost ends with the load
	if err != nil {
		return bench.Run{}, err
	}
	spans1 := waitSpansSettle(sink, port, 3*time.Second, 30*time.Second)
	s2, err := wp.snapshot()
	if err != nil {
		return bench.Run{}, err
	}
	hwm, err := wp.status("VmHWM")
	if err != nil {
		return bench.Run{}, err
	}
	rss, err := wp.status("VmRSS")
	if err != nil {
		return bench.Run{}, err
	}
	stopped = true
	if err := wp.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "  note:", err)
	}
	idleSecs := s1.at.Sub(s0.at).Seconds()
	run := fromLoad(out, true)
	run.BPFByProgram = deltas(s1.bpf, sEnd.bpf)
	run.RunsByProgram = deltas(s1.runs, sEnd.runs)
	run.BPFSeconds = sum(run.BPFByProgram)
	run.BPFWindowSeconds = sEnd.at.Sub(s1.at).Seconds()
	run.CPUSeconds = s2.cpu - s1.cpu
	run.WindowSeconds = s2.at.Sub(s1.at).Seconds()
	run.IdleBPFPerSec = (sum(s1.bpf) - sum(s0.bpf)) / idleSecs
	run.IdleCPUPerSec = (s1.cpu - s0.cpu) / idleSecs
	run.PeakRSSBytes, run.StartPeakRSSBytes, run.EndRSSBytes = hwm, startHWM, rss
	run.EventsLost = int64(s2.lost - s1.lost)
	run.SpansReceived = spans1 - spans0
	run.SpansExported = int64(s2.spansEx - s1.spansEx)
	run.Drops = map[string]float64{}
	for k, v := range deltas(s1.drops, s2.drops) {
		if v != 0 {
			run.Drops[k] = v
		}
	}
	return run, nil
}

// settle waits until weft has been nearly idle (under 5% of a core) for
// half a second, at least a second after start and at most within: a new
// process's symbols are being read, or the start-up scan of /proc runs.
func settle(wp *weftProc, within time.Duration) {
	time.Sleep(time.Second)
	deadline := time.Now().Add(within)
	prev, err := wp.cpuSeconds()
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cur, cerr := wp.cpuSeconds()
		if cerr != nil || cur-prev < 0.025 {
			return
		}
		prev = cur
	}
}

// waitSpansSettle polls the sink until the workload's span count has not
// moved for quiet (weft's join wait and batch timer are behind it), or
// within has passed; it returns the count.
func waitSpansSettle(sink *otlpsink.Sink, port int, quiet, within time.Duration) int64 {
	deadline := time.Now().Add(within)
	last, _ := sink.Spans(port)
	lastChange := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		n, _ := sink.Spans(port)
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			break
		}
	}
	return last
}
