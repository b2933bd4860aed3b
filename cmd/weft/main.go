// Command weft is the node agent: it loads the kernel probes, rebuilds
// protocol exchanges from the captured bytes and exports them as spans.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weftrace/weft/bpf"
	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/exporter"
	"github.com/weftrace/weft/internal/memlimit"
	"github.com/weftrace/weft/procmeta"
	"github.com/weftrace/weft/protocols/detect"
	"github.com/weftrace/weft/protocols/dns"
	"github.com/weftrace/weft/protocols/http1"
	"github.com/weftrace/weft/protocols/http2"
	"github.com/weftrace/weft/protocols/postgres"
	"github.com/weftrace/weft/servicemap"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv, os.Stderr)) }

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "weft:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := bpf.Check(); err != nil {
		fmt.Fprintln(stderr, "weft:", err)
		return 1
	}
	if err := serve(cfg, getenv, log); err != nil {
		fmt.Fprintln(stderr, "weft:", err)
		return 1
	}
	return 0
}

// serve wires the pipeline (bpf -> conn -> protocols -> correlate ->
// exporter and service map), runs it until SIGINT/SIGTERM, then drains it
// in order.
func serve(cfg config, getenv func(string) string, log *slog.Logger) error {
	mem := memlimit.New(cfg.memoryLimit)
	stopMem := make(chan struct{})
	defer close(stopMem)
	go mem.Run(stopMem)
	exp, err := exporter.New(cfg.exporter, log)
	if err != nil {
		return fmt.Errorf("start exporter: %w", err)
	}
	md := startMetadata(cfg, log)
	defer md.stop()
	host := hostName(getenv)
	procs := procmeta.NewCache(procmeta.Config{HostName: host, Enricher: md.resolver})
	clock := bpf.NewClock()
	smap := servicemap.New(servicemap.Config{})
	corr := correlate.New(correlate.Config{Clock: clock.Wall, Join: cfg.join, HostID: host, KeepQueryLiterals: cfg.dbQueryLiterals, MaxSpanNames: cfg.maxSpanNames, PeerNames: md.peerNames()}, procs, spanSinks(exp, smap))
	detectStats, http1Stats, dnsStats := new(detect.Stats), new(http1.Stats), new(dns.Stats)
	http2Stats := new(http2.Stats)
	postgresStats := new(postgres.Stats)
	table := conn.NewTable(cfg.conn, detect.New(corr.Add, detect.Options{Stats: detectStats, HTTP1: http1.Options{Stats: http1Stats}, HTTP2: http2.Options{Stats: http2Stats}, DNS: dns.Options{Stats: dnsStats}, Postgres: postgres.Options{Stats: postgresStats}}))

	tracer, err := bpf.Load(cfg.bpf, log)
	if err != nil {
		shutdownExporter(exp, cfg.shutdownTimeout, log)
		return err
	}
	m, err := newMetrics()
	if err != nil {
		tracer.Close()
		return err
	}
	for _, r := range []interface {
		RegisterMetrics(m metricMeter) error
	}{tracer, table.Stats(), detectStats, http1Stats, http2Stats, dnsStats, postgresStats, corr, procs, md.resolver, exp, smap, mem} {
		if err := r.RegisterMetrics(m.meter); err != nil {
			tracer.Close()
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	stopHTTP, err := serveHTTP(cfg.httpAddr, m, tracer.Ready, smap, log)
	if err != nil {
		tracer.Close()
		return err
	}
	defer stopHTTP()

	events := &eventSink{mem: mem, table: table, procs: procs, corr: corr, ssl: tracer.OpenSSL(), golang: tracer.Go(), python: tracer.Python(), clock: clock, evictEvery: int64(time.Second)}
	done := make(chan error, 1)
	go func() { done <- tracer.Run(events) }()
	log.Info("weft ready", "exporter", cfg.exporter.ResolvedExporter(), "to", cfg.exporter.Destination(), "http", cfg.httpAddr, "memory_limit_mib", mem.Limit()>>20, "bpf_stats", cfg.bpf.ProgramStats)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var runErr error
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
		tracer.Close()
		runErr = <-done
	case runErr = <-done:
		tracer.Close()
	}
	// The reader has stopped: end every connection so parsers emit what they
	// hold, then give the exporter the rest of the budget to flush.
	table.Flush(bpf.Monotonic())
	corr.FlushAll() // spans still waiting for their other end or parent
	shutdownExporter(exp, cfg.shutdownTimeout, log)
	return runErr
}

// spanSinks hands every finished span to the sinks, side by side: the
// exporter and the service map.
func spanSinks(exp *exporter.Exporter, smap *servicemap.Map) func(correlate.Span) {
	return func(s correlate.Span) {
		exp.Submit(s)
		smap.Add(s)
	}
}

func shutdownExporter(exp *exporter.Exporter, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := exp.Shutdown(ctx); err != nil {
		log.Warn("exporter shutdown", "err", err)
	}
}
