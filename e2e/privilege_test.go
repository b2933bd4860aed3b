package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// capsWeftNeeds is the set weft is run with, all others dropped: the
// README's least set that loads, attaches the syscall tracepoints and
// reads /proc (uprobes need CAP_SYS_ADMIN on this kernel: not in it).
const capsWeftNeeds = "+bpf,+perfmon,+sys_ptrace,+dac_read_search"

// setprivArgs runs argv with only caps (bounding, inheritable and ambient
// sets), as a capability-dropping container runtime would.
func setprivArgs(t *testing.T, caps string, argv ...string) []string {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is not installed: %v", err)
	}
	return append([]string{setpriv, "--bounding-set=-all," + caps, "--inh-caps=-all," + caps, "--ambient-caps=" + caps}, argv...)
}

func suiteWeftBin(t *testing.T, s *suiteEnv) string {
	t.Helper()
	bin := os.Getenv("WEFT_E2E_BIN")
	if bin == "" {
		bin = filepath.Join(s.dir, "bin", "weft")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("weft binary: %v", err)
	}
	return bin
}

// TestLeastCapabilities: with only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and
// CAP_DAC_READ_SEARCH weft becomes ready and turns a real curl -> Go
// server exchange into spans (named from the processes' own environment,
// which CAP_SYS_PTRACE lets it read); without CAP_BPF or CAP_PERFMON it
// stops at once with one line naming the capability.
func TestLeastCapabilities(t *testing.T) {
	s := needSuite(t)
	bin := suiteWeftBin(t, s)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	out := filepath.Join(t.TempDir(), "spans.jsonl")
	p := startTestProc(t, "weft-least-caps", childEnv(), nil,
		setprivArgs(t, capsWeftNeeds, bin, "--exporter", "jsonl", "--jsonl-path", out, "--http-addr", addr, "--join-wait", "200ms")...)
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitUntil(weftReadyTimeout, p, func() error {
		code, body, err := httpGetStatus(hc, "http://"+addr+"/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /readyz: %d %s", code, body)
		}
		return err
	}); err != nil {
		t.Fatalf("weft with %s: %v\nlog:\n%s", capsWeftNeeds, err, tail(p.logPath, 20))
	}
	srvSvc, curlSvc := uniqueName("e2e-caps-srv"), uniqueName("e2e-caps-curl")
	port := startGoServer(t, srvSvc)
	path := "/items/" + token(6)
	runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc), curlOp{url: fmt.Sprintf("http://127.0.0.1:%d%s", port, path)})
	err = poll(spanTimeout, 100*time.Millisecond, p, func() error {
		kinds := map[string]string{}
		f, err := os.Open(out)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var sp struct {
				Kind        string         `json:"kind"`
				ServiceName string         `json:"service_name"`
				Attributes  map[string]any `json:"attributes"`
			}
			if json.Unmarshal(sc.Bytes(), &sp) == nil && sp.Attributes["url.path"] == path {
				kinds[sp.ServiceName] = sp.Kind
			}
		}
		if kinds[srvSvc] != "server" || kinds[curlSvc] != "client" {
			return fmt.Errorf("spans of %s so far: %v", path, kinds)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("with %s: %v\nweft log:\n%s", capsWeftNeeds, err, tail(p.logPath, 20))
	}

	for _, tc := range []struct{ caps, missing string }{
		{"+perfmon,+sys_ptrace,+dac_read_search", "CAP_BPF"},
		{"+bpf,+sys_ptrace,+dac_read_search", "CAP_PERFMON"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		argv := setprivArgs(t, tc.caps, bin, "--exporter", "none", "--http-addr", "")
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = childEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if err == nil || !strings.Contains(last, tc.missing) || strings.Contains(last, "ring buffer") {
			t.Errorf("weft without %s: err %v, last line %q; want a failure naming %s", tc.missing, err, last, tc.missing)
		}
	}
}
