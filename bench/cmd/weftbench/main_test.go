package main

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:18080/index.html
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   780.12us  200.33us   9.01ms   90.00%
    Req/Sec    41.12k     1.20k   43.00k    80.00%
  411113 requests in 10.00s, 95.66MB read
Requests/sec:  41108.12
Transfer/sec:      9.57MB
`
	got, err := parseWrk(out)
	if err != nil || got.requests != 411113 || got.seconds != 10 {
		t.Fatalf("parseWrk = %+v, %v", got, err)
	}
	if got, err := parseWrk("  120 requests in 1.50m, 1MB read"); err != nil || got.seconds != 90 {
		t.Errorf("minutes: %+v, %v", got, err)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Error("no summary line: want an error")
	}
}

func TestParsePgbench(t *testing.T) {
	out := `pgbench (15.14 (Debian 15.14-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 123456
number of failed transactions: 0 (0.000%)
latency average = 0.648 ms
initial connection time = 12.345 ms
tps = 12345.600000 (without initial connection time)
`
	got, err := parsePgbench(out)
	if err != nil || got.requests != 123456 || got.seconds < 9.99 || got.seconds > 10.01 {
		t.Fatalf("parsePgbench = %+v, %v", got, err)
	}
	if _, err := parsePgbench("connection to server failed"); err == nil {
		t.Error("no summary: want an error")
	}
}

func TestParseOptions(t *testing.T) {
	env := map[string]string{"BENCH_DURATION": "3s", "BENCH_ROUNDS": "3", "BENCH_ONLY": "nginx, gohttp-5k", "BENCH_JSON": "/tmp/x.json"}
	o, err := parseOptions(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 3*time.Second || o.rounds != 3 || o.jsonPath != "/tmp/x.json" || len(o.only) != 2 || o.idle != 2*time.Second {
		t.Errorf("options = %+v", o)
	}
	for k, v := range map[string]string{"BENCH_DURATION": "10", "BENCH_ROUNDS": "0", "BENCH_IDLE": "1ms"} {
		if _, err := parseOptions(func(key string) string {
			if key == k {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%s: want an error", k, v)
		}
	}
}

func TestSelected(t *testing.T) {
	for _, c := range []struct {
		name string
		only []string
		want bool
	}{
		{"nginx", nil, true},
		{"nginx", []string{"nginx"}, true},
		{"nginx-5k", []string{"nginx"}, true},
		{"gohttp", []string{"nginx"}, false},
		{"gohttp-5k", []string{"gohttp-5k"}, true},
		{"gohttp", []string{"gohttp-5k"}, false},
		{"pgbench", []string{"pg"}, false},
	} {
		if got := selected(c.name, c.only); got != c.want {
			t.Errorf("selected(%q, %q) = %v", c.name, c.only, got)
		}
	}
}

func TestWorkloadNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range workloads() {
		if seen[w.name] || w.start == nil || w.load == nil || w.desc == "" {
			t.Errorf("workload %q: duplicate or incomplete", w.name)
		}
		seen[w.name] = true
	}
}
