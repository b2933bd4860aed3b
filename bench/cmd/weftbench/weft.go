package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/weftrace/weft/bench"
)

// userHZ is the unit of /proc/<pid>/stat's CPU times on Linux.
const userHZ = 100

// weftProc is one weft child: tracing with --bpf-stats, exporting OTLP
// to the driver's sink, serving /metrics on a loopback port.
type weftProc struct {
	cmd     *exec.Cmd
	metrics string // URL of /metrics
	logPath string
	exited  chan struct{}
}

// startWeft runs bin and waits until its probes are attached (/readyz).
func startWeft(bin, otlpEndpoint, dir string) (*weftProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	w := &weftProc{metrics: "http://" + addr + "/metrics", logPath: filepath.Join(dir, "weft.log"), exited: make(chan struct{})}
	logf, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	w.cmd = exec.Command(bin, "--bpf-stats", "--http-addr", addr,
		"--exporter", "otlp", "--otlp-protocol", "grpc", "--otlp-endpoint", otlpEndpoint,
		// Batches fill in milliseconds at these rates; a 1 s timer
		// only ends each run's tail sooner than the 5 s default.
		"--schedule-delay", "1000")
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	w.cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME=weft")
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start weft: %w", err)
	}
	go func() { w.cmd.Wait(); close(w.exited) }() // exit is reported by exited
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-w.exited:
			return nil, fmt.Errorf("weft exited while starting: %s", tailFile(w.logPath, 10))
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("weft not ready within 90 s: %s", tailFile(w.logPath, 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrape reads weft's /metrics.
func (w *weftProc) scrape() (bench.Metrics, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(w.metrics)
	if err != nil {
		return nil, fmt.Errorf("scrape weft: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape weft: %w", err)
	}
	return bench.ParseMetrics(string(b))
}

// cpuSeconds is weft's user + system CPU time so far.
func (w *weftProc) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	t, err := bench.StatCPUTicks(string(b))
	return float64(t) / userHZ, err
}

// status reads a size from weft's /proc status: VmHWM (its resident set's
// high-water mark) or VmRSS.
func (w *weftProc) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return bench.StatusBytes(string(b), field)
}

// stop asks weft to stop (SIGINT: it detaches and flushes) and kills it
// after 15 s.
func (w *weftProc) stop() error {
	w.cmd.Process.Signal(syscall.SIGINT) // it may be gone
	select {
	case <-w.exited:
		return nil
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
		return errors.New("weft did not stop within 15 s of SIGINT (killed)")
	}
}

// weftSnapshot is what one reading of weft's counters holds.
type weftSnapshot struct {
	at      time.Time
	cpu     float64
	bpf     map[string]float64 // run seconds by program
	runs    map[string]float64
	lost    float64
	spansEx float64
	drops   map[string]float64 // every drop counter, by series
}

func (w *weftProc) snapshot() (weftSnapshot, error) {
	m, err := w.scrape()
	if err != nil {
		return weftSnapshot{}, err
	}
	cpu, err := w.cpuSeconds()
	if err != nil {
		return weftSnapshot{}, err
	}
	s := weftSnapshot{at: time.Now(), cpu: cpu,
		bpf:     m.By("weft_bpf_program_run_seconds_total", "program"),
		runs:    m.By("weft_bpf_program_runs_total", "program"),
		lost:    m.Sum("weft_bpf_events_lost_total"),
		spansEx: m.Sum("weft_exporter_spans_exported_total"),
		drops:   m.Drops()}
	if len(s.bpf) == 0 {
		return s, errors.New("weft's /metrics has no weft_bpf_program_run_seconds_total: is --bpf-stats working?")
	}
	return s, nil
}

func sum(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

func deltas(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		out[k] = v - a[k]
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailFile returns the last n lines of a log, for error messages.
func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := []string{}
	start := 0
	for i, c := range b {
		if c == '\n' {
			lines = append(lines, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		lines = append(lines, string(b[start:]))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "\n  " + l
	}
	return out
}
