// Package jaeger knows the pinned Jaeger release the tests and the demo
// run: where `make jaeger` (e2e/jaeger.sh) caches its binary, and the one
// configuration both use, so a Jaeger upgrade is one edit.
package jaeger

import (
	"fmt"
	"os"
	"path/filepath"
)

// Version is the Jaeger release `make jaeger` builds.
const Version = "v1.76.0"

// Binary finds the Jaeger binary: path when set, else $WEFT_JAEGER_BIN,
// else the cache path e2e/jaeger.sh builds ($WEFT_CACHE or ~/.cache/weft).
func Binary(path string) (string, error) {
	if path == "" {
		path = os.Getenv("WEFT_JAEGER_BIN")
	}
	if path == "" {
		cache := os.Getenv("WEFT_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find jaeger: %w", err)
			}
			cache = filepath.Join(home, ".cache", "weft")
		}
		path = filepath.Join(cache, "jaeger-"+Version)
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("jaeger %s binary not found at %s: run make jaeger (e2e/jaeger.sh) or set WEFT_JAEGER_BIN", Version, path)
	}
	return path, nil
}

// Ports are the loopback ports a Jaeger listens on.
type Ports struct {
	Query, QueryGRPC, OTLPGRPC, OTLPHTTP int
}

// Config is a Jaeger v2 (OpenTelemetry Collector) configuration: the
// all-in-one pipeline reduced to OTLP in, memory storage (at most
// maxTraces) and the query API, every listener on 127.0.0.1 (the built-in
// default binds the query ports on all interfaces and opens a dozen fixed
// ports). No batch processor, so spans are searchable as soon as they are
// received; Jaeger's own tracing and metrics are off. uiAssets, when set,
// is a built jaeger-ui directory to serve.
func Config(p Ports, maxTraces int, uiAssets string) []byte {
	ui := ""
	if uiAssets != "" {
		ui = fmt.Sprintf("    ui:\n      assets_path: %q\n", uiAssets)
	}
	return fmt.Appendf(nil, config, maxTraces, ui, p.Query, p.QueryGRPC, p.OTLPGRPC, p.OTLPHTTP)
}

const config = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: %[1]d
  jaeger_query:
    storage:
      traces: mem
    enable_tracing: false
%[2]s    http:
      endpoint: 127.0.0.1:%[3]d
    grpc:
      endpoint: 127.0.0.1:%[4]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[5]d
      http:
        endpoint: 127.0.0.1:%[6]d
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`
