package bpf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// MaxCaptureSize is the largest per-syscall capture the C side supports.
const MaxCaptureSize = 16384

// Config sets the kernel side's sizes. Zero values take the defaults.
type Config struct {
	// CaptureSize is the most bytes copied per syscall (<= MaxCaptureSize);
	// the real length is always reported.
	CaptureSize int
	// RingBufferSize is the ring buffer's size in bytes: a power of two and
	// a multiple of the page size.
	RingBufferSize int
	// WakeupEvents wakes user space every N events per CPU; WakeupBytes
	// wakes it when this much data is waiting. Between wake-ups the reader
	// polls every PollInterval.
	WakeupEvents int
	WakeupBytes  int
	PollInterval time.Duration
	// SelfPID is never traced (weft's own pid by default).
	SelfPID int
	// OnlyPID, when set, is the one process traced: benchmarks use it so
	// that other processes' syscalls do not run the full programs.
	OnlyPID int
	// NoGoClientHook leaves net/http's client hand-off unhooked: no uprobe
	// trap per Go client request, and Go calls made through net/http's
	// Transport are then attributed only by the time rules.
	NoGoClientHook bool
	// NoPythonTasks registers no CPython process with the kernel side: no
	// task is read at their writes, and asyncio calls are attributed only
	// by the thread and time rules.
	NoPythonTasks bool
	// ProgramStats turns on the kernel's BPF run-time statistics while the
	// tracer is loaded, and RegisterMetrics exports each program's runs and
	// run time. Off by default: the kernel then reads the clock twice per
	// program run.
	ProgramStats bool
}

// Defaults for Config.
const (
	DefaultCaptureSize    = 8192
	DefaultRingBufferSize = 16 << 20
	DefaultWakeupEvents   = 32
	DefaultPollInterval   = 10 * time.Millisecond
)

func (c *Config) setDefaults() {
	if c.CaptureSize == 0 {
		c.CaptureSize = DefaultCaptureSize
	}
	if c.RingBufferSize == 0 {
		c.RingBufferSize = DefaultRingBufferSize
	}
	if c.WakeupEvents == 0 {
		c.WakeupEvents = DefaultWakeupEvents
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = c.RingBufferSize / 8
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.SelfPID == 0 {
		c.SelfPID = os.Getpid()
	}
}

// Validate says in one line what is wrong with c.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.CaptureSize < 0 || c.CaptureSize > MaxCaptureSize:
		return fmt.Errorf("capture size %d out of range: use 0..%d bytes", c.CaptureSize, MaxCaptureSize)
	case c.RingBufferSize&(c.RingBufferSize-1) != 0 || c.RingBufferSize < os.Getpagesize():
		return fmt.Errorf("ring buffer size %d invalid: use a power of two of at least %d bytes", c.RingBufferSize, os.Getpagesize())
	case c.WakeupEvents < 1:
		return fmt.Errorf("wakeup events %d invalid: use 1 or more", c.WakeupEvents)
	}
	return nil
}

// Tracer owns the loaded programs, their links and the ring buffer reader.
type Tracer struct {
	cfg    Config
	objs   weftObjects
	links  []link.Link
	reader *ringbuf.Reader
	log    *slog.Logger
	ssl    *OpenSSL
	golang *GoRuntime
	python *PythonRuntime
	stats  io.Closer   // kernel run-time statistics, nil unless Config.ProgramStats
	fill   *mapCounter // entries of the hash maps, for the metrics

	ready     atomic.Bool
	malformed atomic.Uint64
	received  atomic.Uint64
	closeOnce sync.Once
}

// Load loads the programs with cfg's sizes and attaches every probe. A
// missing required probe fails with the hook's name; a missing optional one
// is logged and skipped.
func Load(cfg Config, log *slog.Logger) (*Tracer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	if _, err := tracefs(); err != nil {
		return nil, err
	}
	spec, err := loadWeft()
	if err != nil {
		return nil, fmt.Errorf("load bpf spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(cfg.RingBufferSize)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count cpus: %w", err)
	}
	spec.Maps["scratch_buf"].MaxEntries = uint32(ncpu)
	for name, v := range map[string]any{
		"self_tgid":     uint32(cfg.SelfPID),
		"only_tgid":     uint32(cfg.OnlyPID),
		"capture_size":  uint32(cfg.CaptureSize),
		"wakeup_events": uint32(cfg.WakeupEvents),
		"wakeup_bytes":  uint64(cfg.WakeupBytes),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}

	t := &Tracer{cfg: cfg, log: log}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			log.Error("bpf verifier rejected a program", "log", fmt.Sprintf("%+v", verr))
		}
		return nil, fmt.Errorf("load bpf objects: %w", err)
	}
	if cfg.ProgramStats {
		// Before attaching, so every run is counted.
		if t.stats, err = enableProgramStats(); err != nil {
			t.Close()
			return nil, err
		}
	}
	t.fill = newMapCounter(t.hashMaps(), MapCountInterval)
	for _, p := range probes {
		l, err := link.Tracepoint(p.group, p.name, p.prog(&t.objs.weftPrograms), nil)
		if err != nil {
			if p.required {
				t.Close()
				return nil, fmt.Errorf("attach %s/%s: %w", p.group, p.name, err)
			}
			log.Warn("optional probe skipped", "hook", p.group+"/"+p.name, "err", err)
			continue
		}
		t.links = append(t.links, l)
	}
	t.reader, err = ringbuf.NewReader(t.objs.Events)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	// OpenSSL is optional: a host without it still traces plaintext.
	t.ssl = newOpenSSL(&t.objs.weftPrograms, log)
	t.ssl.AttachHost()
	t.ssl.ScanAll()
	t.golang = newGoRuntime(&t.objs, log, !cfg.NoGoClientHook)
	t.golang.ScanAll()
	if !cfg.NoPythonTasks {
		t.python = newPythonRuntime(&t.objs, log)
		t.python.ScanAll()
	}
	t.ready.Store(true)
	return t, nil
}

// OpenSSL returns the uprobe manager: the event handler tells it about new
// and exited processes.
func (t *Tracer) OpenSSL() *OpenSSL { return t.ssl }

// Go returns the Go runtime tracker: the event handler tells it about new
// and exited processes and asks it which processes are Go.
func (t *Tracer) Go() *GoRuntime { return t.golang }

// Python returns the CPython tracker: the event handler tells it about new
// processes.
func (t *Tracer) Python() *PythonRuntime { return t.python }

// Ready reports whether every probe is attached and events flow.
func (t *Tracer) Ready() bool { return t.ready.Load() }

// Run reads the ring buffer and calls h until Close. It returns nil after
// Close and the reader's error otherwise.
func (t *Tracer) Run(h Handler) error {
	var rec ringbuf.Record
	t.reader.SetDeadline(time.Now().Add(t.cfg.PollInterval))
	for {
		err := t.reader.ReadInto(&rec)
		switch {
		case err == nil:
			t.received.Add(1)
			if !dispatch(rec.RawSample, h) {
				t.malformed.Add(1)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			h.Tick(Monotonic())
			t.reader.SetDeadline(time.Now().Add(t.cfg.PollInterval))
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed):
			return nil
		default:
			return fmt.Errorf("read ring buffer: %w", err)
		}
	}
}

// Lost returns, per CPU, the events the kernel could not put in the ring
// buffer since load.
func (t *Tracer) Lost() ([]uint64, error) {
	var perCPU []uint64
	if err := t.objs.Lost.Lookup(uint32(0), &perCPU); err != nil {
		return nil, fmt.Errorf("read lost counters: %w", err)
	}
	return perCPU, nil
}

// MapFill returns the entries and capacity of each kernel hash map,
// counted at most MapCountInterval ago (see countEntries).
func (t *Tracer) MapFill() ([]MapFill, error) { return t.fill.Fill() }

// Received counts samples read; Malformed counts samples that did not
// decode (a kernel/user layout mismatch would show here).
func (t *Tracer) Received() uint64  { return t.received.Load() }
func (t *Tracer) Malformed() uint64 { return t.malformed.Load() }

// Close detaches every probe and stops Run.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		t.ready.Store(false)
		if t.ssl != nil {
			t.ssl.close()
		}
		if t.golang != nil {
			t.golang.close()
		}
		if t.python != nil {
			t.python.close()
		}
		for _, l := range t.links {
			l.Close()
		}
		if t.reader != nil {
			t.reader.Close()
		}
		if t.stats != nil {
			t.stats.Close()
		}
		t.objs.Close()
	})
	return nil
}
