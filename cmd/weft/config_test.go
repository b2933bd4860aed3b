package main

import (
	"io"
	"net"
	"strings"
	"testing"
)

// TestParseConfigErrors: bad input stops start-up with one line that says
// what to do; good input parses.
func TestParseConfigErrors(t *testing.T) {
	env := func(string) string { return "" }
	cases := []struct {
		args []string
		want string // substring of the error; "" means no error
	}{
		{[]string{"--otlp-endpoint", "http://127.0.0.1:4317", "--otlp-protocol", "grpc"}, ""},
		{[]string{"--otlp-protocol", "grpc"}, "--otlp-protocol given but spans go to the console exporter"},
		{[]string{"--otlp-endpoint", "http://127.0.0.1:4317", "--otlp-protocol", "carrier-pigeon"}, "carrier-pigeon"},
		{[]string{"--capture-size", "99999"}, "capture size 99999 out of range"},
		{[]string{"--log-level", "loud"}, "bad -log-level"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--memory-limit", "16"}, "bad --memory-limit"},
		{[]string{"--memory-limit", "-1", "--max-span-names", "-1"}, ""},
		{[]string{"--max-span-names", "0"}, "bad --max-span-names"},
	}
	for _, c := range cases {
		_, err := parseConfig(c.args, env, io.Discard)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: unexpected error %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one containing %q", c.args, err, c.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%q: error spans lines: %q", c.args, err)
		}
	}
}

// TestSafeDefaults: with no flags and no environment, /metrics listens on
// loopback only and SQL literals are replaced.
func TestSafeDefaults(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(c.httpAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Errorf("--http-addr defaults to %q, want a loopback address", c.httpAddr)
	}
	if c.dbQueryLiterals {
		t.Error("--db-query-literals defaults to on, want off")
	}
	if c.memoryLimit != 512<<20 || c.maxSpanNames != 1000 {
		t.Errorf("--memory-limit %d MiB, --max-span-names %d; want a 512 MiB cap and 1000 names", c.memoryLimit>>20, c.maxSpanNames)
	}
}

// TestKubernetesFlags: --k8s-cluster-name is on every resource, over
// OTEL_RESOURCE_ATTRIBUTES; --docker-socket defaults to Docker's and may be
// emptied; host.name is the node's only inside a pod.
func TestKubernetesFlags(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "k8s.cluster.name=old,team=a"}[k]
	}
	c, err := parseConfig([]string{"--k8s-cluster-name", "prod-eu"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.exporter.ResourceAttributes; got["k8s.cluster.name"] != "prod-eu" || got["team"] != "a" {
		t.Errorf("resource attributes %v", got)
	}
	if c.dockerSocket != "/var/run/docker.sock" {
		t.Errorf("docker socket %q", c.dockerSocket)
	}
	if c, _ := parseConfig([]string{"--docker-socket", ""}, env, io.Discard); c.dockerSocket != "" {
		t.Errorf("docker socket %q, want none", c.dockerSocket)
	}
	inPod := map[string]string{"NODE_NAME": "node-7", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
	if got := hostName(func(k string) string { return inPod[k] }); got != "node-7" {
		t.Errorf("host name in a pod %q", got)
	}
	if got := hostName(func(k string) string { return map[string]string{"NODE_NAME": "node-7"}[k] }); got == "node-7" {
		t.Errorf("host name outside a pod is NODE_NAME")
	}
}

// TestConsoleMode: --console-mode picks the console's output; auto
// summarises only when stdout is a terminal.
func TestConsoleMode(t *testing.T) {
	env := func(string) string { return "" }
	defer func(f func() bool) { stdoutIsTerminal = f }(stdoutIsTerminal)
	for _, c := range []struct {
		args     []string
		terminal bool
		summary  bool
	}{
		{nil, false, false},
		{nil, true, true},
		{[]string{"--console-mode", "auto"}, true, true},
		{[]string{"--console-mode", "spans"}, true, false},
		{[]string{"--console-mode", "summary"}, false, true},
	} {
		stdoutIsTerminal = func() bool { return c.terminal }
		cfg, err := parseConfig(c.args, env, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if cfg.exporter.ConsoleSummary != c.summary {
			t.Errorf("%q with a terminal %v: summary %v, want %v", c.args, c.terminal, cfg.exporter.ConsoleSummary, c.summary)
		}
	}
	if _, err := parseConfig([]string{"--console-mode", "loud"}, env, io.Discard); err == nil || !strings.Contains(err.Error(), "bad --console-mode") {
		t.Errorf("--console-mode loud: error %v", err)
	}
}
