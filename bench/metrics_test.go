package bench

import (
	"reflect"
	"testing"
)

const scrape = `# HELP weft_bpf_program_run_seconds_total Time the kernel spent.
# TYPE weft_bpf_program_run_seconds_total counter
weft_bpf_program_run_seconds_total{program="exit_read"} 1.5
weft_bpf_program_run_seconds_total{program="enter_read"} 0.25
weft_bpf_program_runs_total{program="exit_read"} 1e+06
weft_bpf_events_lost_total{cpu="0"} 2
weft_bpf_events_lost_total{cpu="1"} 3
weft_exporter_spans_dropped_total{reason="queue_full"} 7 1700000000000
weft_odd{a="x \"q\" \\ y",b="line\nnext"} 4
weft_conn_live 12
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(scrape)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 8 {
		t.Fatalf("%d samples, want 8", len(m))
	}
	if got := m.Sum("weft_bpf_program_run_seconds_total"); got != 1.75 {
		t.Errorf("sum run seconds = %v", got)
	}
	if got := m.Sum("weft_bpf_events_lost_total"); got != 5 {
		t.Errorf("sum lost = %v", got)
	}
	if got, want := m.By("weft_bpf_program_runs_total", "program"), map[string]float64{"exit_read": 1e6}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs by program = %v", got)
	}
	if got := m.Sum("weft_absent_total"); got != 0 {
		t.Errorf("absent metric sums to %v", got)
	}
	odd := m[6]
	if odd.Labels["a"] != `x "q" \ y` || odd.Labels["b"] != "line\nnext" {
		t.Errorf("escaped labels: %q", odd.Labels)
	}
	want := map[string]float64{
		`weft_bpf_events_lost_total{cpu="0"}`:                    2,
		`weft_bpf_events_lost_total{cpu="1"}`:                    3,
		`weft_exporter_spans_dropped_total{reason="queue_full"}`: 7,
	}
	if got := m.Drops(); !reflect.DeepEqual(got, want) {
		t.Errorf("drops = %v, want %v", got, want)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, bad := range []string{
		"weft_x",
		"weft_x{a=\"b\" 1",
		"weft_x{a=b} 1",
		"weft_x abc",
		"weft_x 1 2 3",
		"{a=\"b\"} 1",
	} {
		if _, err := ParseMetrics(bad + "\n"); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
