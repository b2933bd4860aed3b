package detect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/http1"
	"github.com/weftrace/weft/protocols/recording"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// conv feeds one connection through a detect handler.
type conv struct {
	h   conn.Handler
	off [2]uint64
	got []protocols.Exchange
}

func newConv(role conn.Role, opts Options) *conv {
	c := &conv{}
	f := New(func(x *protocols.Exchange) {
		y := *x
		if x.HTTP != nil {
			h := *x.HTTP
			y.HTTP = &h
		}
		c.got = append(c.got, y)
	}, opts)
	c.h = f(&conn.Info{Role: role})
	return c
}

func (c *conv) send(d conn.Direction, data string, skip uint64) {
	s := conn.Segment{Dir: d, Offset: c.off[d], Skip: skip}
	if skip == 0 {
		s.Data = []byte(data)
	}
	c.off[d] += s.Len()
	c.h.Segment(&s)
}

const (
	req  = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
	resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
)

func TestDetect(t *testing.T) {
	type seg struct {
		d    conn.Direction
		data string
		skip uint64
	}
	for _, c := range []struct {
		name         string
		role         conn.Role
		segs         []seg
		opts         Options
		wantPaths    int
		detected     uint64
		ignored      uint64
		gaveUp       uint64
		ignoredBytes uint64
		desyncs      uint64
	}{
		{
			name:      "http request first",
			role:      conn.RoleClient,
			segs:      []seg{{conn.Egress, req, 0}, {conn.Ingress, resp, 0}, {conn.Egress, req, 0}, {conn.Ingress, resp, 0}},
			wantPaths: 2, detected: 1,
		},
		{
			name:      "http response first, role unknown",
			role:      conn.RoleUnknown,
			segs:      []seg{{conn.Ingress, resp, 0}, {conn.Egress, req, 0}, {conn.Ingress, resp, 0}},
			wantPaths: 1, detected: 1,
		},
		{
			name:      "empty segment decides nothing",
			role:      conn.RoleServer,
			segs:      []seg{{conn.Ingress, "", 0}, {conn.Ingress, req, 0}, {conn.Egress, resp, 0}},
			wantPaths: 1, detected: 1,
		},
		{
			name: "skips, then http",
			role: conn.RoleServer,
			segs: []seg{{conn.Ingress, "", 300}, {conn.Egress, "", 100}, {conn.Ingress, req, 0}, {conn.Egress, resp, 0}},
			// The parser sees the skipped start as a gap and counts it;
			// the response still pairs with the request.
			wantPaths: 1, detected: 1, desyncs: 2,
		},
		{
			name:    "not http",
			role:    conn.RoleClient,
			segs:    []seg{{conn.Egress, "\x16\x03\x01\x00\xa5hello", 0}, {conn.Ingress, resp, 0}, {conn.Egress, req, 0}, {conn.Egress, "", 1000}},
			ignored: 1, ignoredBytes: 10 + uint64(len(resp)+len(req)) + 1000,
		},
		{
			name:    "never captured",
			role:    conn.RoleClient,
			opts:    Options{MaxWaitSegments: 2},
			segs:    []seg{{conn.Egress, "", 10}, {conn.Ingress, "", 20}, {conn.Egress, "", 30}, {conn.Egress, req, 0}},
			ignored: 1, gaveUp: 1, ignoredBytes: 60 + uint64(len(req)),
		},
		{
			name:    "too many skipped bytes",
			role:    conn.RoleClient,
			opts:    Options{MaxWaitBytes: 100},
			segs:    []seg{{conn.Egress, "", 101}, {conn.Egress, req, 0}},
			ignored: 1, gaveUp: 1, ignoredBytes: 101 + uint64(len(req)),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Stats = new(Stats)
			c.opts.HTTP1.Stats = new(http1.Stats)
			v := newConv(c.role, c.opts)
			for _, s := range c.segs {
				v.send(s.d, s.data, s.skip)
			}
			v.h.Close(1)
			if len(v.got) != c.wantPaths {
				t.Errorf("got %d exchanges, want %d", len(v.got), c.wantPaths)
			}
			for _, x := range v.got {
				if x.HTTP.Path != "/x" || x.HTTP.Status != 200 || x.Protocol != protocols.HTTP1 {
					t.Errorf("exchange %+v, want GET /x 200", *x.HTTP)
				}
			}
			s := c.opts.Stats
			for name, p := range map[string][2]uint64{
				"detected http1": {s.Detected[protocols.HTTP1].Load(), c.detected},
				"ignored":        {s.Ignored.Load(), c.ignored},
				"gave up":        {s.GaveUp.Load(), c.gaveUp},
				"ignored bytes":  {s.IgnoredBytes.Load(), c.ignoredBytes},
				"http1 desyncs":  {c.opts.HTTP1.Stats.Desyncs.Load(), c.desyncs},
			} {
				if p[0] != p[1] {
					t.Errorf("%s = %d, want %d", name, p[0], p[1])
				}
			}
		})
	}
}

func TestIgnoredBytesFlush(t *testing.T) {
	var s Stats
	v := newConv(conn.RoleClient, Options{Stats: &s})
	v.send(conn.Egress, "not http", 0)
	v.send(conn.Egress, "", flushBytes)
	if got := s.IgnoredBytes.Load(); got != flushBytes+8 {
		t.Errorf("ignored bytes before close = %d, want %d flushed once past the threshold", got, flushBytes+8)
	}
	v.send(conn.Ingress, "", 5)
	v.h.Close(1)
	if got := s.IgnoredBytes.Load(); got != flushBytes+13 {
		t.Errorf("ignored bytes after close = %d, want %d", got, flushBytes+13)
	}
}

func TestRegistry(t *testing.T) {
	var s Stats
	seen := map[protocols.Protocol]bool{}
	for _, e := range registry {
		if int(e.proto) >= len(s.Detected) || e.proto == protocols.Unknown {
			t.Errorf("protocol %v has no Detected counter", e.proto)
		}
		if seen[e.proto] || e.match == nil || e.parser == nil {
			t.Errorf("entry for %v is duplicated or incomplete", e.proto)
		}
		seen[e.proto] = true
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if err := (Options{MaxWaitSegments: -1, HTTP1: http1.Options{MaxPending: -1}}).Validate(); err == nil {
		t.Error("negative options validated")
	}
}

func TestRegisterMetrics(t *testing.T) {
	var s Stats
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	if err := s.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	s.Detected[protocols.HTTP1].Add(3)
	s.Ignored.Add(4)
	s.GaveUp.Add(1)
	s.IgnoredBytes.Add(500)
	s.IgnoredDatagrams.Add(6)
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || m.Description == "" {
				t.Errorf("%s: %T (description %q), want a described monotonic int64 sum", m.Name, m.Data, m.Description)
				continue
			}
			for _, dp := range sum.DataPoints {
				name := m.Name
				if v, ok := dp.Attributes.Value(attribute.Key("protocol")); ok {
					name += "/" + v.AsString()
				}
				got[name] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"weft_detect_connections/http1":    3,
		"weft_detect_connections/http2":    0,
		"weft_detect_connections/dns":      0,
		"weft_detect_connections/postgres": 0,
		"weft_detect_ignored_connections":  4,
		"weft_detect_gave_up_connections":  1,
		"weft_detect_ignored_bytes":        500,
		"weft_detect_ignored_datagrams":    6,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %d, want %d", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// loadAnyRec reads a .rec capture: protocols/recording's format, or the
// DNS fixtures' (a "server ADDR" line, then "> tcp|udp CLIENT NS N"
// record headers), of which it keeps the TCP records.
func loadAnyRec(path string) ([]recording.Chunk, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(raw, []byte("server ")) {
		return recording.Parse(raw)
	}
	_, raw, _ = bytes.Cut(raw, []byte("\n"))
	var cs []recording.Chunk
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) != 5 {
			return nil, fmt.Errorf("bad record header %q", line)
		}
		n, err := strconv.Atoi(f[4])
		if err != nil || n+1 > len(rest) {
			return nil, fmt.Errorf("bad record header %q", line)
		}
		if f[1] == "tcp" {
			cs = append(cs, recording.Chunk{ToServer: f[0] == ">", Data: rest[:n]})
		}
		raw = rest[n+1:]
	}
	return cs, nil
}

// FuzzDetect feeds arbitrary segments (as FuzzParser encodes them) and
// checks that a connection is decided at most once and never panics.
func FuzzDetect(f *testing.F) {
	// Real captures of every protocol (the parsers' .rec fixtures, seen
	// from the client), so the fuzzer starts from what detection meets.
	for _, rec := range []string{"http1/testdata/curl-nginx-keepalive", "http1/testdata/raw-nginx-pipelined", "http2/testdata/curl-h2c",
		"http2/testdata/grpc-unary", "dns/testdata/dig-a-tcp", "postgres/testdata/psql-simple", "postgres/testdata/pgx-extended"} {
		cs, err := loadAnyRec(filepath.Join("..", rec+".rec"))
		if err != nil {
			f.Fatalf("%s: %v", rec, err)
		}
		b := []byte{byte(conn.RoleClient)}
		for _, c := range cs {
			d := conn.Ingress
			if c.ToServer {
				d = conn.Egress
			}
			b = recording.AppendOps(b, c.Data, d)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 0x20, 'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n', '\r', '\n'})
	f.Add([]byte{0, 0x02, 0x03, 0x10, 'H', 'T', 'T', 'P', '/', '1', '.', '0', ' ', '2', '0', '0', '\r', '\n', '\r', '\n'})
	f.Add([]byte{2, 0x0c, 0x16, 0x03, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		var s Stats
		opts := Options{Stats: &s, MaxWaitSegments: 4, MaxWaitBytes: 1000}
		v := newConv(conn.Role(in[0]%3), opts)
		var total uint64
		for i := 1; i < len(in); {
			op := in[i]
			i++
			n := int(op>>2)*7 + 1
			if op&2 != 0 {
				v.send(conn.Direction(op&1), "", uint64(n))
			} else {
				n = min(n, len(in)-i)
				v.send(conn.Direction(op&1), string(in[i:i+n]), 0)
				i += n
			}
			total += uint64(n)
		}
		v.h.Close(1)
		var detected uint64
		for i := range s.Detected {
			detected += s.Detected[i].Load()
		}
		decided := detected + s.Ignored.Load()
		if decided > 1 || s.GaveUp.Load() > s.Ignored.Load() {
			t.Fatalf("decided %d times (gave up %d)", decided, s.GaveUp.Load())
		}
		if s.IgnoredBytes.Load() > total || (s.Ignored.Load() == 0 && s.IgnoredBytes.Load() != 0) {
			t.Fatalf("ignored %d of %d bytes", s.IgnoredBytes.Load(), total)
		}
		if len(v.got) > 0 && detected != 1 {
			t.Fatalf("%d exchanges from a connection not detected", len(v.got))
		}
	})
}
