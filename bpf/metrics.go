package bpf

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics exports the kernel side's counters: events lost per CPU
// (ring buffer full), samples received and samples that did not decode;
// and, with Config.ProgramStats, each program's runs and run time.
func (t *Tracer) RegisterMetrics(m metric.Meter) error {
	if t.stats != nil {
		if err := t.registerProgramStats(m); err != nil {
			return err
		}
	}
	lost, err := m.Int64ObservableCounter("weft_bpf_events_lost",
		metric.WithDescription("Events the kernel could not put in the ring buffer (it was full), per CPU."))
	if err != nil {
		return err
	}
	recv, err := m.Int64ObservableCounter("weft_bpf_events_received",
		metric.WithDescription("Ring buffer samples read."))
	if err != nil {
		return err
	}
	bad, err := m.Int64ObservableCounter("weft_bpf_events_malformed",
		metric.WithDescription("Ring buffer samples that did not decode and were dropped."))
	if err != nil {
		return err
	}
	libs, err := m.Int64ObservableGauge("weft_bpf_openssl_libraries",
		metric.WithDescription("Library or executable files with OpenSSL uprobes attached."))
	if err != nil {
		return err
	}
	sslFail, err := m.Int64ObservableCounter("weft_bpf_openssl_attach_failed",
		metric.WithDescription("OpenSSL files whose uprobes could not be attached (their TLS traffic is not traced)."))
	if err != nil {
		return err
	}
	sslGone, err := m.Int64ObservableCounter("weft_bpf_openssl_vanished",
		metric.WithDescription("Processes that exited before OpenSSL discovery could read their maps or open their OpenSSL files through /proc/PID (the host's libssl is probed by its host path, so only private copies are missed)."))
	if err != nil {
		return err
	}
	sslDrop, err := m.Int64ObservableCounter("weft_bpf_openssl_notices_dropped",
		metric.WithDescription("New-process notices dropped because OpenSSL discovery was behind."))
	if err != nil {
		return err
	}
	unmapped, err := m.Int64ObservableCounter("weft_bpf_ssl_calls_unmapped",
		metric.WithDescription("SSL_read/SSL_write calls dropped because their socket was never seen (no nested syscall yet)."))
	if err != nil {
		return err
	}
	goProcs, err := m.Int64ObservableCounter("weft_bpf_go_processes",
		metric.WithDescription("Go processes registered for goroutine tracking (result=tracked), that could not be (result=failed: their calls stay roots unless a time rule decides), or that exited before inspection (result=exited)."))
	if err != nil {
		return err
	}
	pyProcs, err := m.Int64ObservableCounter("weft_bpf_python_processes",
		metric.WithDescription("CPython processes registered for asyncio task tracking (result=tracked), that could not be (result=failed: their calls under concurrency stay roots), or that exited before inspection (result=exited)."))
	if err != nil {
		return err
	}
	pyDrop, err := m.Int64ObservableCounter("weft_bpf_python_notices_dropped",
		metric.WithDescription("New-process notices dropped because CPython inspection was behind (those processes are not tracked by task)."))
	if err != nil {
		return err
	}
	goDrop, err := m.Int64ObservableCounter("weft_bpf_go_notices_dropped",
		metric.WithDescription("New-process notices dropped because Go runtime inspection was behind (those processes are not tracked by goroutine)."))
	if err != nil {
		return err
	}
	grpcMissed, err := m.Int64ObservableGauge("weft_bpf_go_grpc_unhooked",
		metric.WithDescription("Go executables that link grpc-go but have no grpc-go hooks (no DWARF for its transport structs): their gRPC calls under concurrency stay roots."))
	if err != nil {
		return err
	}
	goHooked, err := m.Int64ObservableGauge("weft_bpf_go_http_client_hooks",
		metric.WithDescription("Go executables with the net/http client hand-off uprobe attached."))
	if err != nil {
		return err
	}
	grpcHooked, err := m.Int64ObservableGauge("weft_bpf_go_grpc_hooks",
		metric.WithDescription("Go executables with grpc-go's stream uprobes attached (server handler and client write)."))
	if err != nil {
		return err
	}
	entries, err := m.Int64ObservableGauge("weft_bpf_map_entries",
		metric.WithDescription("Entries in each kernel hash map, counted at most every 10 s. The LRU maps (conns, procs_seen, go_cause, fd_cause, ssl_fds) evict their oldest entries without a word when full: entries at weft_bpf_map_max_entries means some were."))
	if err != nil {
		return err
	}
	maxEntries, err := m.Int64ObservableGauge("weft_bpf_map_max_entries",
		metric.WithDescription("Capacity of each kernel hash map."))
	if err != nil {
		return err
	}
	tracked := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "tracked")))
	failed := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "failed")))
	exited := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "exited")))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(recv, int64(t.Received()))
		if g := t.golang; g != nil {
			o.ObserveInt64(goProcs, int64(g.Registered()), tracked)
			o.ObserveInt64(goProcs, int64(g.Failed()), failed)
			o.ObserveInt64(goProcs, int64(g.Exited()), exited)
			o.ObserveInt64(goDrop, int64(g.Dropped()))
			o.ObserveInt64(goHooked, g.Hooked())
			o.ObserveInt64(grpcHooked, g.GRPCHooked())
			o.ObserveInt64(grpcMissed, g.GRPCUnhooked())
		}
		if p := t.python; p != nil {
			o.ObserveInt64(pyProcs, int64(p.Registered()), tracked)
			o.ObserveInt64(pyProcs, int64(p.Failed()), failed)
			o.ObserveInt64(pyProcs, int64(p.Exited()), exited)
			o.ObserveInt64(pyDrop, int64(p.Dropped()))
		}
		if t.ssl != nil {
			o.ObserveInt64(libs, t.ssl.Attached())
			o.ObserveInt64(sslFail, int64(t.ssl.Failed()))
			o.ObserveInt64(sslGone, int64(t.ssl.Vanished()))
			o.ObserveInt64(sslDrop, int64(t.ssl.dropped.Load()))
		}
		var perCPU []uint64
		if err := t.objs.SslUnmapped.Lookup(uint32(0), &perCPU); err == nil {
			var sum uint64
			for _, n := range perCPU {
				sum += n
			}
			o.ObserveInt64(unmapped, int64(sum))
		}
		o.ObserveInt64(bad, int64(t.Malformed()))
		fill, fillErr := t.MapFill()
		for _, f := range fill {
			byMap := metric.WithAttributes(attribute.String("map", f.Name))
			o.ObserveInt64(entries, f.Entries, byMap)
			o.ObserveInt64(maxEntries, f.MaxEntries, byMap)
		}
		perCPU, err := t.Lost()
		if err != nil {
			return err
		}
		for cpu, n := range perCPU {
			o.ObserveInt64(lost, int64(n), metric.WithAttributes(attribute.String("cpu", strconv.Itoa(cpu))))
		}
		return fillErr
	}, lost, recv, bad, libs, sslFail, sslGone, sslDrop, unmapped, goProcs, goDrop, pyProcs, pyDrop, goHooked, grpcHooked, grpcMissed, entries, maxEntries)
	return err
}
