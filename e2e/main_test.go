package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// skipReason is set when the suite cannot run here (not root); every test
// then skips with it. Nothing else may skip.
var skipReason string

// suite is the shared environment TestMain sets up for the tests.
var suite *suiteEnv

type suiteEnv struct {
	root    string // repository root
	dir     string // temporary directory: binaries, configs, logs
	jaeger  *jaegerProc
	weft    *weftProc // nil when it could not be started
	weftBin string    // the agent's binary, for tests that start more
	weftErr error     // why weft is not running
	bin     map[string]string
}

// workloads are the programs under testdata/ the tests run.
var workloads = []string{"gosrv", "goclient", "dnssrv", "goresolve", "loadgen"}

// TestMain runs the suite as root: it starts Jaeger, builds weft and the
// workload programs, starts weft and waits until it is ready; afterwards it
// stops weft with SIGTERM (which must exit 0 within 10 s) and Jaeger. Goroutine
// leak checks (goleak) are left out on purpose: everything under test runs in
// other processes, and the test process's own HTTP and gRPC clients keep
// idle goroutines by design.
func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	if euid := os.Geteuid(); euid != 0 {
		skipReason = fmt.Sprintf("e2e tests load eBPF programs and need root (euid is %d); run as root: go test -v -count=1 ./e2e/", euid)
		fmt.Fprintln(os.Stderr, "e2e: skipping every test:", skipReason)
		return m.Run()
	}
	s, err := setup()
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: set up: %v\n", err)
	} else {
		suite = s
		code = m.Run()
	}
	if err := s.teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: tear down: %v\n", err)
		code = 1
	}
	if s.dir != "" {
		if code != 0 || os.Getenv("WEFT_E2E_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "e2e: logs and configs kept in %s\n", s.dir)
		} else {
			os.RemoveAll(s.dir)
		}
	}
	return code
}

// setup returns the environment, partly filled on error (for teardown).
func setup() (*suiteEnv, error) {
	s := &suiteEnv{bin: map[string]string{}}
	var err error
	if s.root, err = repoRoot(); err != nil {
		return s, err
	}
	if _, err := jaegerBinary(); err != nil {
		return s, err
	}
	if s.dir, err = os.MkdirTemp("", "weft-e2e-"); err != nil {
		return s, err
	}
	start := time.Now()
	if s.jaeger, err = startJaeger(s.dir); err != nil {
		return s, err
	}
	for _, w := range workloads {
		s.bin[w] = filepath.Join(s.dir, "bin", w)
		if err := goBuild(s.root, "./e2e/testdata/"+w, s.bin[w]); err != nil {
			return s, err
		}
	}
	// A weft that does not build or start is not a set-up error: the tests
	// that need no agent (the harness round trip) still run, and every test
	// that needs it fails with this error.
	weftBin := os.Getenv("WEFT_E2E_BIN")
	if weftBin == "" {
		weftBin = filepath.Join(s.dir, "bin", "weft")
		if err := goBuild(s.root, "./cmd/weft", weftBin); err != nil {
			s.weftErr = fmt.Errorf("build weft: %w", err)
		}
	}
	s.weftBin = weftBin
	if s.weftErr == nil {
		if s.weft, err = startWeft(weftBin, s.dir, s.jaeger.otlpGRPC); err != nil {
			s.weftErr = err
		}
	}
	if s.weftErr != nil {
		fmt.Fprintf(os.Stderr, "e2e: weft is not running; tests that need it will fail:\n%v\n", s.weftErr)
	}
	fmt.Fprintf(os.Stderr, "e2e: ready in %v: jaeger api %s, otlp grpc %s; weft http %s; dir %s\n",
		time.Since(start).Round(time.Millisecond), s.jaeger.client.base, s.jaeger.otlpGRPC, s.weftAddr(), s.dir)
	return s, nil
}

func (s *suiteEnv) weftAddr() string {
	if s.weft == nil {
		return "(none)"
	}
	return s.weft.httpAddr
}

// teardown stops weft (which must exit 0 after SIGTERM) and Jaeger.
func (s *suiteEnv) teardown() error {
	var errs []error
	if s.weft != nil {
		if !s.weft.running() && s.weftErr == nil {
			errs = append(errs, fmt.Errorf("weft %s before the end of the tests\nweft log (%s):\n%s", s.weft.describeExit(), s.weft.logPath, tail(s.weft.logPath, 40)))
		} else if s.weft.running() {
			if err := s.weft.shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.jaeger != nil {
		s.jaeger.stop(syscall.SIGTERM, 5*time.Second)
	}
	return errors.Join(errs...)
}

// needSuite skips the test when the suite cannot run here (not root) and
// returns the environment; when the test fails, Jaeger's latest warnings and
// errors are printed.
func needSuite(t *testing.T) *suiteEnv {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("jaeger warnings and errors (%s):\n%s", suite.jaeger.logPath, jaegerProblems(suite.jaeger.logPath, 10))
		}
	})
	return suite
}

// needWeft is needSuite for tests that need the agent: it fails the test
// when weft is not running, and prints weft's log tail when the test fails.
func needWeft(t *testing.T) *suiteEnv {
	t.Helper()
	s := needSuite(t)
	if s.weftErr != nil {
		t.Fatalf("weft agent is not running, no spans can be checked:\n%v", s.weftErr)
	}
	if !s.weft.running() {
		t.Fatalf("weft %s during the tests\nweft log (%s):\n%s", s.weft.describeExit(), s.weft.logPath, tail(s.weft.logPath, 60))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weft log tail (%s):\n%s", s.weft.logPath, tail(s.weft.logPath, 60))
		}
	})
	return s
}
