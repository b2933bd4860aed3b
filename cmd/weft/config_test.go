package main

import (
	"io"
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
