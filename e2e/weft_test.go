package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const (
	weftReadyTimeout = 90 * time.Second // probes attached and /readyz 200
	weftStopTimeout  = 10 * time.Second // SIGTERM to exit 0, export flushed
)

// weftProc is the running agent.
type weftProc struct {
	*process
	httpAddr string // --http-addr: /metrics, /healthz, /readyz
}

// url returns the address of one of weft's HTTP endpoints.
func (w *weftProc) url(path string) string { return "http://" + w.httpAddr + path }

// startWeft starts the agent bin exporting OTLP gRPC to otlpGRPC (host:port)
// and waits until /readyz answers 200. On error the process, if it was
// started, is returned too so that the caller stops it.
func startWeft(bin, dir, otlpGRPC string) (*weftProc, error) {
	// OTEL_BSP_SCHEDULE_DELAY: export every 200 ms so spans reach Jaeger fast.
	// --max-span-names: one weft serves the whole suite, whose tests give
	// programs named by their executable (nginx) thousands of distinct paths
	// in all; the cap stays one the heavy test can reach.
	return startWeftArgs(bin, dir, childEnv("OTEL_BSP_SCHEDULE_DELAY=200"),
		"--max-span-names", strconv.Itoa(suiteSpanNameCap),
		"--exporter", "otlp",
		"--otlp-endpoint", "http://"+otlpGRPC,
		"--otlp-protocol", "grpc")
}

// startWeftArgs starts the agent bin in dir (log: dir/weft.log) with env
// and args, on an --http-addr of its own, and waits until /readyz
// answers 200.
func startWeftArgs(bin, dir string, env []string, args ...string) (*weftProc, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	level := os.Getenv("WEFT_E2E_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	w := &weftProc{httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	argv := append([]string{bin}, args...)
	argv = append(argv, "--http-addr", w.httpAddr, "--log-level", level)
	w.process, err = spawn("weft", dir, filepath.Join(dir, "weft.log"), env, nil, argv...)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitUntil(weftReadyTimeout, w.process, func() error {
		code, body, err := httpGetStatus(hc, w.url("/readyz"))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /readyz: %d %s", code, body)
		}
		return nil
	})
	if err != nil {
		return w, fmt.Errorf("weft (%q) did not become ready: %w\nweft log (%s):\n%s", argv, err, w.logPath, tail(w.logPath, 60))
	}
	return w, nil
}

// shutdown sends SIGTERM and requires weft to flush and exit with status 0
// within weftStopTimeout; it kills weft otherwise.
func (w *weftProc) shutdown() error {
	waitErr, timedOut := w.stop(syscall.SIGTERM, weftStopTimeout)
	switch {
	case timedOut:
		return fmt.Errorf("weft did not exit within %v of SIGTERM (killed it)\nweft log (%s):\n%s", weftStopTimeout, w.logPath, tail(w.logPath, 40))
	case waitErr != nil:
		return fmt.Errorf("weft exited with %v after SIGTERM, want status 0\nweft log (%s):\n%s", waitErr, w.logPath, tail(w.logPath, 40))
	}
	return nil
}

// suiteSpanNameCap is the suite's weft's --max-span-names (default 1000).
const suiteSpanNameCap = 5000
