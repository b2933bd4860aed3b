package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"golang.org/x/sys/unix"

	"github.com/weftrace/weft/bpf"
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/exporter"
	"github.com/weftrace/weft/internal/memlimit"
	"github.com/weftrace/weft/k8smeta"
)

// config is everything the flags and the environment set.
type config struct {
	exporter        exporter.Config
	bpf             bpf.Config
	conn            conn.TableConfig
	join            correlate.JoinConfig
	dbQueryLiterals bool  // db.query.text as sent, literals and all
	maxSpanNames    int   // distinct span names per service
	memoryLimit     int64 // bytes; negative: none
	httpAddr        string
	dockerSocket    string // "" disables Docker lookups
	k8sClusterName  string // k8s.cluster.name on every resource
	shutdownTimeout time.Duration
	logLevel        slog.Level
}

// envFlag is a flag that mirrors an OTel environment variable: setting it
// overrides the variable, so one parser (exporter.FromEnv) reads both.
type envFlag struct {
	env       string
	overrides map[string]string
}

func (f *envFlag) String() string { return "" }
func (f *envFlag) Set(v string) error {
	f.overrides[f.env] = v
	return nil
}

// mirroredEnv lists the flags that mirror OTel variables.
var mirroredEnv = []struct{ flag, env, usage string }{
	{"exporter", "OTEL_TRACES_EXPORTER", "span exporter: otlp, console, jsonl or none (default otlp when an endpoint is set, else console)"},
	{"otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP endpoint, e.g. http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318 (http/protobuf)"},
	{"otlp-traces-endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTLP traces endpoint, used as is"},
	{"otlp-protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTLP protocol: grpc or http/protobuf"},
	{"otlp-headers", "OTEL_EXPORTER_OTLP_HEADERS", "OTLP headers as k=v,k2=v2"},
	{"otlp-timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTLP export timeout in ms"},
	{"otlp-ca-file", "OTEL_EXPORTER_OTLP_CERTIFICATE", "CA certificate file for OTLP over TLS"},
	{"otlp-client-certificate", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "client certificate file for OTLP mutual TLS"},
	{"otlp-client-key", "OTEL_EXPORTER_OTLP_CLIENT_KEY", "client private key file for OTLP mutual TLS"},
	{"otlp-insecure", "OTEL_EXPORTER_OTLP_INSECURE", "OTLP gRPC without TLS (true/false)"},
	{"otlp-compression", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTLP compression: gzip or none"},
	{"resource-attributes", "OTEL_RESOURCE_ATTRIBUTES", "resource attributes added to every span, k=v,k2=v2"},
	{"max-queue-size", "OTEL_BSP_MAX_QUEUE_SIZE", "spans queued before the oldest are dropped"},
	{"schedule-delay", "OTEL_BSP_SCHEDULE_DELAY", "export batch delay in ms"},
	{"max-export-batch-size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "spans per export batch"},
}

// parseConfig reads flags over the environment. Errors are one line each.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("weft", flag.ContinueOnError)
	fs.SetOutput(stderr)
	overrides := map[string]string{}
	for _, m := range mirroredEnv {
		fs.Var(&envFlag{env: m.env, overrides: overrides}, m.flag, m.usage+" ($"+m.env+")")
	}
	var c config
	jsonlPath := fs.String("jsonl-path", "", "file the jsonl exporter appends to, one JSON object per span")
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:9464", "address of /metrics, /healthz and /readyz (empty disables)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long to flush pending spans on SIGINT/SIGTERM")
	fs.IntVar(&c.bpf.CaptureSize, "capture-size", bpf.DefaultCaptureSize, fmt.Sprintf("bytes captured per syscall (max %d); the real length is always known", bpf.MaxCaptureSize))
	fs.IntVar(&c.bpf.RingBufferSize, "ringbuf-size", bpf.DefaultRingBufferSize, "kernel ring buffer size in bytes (power of two)")
	fs.BoolFunc("go-client-hook", "hook Go net/http clients' request hand-off (one uprobe per request) so Go calls nest under the request that made them (default true)", func(v string) error {
		on, err := strconv.ParseBool(v)
		c.bpf.NoGoClientHook = !on
		return err
	})
	fs.BoolFunc("python-tasks", "read the running asyncio task from CPython 3.11 processes at each of their TCP writes (a few memory reads, no uprobe) so asyncio calls nest under the request that made them (default true)", func(v string) error {
		on, err := strconv.ParseBool(v)
		c.bpf.NoPythonTasks = !on
		return err
	})
	fs.IntVar(&c.bpf.WakeupEvents, "wakeup-events", bpf.DefaultWakeupEvents, "wake the reader every N events per CPU")
	fs.BoolVar(&c.bpf.ProgramStats, "bpf-stats", false, "turn on the kernel's BPF run-time statistics while weft runs and export each of weft's programs' runs and run time on /metrics (costs two clock reads per program run)")
	fs.IntVar(&c.conn.MaxConns, "max-conns", conn.DefaultMaxConns, "connections tracked at once")
	fs.DurationVar(&c.conn.IdleTimeout, "conn-idle-timeout", conn.DefaultIdleTimeout, "end connections idle this long")
	fs.IntVar(&c.conn.MaxTotalPendingBytes, "max-reorder-bytes", conn.DefaultMaxTotalPendingBytes, "bytes held out of order across all connections")
	fs.DurationVar(&c.join.Wait, "join-wait", correlate.DefaultJoinWait, "how long a span waits for the other end of its connection and for its parent")
	fs.IntVar(&c.join.MaxSpans, "join-max-spans", correlate.DefaultJoinMaxSpans, "spans held for joining; beyond, the oldest is emitted early")
	fs.StringVar(&c.dockerSocket, "docker-socket", k8smeta.DefaultDockerSocket, "Docker Engine API socket for container names and images, used when it exists (empty disables)")
	fs.StringVar(&c.k8sClusterName, "k8s-cluster-name", "", "k8s.cluster.name resource attribute of every span (Kubernetes cannot tell its own name)")
	fs.BoolVar(&c.dbQueryLiterals, "db-query-literals", false, "keep literals in db.query.text (by default they are replaced by ?: they may hold personal data)")
	fs.IntVar(&c.maxSpanNames, "max-span-names", correlate.DefaultMaxSpanNames, "distinct span names per service; beyond, new names become the protocol's generic one (the HTTP method, grpc, DNS, postgresql), counted (negative: no limit)")
	memMiB := fs.Int64("memory-limit", memlimit.DefaultLimit>>20, "cap on weft's resident memory in MiB: the Go runtime's soft limit is set under it, and new kernel data events are shed (counted) while the live heap nears it (negative: no cap)")
	consoleMode := fs.String("console-mode", "auto", "console exporter output: spans (a line per span), summary (a line per service every 5 s), or auto (summary when stdout is a terminal)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.memoryLimit = *memMiB << 20
	if *memMiB < 0 {
		c.memoryLimit = -1
	}
	if err := memlimit.Validate(c.memoryLimit); err != nil {
		return c, fmt.Errorf("bad --memory-limit: %w", err)
	}
	if c.maxSpanNames == 0 {
		return c, fmt.Errorf("bad --max-span-names 0: use a positive number, or negative for no limit")
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: weft takes flags only (see -h)", fs.Arg(0))
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fmt.Errorf("bad -log-level %q: use debug, info, warn or error", *level)
	}
	env := func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return getenv(k)
	}
	exp, err := exporter.FromEnv(env)
	if err != nil {
		return c, oneLine(err)
	}
	if *jsonlPath != "" {
		exp.JSONLPath = *jsonlPath
	}
	if c.k8sClusterName != "" {
		if exp.ResourceAttributes == nil {
			exp.ResourceAttributes = map[string]string{}
		}
		exp.ResourceAttributes[string(semconv.K8SClusterNameKey)] = c.k8sClusterName
	}
	switch *consoleMode {
	case "spans":
	case "summary":
		exp.ConsoleSummary = true
	case "auto":
		exp.ConsoleSummary = stdoutIsTerminal()
	default:
		return c, fmt.Errorf("bad --console-mode %q: use auto, spans or summary", *consoleMode)
	}
	c.exporter = exp
	if err := otlpFlagsUnused(fs, c.exporter.ResolvedExporter()); err != nil {
		return c, err
	}
	if err := c.exporter.Validate(); err != nil {
		return c, oneLine(err)
	}
	if err := c.bpf.Validate(); err != nil {
		return c, err
	}
	if err := c.conn.Validate(); err != nil {
		return c, oneLine(err)
	}
	if err := c.join.Validate(); err != nil {
		return c, oneLine(err)
	}
	return c, nil
}

// oneLine joins a multi-error into one line for the terminal.
func oneLine(err error) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
}

// otlpFlagsUnused reports --otlp-* flags given while spans go to another
// exporter: they would be ignored without a word otherwise. (OTEL_*
// variables are not checked: the environment may be meant for other
// programs.)
func otlpFlagsUnused(fs *flag.FlagSet, exporterName string) error {
	if exporterName == exporter.ExporterOTLP {
		return nil
	}
	var given string
	fs.Visit(func(f *flag.Flag) {
		if given == "" && strings.HasPrefix(f.Name, "otlp-") {
			given = f.Name
		}
	})
	if given != "" {
		return fmt.Errorf("--%s given but spans go to the %s exporter: add --otlp-endpoint URL (or --exporter otlp)", given, exporterName)
	}
	return nil
}

// stdoutIsTerminal reports whether standard output is a terminal, where
// the console exporter summarises rather than printing a line per span.
var stdoutIsTerminal = func() bool {
	_, err := unix.IoctlGetTermios(int(os.Stdout.Fd()), unix.TCGETS)
	return err == nil
}
