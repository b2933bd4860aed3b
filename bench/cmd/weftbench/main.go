// Command weftbench measures what weft costs real programs, end to end:
// per workload it runs the load without weft and with it, interleaved, and
// prints one table (throughput ratio, latency ratios at a fixed rate, BPF
// ns and weft CPU µs per request, weft's peak RSS, kernel events lost,
// spans exported per request) and writes it as JSON. make bench runs it
// after the Go microbenchmarks. Root only; loopback only.
//
// Knobs (environment): BENCH_DURATION (each timed run, default 8s),
// BENCH_ROUNDS (baseline+traced pairs per workload, default 2),
// BENCH_ONLY (comma-separated workload names or prefixes, e.g. nginx),
// BENCH_IDLE (weft's idle window before each traced run, default 2s),
// BENCH_JSON (default bench/results.json), WEFT_BIN (a built weft instead
// of go build ./cmd/weft).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/weftrace/weft/bench"
	"github.com/weftrace/weft/bench/otlpsink"
)

func main() {
	if ok, err := subcommand(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "weftbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := drive(); err != nil {
		fmt.Fprintln(os.Stderr, "weftbench:", err)
		os.Exit(1)
	}
}

// options are the driver's knobs.
type options struct {
	duration, idle time.Duration
	rounds         int
	only           []string
	jsonPath       string
	weftBin        string
}

func parseOptions(getenv func(string) string) (options, error) {
	o := options{duration: 8 * time.Second, idle: 2 * time.Second, rounds: 2, jsonPath: "bench/results.json", weftBin: getenv("WEFT_BIN")}
	var err error
	if v := getenv("BENCH_DURATION"); v != "" {
		if o.duration, err = time.ParseDuration(v); err != nil || o.duration < time.Second {
			return o, fmt.Errorf("BENCH_DURATION=%q: want a duration of 1s or more", v)
		}
	}
	if v := getenv("BENCH_IDLE"); v != "" {
		if o.idle, err = time.ParseDuration(v); err != nil || o.idle < 500*time.Millisecond {
			return o, fmt.Errorf("BENCH_IDLE=%q: want a duration of 500ms or more", v)
		}
	}
	if v := getenv("BENCH_ROUNDS"); v != "" {
		if o.rounds, err = strconv.Atoi(v); err != nil || o.rounds < 1 || o.rounds > 20 {
			return o, fmt.Errorf("BENCH_ROUNDS=%q: want 1 to 20", v)
		}
	}
	if v := getenv("BENCH_ONLY"); v != "" {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.only = append(o.only, n)
			}
		}
	}
	if v := getenv("BENCH_JSON"); v != "" {
		o.jsonPath = v
	}
	return o, nil
}

// selected reports whether name is asked for: every workload when only is
// empty, else those named or starting with a name and a dash.
func selected(name string, only []string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if name == o || strings.HasPrefix(name, o+"-") {
			return true
		}
	}
	return false
}

// report is the JSON file.
type report struct {
	Date     string         `json:"date"`
	Machine  machine        `json:"machine"`
	Duration string         `json:"run_duration"`
	Rounds   int            `json:"rounds"`
	Notes    []string       `json:"notes"`
	Results  []bench.Result `json:"results"`
}

type machine struct {
	CPUs        int    `json:"cpus"`
	Model       string `json:"cpu_model"`
	Kernel      string `json:"kernel"`
	LoadAvgFrom string `json:"loadavg_at_start"`
	LoadAvgTo   string `json:"loadavg_at_end"`
}

func drive() error {
	o, err := parseOptions(os.Getenv)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		fmt.Println("weftbench: skipped: weft needs root (sudo make bench)")
		return nil
	}
	var todo []workload
	missing := map[string]bool{}
	for _, w := range workloads() {
		if !selected(w.name, o.only) {
			continue
		}
		ok := true
		for _, p := range w.needs {
			if _, err := exec.LookPath(p); err != nil {
				missing[p], ok = true, false
			}
		}
		if w.name == "pgbench" {
			if _, err := pgBinDir(); err != nil {
				missing["postgres"], ok = true, false
			}
		}
		if ok {
			todo = append(todo, w)
		} else {
			fmt.Printf("weftbench: skipping %s: missing %s\n", w.name, strings.Join(w.needs, ", "))
		}
	}
	if len(missing) > 0 {
		fmt.Println("weftbench: to run every workload: apt-get install wrk nginx-light postgresql")
	}
	if len(todo) == 0 {
		return fmt.Errorf("no workload to run (BENCH_ONLY=%q)", strings.Join(o.only, ","))
	}
	dir, err := os.MkdirTemp("", "weftbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.weftBin == "" {
		o.weftBin = filepath.Join(dir, "weft")
		fmt.Println("weftbench: go build ./cmd/weft")
		build := exec.Command("go", "build", "-o", o.weftBin, "./cmd/weft")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build weft: %w", err)
		}
	}
	sink, err := otlpsink.Start()
	if err != nil {
		return err
	}
	defer sink.Stop()

	rep := report{Date: time.Now().Format("2006-01-02"), Duration: o.duration.String(), Rounds: o.rounds, Machine: describeMachine(),
		Notes: []string{
			"ratios are traced/baseline, pooled over interleaved runs (ABBA order); p50/p99 only for fixed-rate runs, timed from each request's scheduled send",
			"BPF ns and weft CPU µs per request are net of the rate weft's programs and weft itself ran at while idle just before the load (other programs on a shared machine are traced too); gross figures are in runs[]",
			"weft CPU includes exporting OTLP/gRPC to weftbench's receiver (weft --schedule-delay 1000); spans/req counts spans with server.port = the workload's port",
		}}
	start := time.Now()
	for _, w := range todo {
		fmt.Printf("weftbench: %s: %s\n", w.name, w.desc)
		r := runWorkload(w, o, dir, sink)
		if r.Error != "" {
			fmt.Printf("weftbench: %s failed: %s\n", w.name, r.Error)
		}
		rep.Results = append(rep.Results, r)
	}
	rep.Machine.LoadAvgTo = loadAvg()

	fmt.Printf("\nweft end-to-end overhead, %s, %d CPUs (%s), Linux %s, %s per run, %d round(s), %s in all (load average %s -> %s)\n",
		rep.Date, rep.Machine.CPUs, rep.Machine.Model, rep.Machine.Kernel, o.duration, o.rounds, time.Since(start).Round(time.Second), rep.Machine.LoadAvgFrom, rep.Machine.LoadAvgTo)
	fmt.Print(bench.Table(rep.Results))
	fmt.Println("BPF ns per request by program (largest first):")
	for _, r := range rep.Results {
		if r.Error == "" {
			fmt.Printf("  %-15s %s\n", r.Workload, r.Programs(8))
		}
	}
	for _, n := range rep.Notes {
		fmt.Println("note:", n)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("weftbench: wrote", o.jsonPath)
	for _, r := range rep.Results {
		if r.Error != "" {
			return fmt.Errorf("%s failed", r.Workload)
		}
	}
	return nil
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), LoadAvgFrom: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimLeft(v, " \t:"))
				break
			}
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
