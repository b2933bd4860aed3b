package correlate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// Attribution accuracy, measured on synthetic exchange sequences: a
// server whose handler makes one downstream call per request, driven by
// `concurrency` clients each sending requests back to back on its own
// keep-alive connection. For every downstream client span the measurement
// says whether it was nested under the right server span, under a wrong
// one, or left a root.
//
// Runtimes, by how their threads relate to requests:
//
//	go        net/http: each request's read, the call's write, the call's
//	          response read (Transport's readLoop goroutine) and the
//	          response write run on whichever of a few threads (Ms) is free
//	threads   thread per request (python ThreadingHTTPServer, a Java pool):
//	          everything of one request on its worker's thread
//	eventloop one thread for everything (node, nginx)
//	go-trusted the go model with each exchange's request and response on
//	          the same thread, which fools the thread-trust check: what the
//	          thread rule alone would do to a Go server

type runtimeModel string

const (
	modelGo        runtimeModel = "go"
	modelThreads   runtimeModel = "threads"
	modelEventLoop runtimeModel = "eventloop"
	modelGoTrusted runtimeModel = "go-trusted"
)

// goThreads is how many threads run a Go server's goroutines
// (GOMAXPROCS=2 plus threads parked in syscalls).
const goThreads = 4

type attribution struct {
	calls, right, wrong, root int
	exchanges                 int
}

func (a attribution) pct(n int) float64 { return 100 * float64(n) / float64(a.calls) }

func (a attribution) String() string {
	return fmt.Sprintf("%d calls: %.1f%% right, %.1f%% wrong, %.1f%% root", a.calls, a.pct(a.right), a.pct(a.wrong), a.pct(a.root))
}

// simulate runs requests requests at the given concurrency through the
// join stage and grades the server's downstream client spans.
//
// With causes, every call carries the cause the kernel gives it (the
// request's read; for a second, sequential call the first call's response
// read), and each request makes that second call too.
func simulate(tb testing.TB, model runtimeModel, concurrency, requests int, seed uint64, causes bool) attribution {
	rng := rand.New(rand.NewPCG(seed, 0))
	app := tproc{500, "app"}
	var exs []*protocols.Exchange
	tid := func(worker int) uint32 {
		switch model {
		case modelThreads:
			return uint32(1000 + worker)
		case modelEventLoop:
			return 1000
		}
		return uint32(1000 + rng.IntN(goThreads))
	}
	u := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	var seq uint32
	for w := range concurrency {
		in := dial(tproc{uint32(600 + w), "load"}, uint16(20000+w), app, "127.0.0.1:8080")
		out := dial(app, uint16(30000+w), tproc{700, "downstream"}, "127.0.0.1:9000")
		t := u(0, 1) // ms
		for i := w; i < requests; i += concurrency {
			seq += 1000
			readT := tid(w)
			callStart := t + u(0.05, 0.5)
			callEnd := callStart + u(0.5, 5)
			end := callEnd + u(0.05, 0.5)
			callW, callR, respW := tid(w), tid(w), tid(w)
			if model == modelGoTrusted {
				callR, respW = callW, readT
			}
			path := fmt.Sprintf("/%d", i)
			call := out.cli(seq+1, "/call"+path, side{start: callStart, end: callEnd, reqTID: callW, respTID: callR})
			exs = append(exs,
				in.cli(seq, "/req"+path, side{start: t - 0.02, end: end + 0.02, reqTID: 1, respTID: 1}),
				in.srv(seq, "/req"+path, side{start: t, end: end, reqTID: readT, respTID: respW}),
				call,
				out.srv(seq+1, "/call"+path, side{start: callStart + 0.02, end: callEnd - 0.02, reqTID: 7, respTID: 7}),
			)
			if causes {
				kind := conn.CauseThread
				if model == modelGo || model == modelGoTrusted {
					kind = conn.CauseGoroutine
				}
				call.RequestCause = conn.Cause{Kind: kind, FD: in.server.ID.FD, Gen: in.server.ID.Gen, At: ms(t)}
				// A second call on the same connection, caused by the
				// first one's response.
				c2Start := callEnd + u(0.01, 0.1)
				c2End := c2Start + u(0.5, 2)
				seq += 10
				call2 := out.cli(seq, "/call"+path, side{start: c2Start, end: c2End, reqTID: tid(w), respTID: tid(w)})
				call2.RequestCause = conn.Cause{Kind: kind, FD: out.client.ID.FD, Gen: out.client.ID.Gen, At: ms(callEnd)}
				exs = append(exs, call2, out.srv(seq, "/call"+path, side{start: c2Start + 0.02, end: c2End - 0.02, reqTID: 7, respTID: 7}))
				end = c2End + u(0.05, 0.5)
				exs[len(exs)-5].End, exs[len(exs)-6].End = ms(end), ms(end+0.02)
			}
			t = end + u(0.01, 1)
		}
	}
	slices.SortStableFunc(exs, func(a, b *protocols.Exchange) int { return int(a.End - b.End) })

	col := &collector{}
	c := New(Config{Clock: testClock, HostID: "sim"}, &fakeProcs{}, col.add)
	for _, ex := range exs {
		c.Add(ex)
	}
	c.FlushAll()
	if len(col.spans) != len(exs) {
		tb.Fatalf("%d spans from %d exchanges", len(col.spans), len(exs))
	}
	// The server span each call belongs to, by request number.
	servers := map[string]trace.SpanID{}
	for _, s := range col.spans {
		if spanLabel(s) == "app server GET /req/{id}" {
			servers[attrValue(&s, "url.path")[len("/req"):]] = s.SpanID
		}
	}
	a := attribution{exchanges: len(exs)}
	for _, s := range col.spans {
		if spanLabel(s) != "app client GET /call/{id}" {
			continue
		}
		a.calls++
		switch s.ParentSpanID {
		case trace.SpanID{}:
			a.root++
		case servers[attrValue(&s, "url.path")[len("/call"):]]:
			a.right++
		default:
			a.wrong++
		}
	}
	want := requests
	if causes {
		want *= 2
	}
	if a.calls != want {
		tb.Fatalf("%d calls graded of %d", a.calls, requests)
	}
	return a
}

// TestAttributionAccuracy pins what the rules achieve: never a wrong
// parent unless threads are trusted where they should not be; everything
// right with one request in flight, and with thread-per-request servers at
// any concurrency; Go servers with several requests in flight are the gap
// (see README: goroutine tracking closes it).
func TestAttributionAccuracy(t *testing.T) {
	for _, model := range []runtimeModel{modelGo, modelThreads, modelEventLoop, modelGoTrusted} {
		for _, conc := range []int{1, 8, 64} {
			a := simulate(t, model, conc, 2000, 1, false)
			t.Logf("%-10s concurrency %2d: %v", model, conc, a)
			switch {
			case model == modelGoTrusted:
				if conc == 8 && a.wrong == 0 { // at 64 four threads each read many requests: undecided
					t.Errorf("%s at %d: no wrong parents; the model no longer shows why threads must earn trust", model, conc)
				}
			case a.wrong != 0:
				t.Errorf("%s at %d: %d wrong parents", model, conc, a.wrong)
			}
			if conc == 1 && a.right != a.calls {
				t.Errorf("%s with one request in flight: %v, want all right", model, a)
			}
			if model == modelThreads && a.right != a.calls {
				t.Errorf("thread per request at %d: %v, want all right", conc, a)
			}
			if (model == modelGo || model == modelEventLoop) && conc == 64 && a.pct(a.right) > 5 {
				t.Errorf("%s at 64: %v; better than the rules allow, check the model", model, a)
			}
		}
	}
}

// BenchmarkAttribution reports the same measurement as metrics (right%,
// wrong%, root%) and the join stage's cost per exchange.
func BenchmarkAttribution(b *testing.B) {
	for _, causes := range []bool{false, true} {
		for _, model := range []runtimeModel{modelGo, modelThreads, modelEventLoop} {
			for _, conc := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("causes=%v/%s/c=%d", causes, model, conc), func(b *testing.B) {
					var a attribution
					for b.Loop() {
						a = simulate(b, model, conc, 2000, 1, causes)
					}
					b.ReportMetric(a.pct(a.right), "right%")
					b.ReportMetric(a.pct(a.wrong), "wrong%")
					b.ReportMetric(a.pct(a.root), "root%")
				})
			}
		}
	}
}

// TestAttributionByCause: with the kernel's causes, every call of every
// runtime model is nested right at any concurrency, the second of two
// sequential calls included.
func TestAttributionByCause(t *testing.T) {
	for _, model := range []runtimeModel{modelGo, modelThreads, modelEventLoop} {
		for _, conc := range []int{1, 8, 64} {
			a := simulate(t, model, conc, 2000, 1, true)
			t.Logf("%-10s concurrency %2d: %v", model, conc, a)
			if a.right != a.calls {
				t.Errorf("%s at %d with causes: %v, want all right", model, conc, a)
			}
		}
	}
}
