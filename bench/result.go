package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Run is one timed run of a workload, without weft (baseline) or with it
// (traced). The weft figures are deltas over the run, from just before
// the load started to when its spans stopped arriving, so the export is
// included.
type Run struct {
	Traced   bool    `json:"traced"`
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	// Latency quantiles in nanoseconds, from the scheduled send time
	// (open-loop runs) or the send (closed loop); 0 when not measured.
	P50Nanos int64 `json:"p50_ns,omitempty"`
	P99Nanos int64 `json:"p99_ns,omitempty"`
	// Traced runs only.
	BPFSeconds    float64            `json:"bpf_seconds,omitempty"` // sum over weft's programs
	BPFByProgram  map[string]float64 `json:"bpf_seconds_by_program,omitempty"`
	RunsByProgram map[string]float64 `json:"bpf_runs_by_program,omitempty"`
	// BPF time is counted from the end of the idle window to the end of
	// the load (the kernel's cost is paid in the load's syscalls); weft's
	// CPU to when the last of the run's spans arrived.
	BPFWindowSeconds  float64            `json:"bpf_window_seconds,omitempty"`
	CPUSeconds        float64            `json:"weft_cpu_seconds,omitempty"` // user + sys
	WindowSeconds     float64            `json:"window_seconds,omitempty"`
	IdleBPFPerSec     float64            `json:"idle_bpf_seconds_per_second,omitempty"`
	IdleCPUPerSec     float64            `json:"idle_cpu_seconds_per_second,omitempty"`
	PeakRSSBytes      int64              `json:"peak_rss_bytes,omitempty"`       // VmHWM at the end
	StartPeakRSSBytes int64              `json:"start_peak_rss_bytes,omitempty"` // VmHWM before the load
	EndRSSBytes       int64              `json:"end_rss_bytes,omitempty"`        // VmRSS at the end
	Drops             map[string]float64 `json:"drops,omitempty"`                // drop counters that moved
	EventsLost        int64              `json:"events_lost,omitempty"`
	SpansReceived     int64              `json:"spans_received,omitempty"`
	SpansExported     int64              `json:"spans_exported,omitempty"` // weft's own count, all spans
	LatencySamples    *Histogram         `json:"-"`
}

// NetBPFSeconds is the run's BPF time less what weft's programs ran while
// this workload was idle (other programs on the shared machine), at the
// rate measured just before; never below zero.
func (r Run) NetBPFSeconds() float64 {
	return math.Max(0, r.BPFSeconds-r.IdleBPFPerSec*r.BPFWindowSeconds)
}

// NetCPUSeconds is the same for weft's own CPU time.
func (r Run) NetCPUSeconds() float64 {
	return math.Max(0, r.CPUSeconds-r.IdleCPUPerSec*r.WindowSeconds)
}

// Result is one workload's line of the table and its runs.
type Result struct {
	Workload    string `json:"workload"`
	Description string `json:"description"`
	// SpansNote says which ends weft sees, so what spans/req should be.
	SpansNote string `json:"spans_note"`
	Runs      []Run  `json:"runs"`

	ThroughputRatio Num     `json:"throughput_ratio"`
	P50Ratio        Num     `json:"p50_ratio"` // NaN (null) when latency was not measured
	P99Ratio        Num     `json:"p99_ratio"`
	BaseRate        Num     `json:"base_requests_per_second"`
	TracedRate      Num     `json:"traced_requests_per_second"`
	BPFNanosPerReq  Num     `json:"bpf_ns_per_request"`
	CPUMicrosPerReq Num     `json:"weft_cpu_us_per_request"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	EventsLost      int64   `json:"events_lost"`
	SpansPerReq     Num     `json:"spans_per_request"`
	// BPFNanosByProgram is BPF ns per request by program (gross, not net
	// of the idle rate), largest first in the report.
	BPFNanosByProgram map[string]float64 `json:"bpf_ns_per_request_by_program"`
	Error             string             `json:"error,omitempty"`
}

// Summarize computes r's figures from its runs: rates and latency
// quantiles pooled over the baseline runs and over the traced runs (the
// runs interleave, so drift on the machine falls on both), weft's costs
// summed over the traced runs and divided by their requests.
func (r *Result) Summarize() {
	var base, traced struct {
		req  int64
		secs float64
		hist Histogram
	}
	var bpf, cpu float64
	var spans int64
	byProg := map[string]float64{}
	r.PeakRSSMiB, r.EventsLost = 0, 0
	for _, run := range r.Runs {
		s := &base
		if run.Traced {
			s = &traced
			bpf += run.NetBPFSeconds()
			cpu += run.NetCPUSeconds()
			spans += run.SpansReceived
			r.EventsLost += run.EventsLost
			r.PeakRSSMiB = math.Max(r.PeakRSSMiB, float64(run.PeakRSSBytes)/(1<<20))
			for p, v := range run.BPFByProgram {
				byProg[p] += v
			}
		}
		s.req += run.Requests
		s.secs += run.Seconds
		if run.LatencySamples != nil {
			s.hist.Merge(run.LatencySamples)
		}
	}
	br, tr := rate(base.req, base.secs), rate(traced.req, traced.secs)
	r.BaseRate, r.TracedRate, r.ThroughputRatio = Num(br), Num(tr), Num(ratio(tr, br))
	r.P50Ratio, r.P99Ratio = Num(math.NaN()), Num(math.NaN())
	if base.hist.Count() > 0 && traced.hist.Count() > 0 {
		r.P50Ratio = Num(ratio(float64(traced.hist.Quantile(0.50)), float64(base.hist.Quantile(0.50))))
		r.P99Ratio = Num(ratio(float64(traced.hist.Quantile(0.99)), float64(base.hist.Quantile(0.99))))
	}
	n := float64(traced.req)
	r.BPFNanosPerReq, r.CPUMicrosPerReq, r.SpansPerReq = Num(math.NaN()), Num(math.NaN()), Num(math.NaN())
	r.BPFNanosByProgram = map[string]float64{}
	if n > 0 {
		r.BPFNanosPerReq = Num(bpf * 1e9 / n)
		r.CPUMicrosPerReq = Num(cpu * 1e6 / n)
		r.SpansPerReq = Num(float64(spans) / n)
		for p, v := range byProg {
			if v > 0 {
				r.BPFNanosByProgram[p] = v * 1e9 / n
			}
		}
	}
}

func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return math.NaN()
	}
	return float64(n) / secs
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// Table formats results as one aligned table, a line per workload; a
// figure that does not apply or was not measured is "-". Workloads that
// failed follow, a line each.
func Table(results []Result) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\tbase req/s\ttraced req/s\tthroughput\tp50\tp99\tBPF ns/req\tweft CPU µs/req\tpeak RSS MiB\tlost\tspans/req\t")
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, fmt.Sprintf("%s: failed: %s\n", r.Workload, r.Error))
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", r.Workload,
			num(r.BaseRate, 0), num(r.TracedRate, 0), num(r.ThroughputRatio, 3), num(r.P50Ratio, 3), num(r.P99Ratio, 3),
			num(r.BPFNanosPerReq, 0), num(r.CPUMicrosPerReq, 2), num(Num(r.PeakRSSMiB), 1), r.EventsLost, num(r.SpansPerReq, 3))
	}
	w.Flush()
	for _, f := range failed {
		b.WriteString(f)
	}
	return b.String()
}

// Programs lists r's BPF cost per request by program, largest first, as
// "exit_read 512, enter_write 300, ..." (ns per request).
func (r Result) Programs(limit int) string {
	type pv struct {
		p string
		v float64
	}
	var l []pv
	for p, v := range r.BPFNanosByProgram {
		l = append(l, pv{p, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].p < l[j].p })
	var parts []string
	for i, x := range l {
		if limit > 0 && i == limit {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", x.p, x.v))
	}
	return strings.Join(parts, ", ")
}

// Num is a figure that may be missing (NaN); it is null in JSON, which
// has no NaN.
type Num float64

// MarshalJSON writes NaN and infinities as null.
func (n Num) MarshalJSON() ([]byte, error) {
	v := float64(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(n))
}

func num(n Num, prec int) string {
	v := float64(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}
