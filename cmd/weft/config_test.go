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
}
