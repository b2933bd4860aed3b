package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func hist(d ...time.Duration) *Histogram {
	var h Histogram
	for _, v := range d {
		h.Record(v)
	}
	return &h
}

func TestSummarize(t *testing.T) {
	r := Result{Workload: "w", Runs: []Run{
		{Requests: 1000, Seconds: 1, LatencySamples: hist(100*time.Microsecond, 100*time.Microsecond, 200*time.Microsecond)},
		{Traced: true, Requests: 800, Seconds: 1, LatencySamples: hist(110*time.Microsecond, 110*time.Microsecond, 300*time.Microsecond),
			BPFSeconds: 0.004, BPFWindowSeconds: 1, IdleBPFPerSec: 0.001, CPUSeconds: 0.01, WindowSeconds: 2, IdleCPUPerSec: 0.001,
			PeakRSSBytes: 100 << 20, EventsLost: 1, SpansReceived: 1600, BPFByProgram: map[string]float64{"exit_read": 0.003, "enter_read": 0.001, "unused": 0}},
		{Traced: true, Requests: 1200, Seconds: 1, LatencySamples: hist(110*time.Microsecond, 110*time.Microsecond, 300*time.Microsecond),
			BPFSeconds: 0.004, BPFWindowSeconds: 1, IdleBPFPerSec: 0.001, CPUSeconds: 0.01, WindowSeconds: 2, IdleCPUPerSec: 0.001,
			PeakRSSBytes: 120 << 20, EventsLost: 2, SpansReceived: 2400, BPFByProgram: map[string]float64{"exit_read": 0.003, "enter_read": 0.001}},
		{Requests: 1000, Seconds: 1, LatencySamples: hist(100*time.Microsecond, 100*time.Microsecond, 200*time.Microsecond)},
	}}
	r.Summarize()
	near := func(name string, got Num, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 1e-9*math.Max(1, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("throughput ratio", r.ThroughputRatio, 1.0)
	near("base rate", r.BaseRate, 1000)
	// 110 µs and 300 µs land in buckets whose middles are within 1/128.
	if p50 := float64(r.P50Ratio); math.Abs(p50-1.1) > 0.02 {
		t.Errorf("p50 ratio = %v, want about 1.1", p50)
	}
	if p99 := float64(r.P99Ratio); math.Abs(p99-1.5) > 0.02 {
		t.Errorf("p99 ratio = %v, want about 1.5", p99)
	}
	// (0.004 - 0.001) * 2 runs over 2000 requests = 3 µs = 3000 ns.
	near("BPF ns/req", r.BPFNanosPerReq, 3000)
	// (0.01 - 0.002) * 2 / 2000 = 8 µs.
	near("CPU µs/req", r.CPUMicrosPerReq, 8)
	near("spans/req", r.SpansPerReq, 2)
	if r.PeakRSSMiB != 120 || r.EventsLost != 3 {
		t.Errorf("peak RSS %v MiB, lost %d", r.PeakRSSMiB, r.EventsLost)
	}
	if got := r.Programs(0); got != "exit_read 3000, enter_read 1000" {
		t.Errorf("programs = %q", got)
	}
	if got := r.Programs(1); got != "exit_read 3000" {
		t.Errorf("programs(1) = %q", got)
	}
}

func TestSummarizeWithoutLatencyOrTracedRuns(t *testing.T) {
	r := Result{Workload: "w", Runs: []Run{{Requests: 10, Seconds: 1}}}
	r.Summarize()
	for name, v := range map[string]Num{"p50": r.P50Ratio, "p99": r.P99Ratio, "throughput": r.ThroughputRatio, "bpf": r.BPFNanosPerReq} {
		if !math.IsNaN(float64(v)) {
			t.Errorf("%s = %v, want NaN", name, v)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"p99_ratio":null`) {
		t.Errorf("NaN should be null in JSON: %s", js)
	}
	var back Result
	if err := json.Unmarshal(js, &back); err != nil || !math.IsNaN(float64(back.P99Ratio)) {
		t.Errorf("back from JSON: %v, %v", back.P99Ratio, err)
	}
}

func TestTable(t *testing.T) {
	rs := []Result{
		{Workload: "nginx", BaseRate: 40000, TracedRate: 30000, ThroughputRatio: 0.75, P50Ratio: Num(math.NaN()), P99Ratio: Num(math.NaN()),
			BPFNanosPerReq: 7300, CPUMicrosPerReq: 4.25, PeakRSSMiB: 90.5, SpansPerReq: 2},
		{Workload: "gohttp-5k", BaseRate: 5000, TracedRate: 5000, ThroughputRatio: 1, P50Ratio: 1.02, P99Ratio: 1.1,
			BPFNanosPerReq: 9000, CPUMicrosPerReq: 10, PeakRSSMiB: 100, EventsLost: 3, SpansPerReq: 1.999},
		{Workload: "pgbench", Error: "initdb: no"},
	}
	want := `
   workload  base req/s  traced req/s  throughput    p50    p99  BPF ns/req  weft CPU µs/req  peak RSS MiB  lost  spans/req
      nginx       40000         30000       0.750      -      -        7300             4.25          90.5     0      2.000
  gohttp-5k        5000          5000       1.000  1.020  1.100        9000            10.00         100.0     3      1.999
pgbench: failed: initdb: no
`[1:]
	if got := Table(rs); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}
