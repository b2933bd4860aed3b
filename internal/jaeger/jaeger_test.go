package jaeger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	c := string(Config(Ports{Query: 1001, QueryGRPC: 1002, OTLPGRPC: 1003, OTLPHTTP: 1004}, 7, ""))
	for _, want := range []string{"max_traces: 7", "endpoint: 127.0.0.1:1001", "endpoint: 127.0.0.1:1002", "endpoint: 127.0.0.1:1003", "endpoint: 127.0.0.1:1004"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "assets_path") || strings.Contains(c, "0.0.0.0") {
		t.Errorf("config serves a UI or listens beyond loopback:\n%s", c)
	}
	if ui := string(Config(Ports{}, 1, "/srv/ui")); !strings.Contains(ui, "    ui:\n      assets_path: \"/srv/ui\"\n    http:") {
		t.Errorf("ui block misplaced:\n%s", ui)
	}
}

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WEFT_JAEGER_BIN", "")
	t.Setenv("WEFT_CACHE", dir)
	if _, err := Binary(""); err == nil || !strings.Contains(err.Error(), "run make jaeger") {
		t.Errorf("no binary: %v, want a one-line hint", err)
	}
	bin := filepath.Join(dir, "jaeger-"+Version)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Binary(""); err != nil || got != bin {
		t.Errorf("Binary() = %q, %v; want %q", got, err, bin)
	}
}
