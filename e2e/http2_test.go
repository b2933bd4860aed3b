package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Attribute names of gRPC spans (semconv v1.40.0).
var (
	attrRPCSystem = string(semconv.RPCSystemNameKey)
	attrRPCMethod = string(semconv.RPCMethodKey)
	// attrRPCMethodOrig is the method's name when rpc.method is _OTHER.
	attrRPCMethodOrig = string(semconv.RPCMethodOriginalKey)
	attrRPCStatus     = string(semconv.RPCResponseStatusCodeKey)
	attrRPCErrorType  = string(semconv.ErrorTypeKey)
)

// http2Workloads are built on first use, so the other tests do not wait
// for them.
var http2Workloads = sync.OnceValue(func() error {
	for _, w := range []string{"grpcsrv", "grpcclient", "h2csrv"} {
		suite.bin[w] = filepath.Join(suite.dir, "bin", w)
		if err := goBuild(suite.root, "./e2e/testdata/"+w, suite.bin[w]); err != nil {
			return err
		}
	}
	return nil
})

func needHTTP2Workloads(t *testing.T) {
	t.Helper()
	if err := http2Workloads(); err != nil {
		t.Fatal(err)
	}
}

// startPortServer starts a workload that prints its port on the first
// line of stdout, as service svc, and returns the port.
func startPortServer(t *testing.T, name, svc string) int {
	t.Helper()
	lines := make(chan string, 16)
	p := startTestProc(t, name, childEnv("OTEL_SERVICE_NAME="+svc), lines, suite.bin[name])
	l := waitLine(t, p, lines, 10*time.Second, func(l string) bool {
		_, err := strconv.Atoi(strings.TrimSpace(l))
		return err == nil
	})
	port, _ := strconv.Atoi(strings.TrimSpace(l))
	return port
}

// grpcResult is one line of grpcclient's output: one call.
type grpcResult struct {
	Method    string `json:"method"`
	Code      int    `json:"code"`
	Messages  int    `json:"messages"`
	StartNs   int64  `json:"start_ns"`
	EndNs     int64  `json:"end_ns"`
	LocalPort int    `json:"local_port"`
}

// runGRPCClient runs testdata/grpcclient as service svc against port and
// returns one result per call, failing the test if it fails.
func runGRPCClient(t *testing.T, svc string, port int, ops ...string) []grpcResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", port)}, ops...)
	cmd := exec.CommandContext(ctx, suite.bin["grpcclient"], args...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("grpcclient %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, &stdout, &stderr)
	}
	var res []grpcResult
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r grpcResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("grpcclient output %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

// grpcCodeNames are the status codes' names rpc.response.status_code carries.
var grpcCodeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcWant is what the span of call r must be on side kind ("server" or
// "client") of service svc, the server listening on srvPort: name and
// rpc.method the fully qualified method, status Error on a client for any
// code but OK, on a server only for the codes that blame it.
func grpcWant(svc, kind string, srvPort int, r grpcResult) Want {
	method, name := strings.TrimPrefix(r.Method, "/"), strings.TrimPrefix(r.Method, "/")
	code := grpcCodeNames[r.Code]
	attrs := map[string]any{
		attrRPCSystem:  "grpc",
		attrRPCMethod:  method,
		attrRPCStatus:  code,
		attrServerAddr: loopback,
		attrServerPort: srvPort,
		attrPeerAddr:   loopback,
	}
	isErr := r.Code != 0
	if kind == "server" {
		attrs[attrClientAddr] = loopback
		attrs[attrPeerPort] = r.LocalPort
		switch r.Code {
		case 2, 4, 12, 13, 14, 15:
		default:
			isErr = false
		}
	} else {
		attrs[attrPeerPort] = srvPort
	}
	if isErr {
		attrs[attrRPCErrorType] = code
	}
	if r.Code == 12 {
		// UNIMPLEMENTED: the server did not recognise the method, which
		// semconv then calls _OTHER; the span is named after the system.
		attrs[attrRPCMethod], attrs[attrRPCMethodOrig], name = "_OTHER", method, "grpc"
	}
	return Want{Service: svc, Kind: kind, Name: name, Error: isErr, Attrs: attrs,
		From: time.Unix(0, r.StartNs), To: time.Unix(0, r.EndNs)}
}

// checkGRPC waits for one span per call on each side and checks the span
// of each call against it: the first unused span, in time order, that
// names the call's method (in rpc.method, or rpc.method_original when
// that is _OTHER). Calls must have distinct methods or run in sequence.
func checkGRPC(t *testing.T, srvSvc, cliSvc string, port int, res []grpcResult) {
	t.Helper()
	for _, side := range []struct{ svc, kind string }{{srvSvc, "server"}, {cliSvc, "client"}} {
		spans := waitSpans(t, Query{Service: side.svc, Kind: side.kind}, len(res), spanTimeout)
		used := make([]bool, len(spans))
		for i, r := range res {
			w := grpcWant(side.svc, side.kind, port, r)
			found := -1
			method := strings.TrimPrefix(r.Method, "/")
			for j, s := range spans {
				if !used[j] && (s.str(attrRPCMethod) == method || s.str(attrRPCMethodOrig) == method) {
					found = j
					break
				}
			}
			if found < 0 {
				t.Errorf("%s call %d (%s): no %s span for that method", side.kind, i+1, r.Method, side.kind)
				continue
			}
			used[found] = true
			checkSpan(t, fmt.Sprintf("%s span of call %d (%s -> %s)", side.kind, i+1, r.Method, grpcCodeNames[r.Code]), spans[found], w)
		}
	}
}

// TestGRPCUnary: a grpc-go client makes unary calls on one h2c connection
// to a grpc-go server: OK, NOT_FOUND (an error for the client only),
// INTERNAL (an error on both sides) and OK again. Each gives one SERVER
// and one CLIENT span named weft.e2e.Echo/Say with rpc.system.name,
// rpc.method, rpc.response.status_code and the statuses the gRPC
// conventions ask for.
func TestGRPCUnary(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	srvSvc, cliSvc := uniqueName("e2e-grpcsrv"), uniqueName("e2e-grpcclient")
	port := startPortServer(t, "grpcsrv", srvSvc)
	res := runGRPCClient(t, cliSvc, port, "say", "hello", "say", "code:5", "say", "code:13", "say", "again")
	for i, want := range []int{0, 5, 13, 0} {
		if res[i].Code != want {
			t.Fatalf("call %d: code %d, the test expects %d", i+1, res[i].Code, want)
		}
	}
	checkGRPC(t, srvSvc, cliSvc, port, res)
}

// TestGRPCTraceParent: a traceparent in a call's metadata makes the server
// span join that trace as a child of the span it names.
func TestGRPCTraceParent(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	srvSvc, cliSvc := uniqueName("e2e-grpcsrv"), uniqueName("e2e-grpcclient")
	port := startPortServer(t, "grpcsrv", srvSvc)
	// Both halves non-zero: Jaeger prints a trace id without its leading
	// zeros.
	now := time.Now().UnixNano()
	traceID, parentID := fmt.Sprintf("%016x%016x", now, now^0x5eed), "1f2e3d4c5b6a7980"
	res := runGRPCClient(t, cliSvc, port, "saytp", "hello", "00-"+traceID+"-"+parentID+"-01")
	spans := waitSpans(t, Query{Service: srvSvc, Kind: "server"}, 1, spanTimeout)
	checkSpan(t, "server span", spans[0], grpcWant(srvSvc, "server", port, res[0]))
	if spans[0].TraceID != traceID || spans[0].ParentID != parentID {
		t.Errorf("server span in trace %s under %s, want trace %s under %s", spans[0].TraceID, spans[0].ParentID, traceID, parentID)
	}
}

// TestGRPCServerStreaming: a server-streaming call of 5 messages, 20 ms
// apart, is ONE span on each side, from the request to the end of the
// stream.
func TestGRPCServerStreaming(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	srvSvc, cliSvc := uniqueName("e2e-grpcsrv"), uniqueName("e2e-grpcclient")
	port := startPortServer(t, "grpcsrv", srvSvc)
	res := runGRPCClient(t, cliSvc, port, "count", "5", "say", "after")
	if res[0].Messages != 5 || res[0].Code != 0 {
		t.Fatalf("stream: %d messages, code %d; the test expects 5 and OK", res[0].Messages, res[0].Code)
	}
	checkGRPC(t, srvSvc, cliSvc, port, res)
	spans := waitSpans(t, Query{Service: cliSvc, Kind: "client", Tags: map[string]any{attrRPCMethod: "weft.e2e.Echo/Count"}}, 1, spanTimeout)
	if d := spans[0].DurationUs; d < 80_000 {
		t.Errorf("streaming span lasts %dµs; the stream took at least 80 ms (4 gaps of 20 ms)", d)
	}
}

// TestGRPCConcurrent: 50 unary calls in flight at once on one connection,
// each to its own method (Say00..Say49) and each answered with its own
// status code (i mod 17): exactly 50 spans on each side, and each span's
// name and status code agree, which only a right pairing of each
// response with its request gives.
func TestGRPCConcurrent(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	srvSvc, cliSvc := uniqueName("e2e-grpcsrv"), uniqueName("e2e-grpcclient")
	port := startPortServer(t, "grpcsrv", srvSvc)
	// The server holds each call 300 ms, so all 50 are open together.
	res := runGRPCClient(t, cliSvc, port, "concurrent", "50", "sleep:300")
	if len(res) != 50 {
		t.Fatalf("grpcclient made %d calls, want 50", len(res))
	}
	var first, last int64 = res[0].EndNs, res[0].StartNs
	for i, r := range res {
		if r.Code != i%17 {
			t.Fatalf("call %d: code %d, the test expects %d", i, r.Code, i%17)
		}
		first, last = min(first, r.EndNs), max(last, r.StartNs)
	}
	if last >= first {
		t.Fatalf("the calls were not all in flight together: the last began %v after the first ended", time.Duration(last-first))
	}
	checkGRPC(t, srvSvc, cliSvc, port, res)
}

// TestHTTP2Curl: curl with HTTP/2 prior knowledge against a Go h2c server:
// plain HTTP/2 exchanges get the HTTP attributes with
// network.protocol.version 2, on the server's spans and curl's. curl
// 7.88 cannot reuse a prior-knowledge connection (curl/curl#10634), so
// each request is its own curl run.
func TestHTTP2Curl(t *testing.T) {
	needWeft(t)
	needHTTP2Workloads(t)
	srvSvc, curlSvc := uniqueName("e2e-h2csrv"), uniqueName("e2e-curl")
	port := startPortServer(t, "h2csrv", srvSvc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ua := needCurlUA(t)
	exs := []exchange{
		{method: "GET", path: "/items/12", name: "GET /items/{id}", status: 200},
		{method: "GET", path: "/status/404", name: "GET /status/{id}", status: 404},
		{method: "GET", path: "/status/503", name: "GET /status/{id}", status: 503},
		{method: "GET", path: "/big", name: "GET /big", status: 200},
	}
	for i := range exs {
		res, from, to := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc),
			curlOp{url: base + exs[i].path + "?q=1", args: []string{"--http2-prior-knowledge"}})
		if !strings.HasPrefix(res[0].headers, "HTTP/2 ") {
			t.Fatalf("curl did not speak HTTP/2; response headers:\n%s", res[0].headers)
		}
		if exs[i].path == "/big" && res[0].sizeDownload != 256<<10 {
			t.Fatalf("/big gave %d bytes, want 256 KiB", res[0].sizeDownload)
		}
		exs[i] = curlExchanges(t, res, from, to, ua, exs[i:i+1])[0]
	}
	for _, side := range []string{"server", "client"} {
		svc := srvSvc
		if side == "client" {
			svc = curlSvc
		}
		spans := waitSpans(t, Query{Service: svc, Kind: side}, len(exs), spanTimeout)
		order := make([]string, len(exs))
		for i, ex := range exs {
			order[i] = ex.path
		}
		sortSpans(spans, order)
		for i, ex := range exs {
			w := serverWant(svc, port, ex)
			if side == "client" {
				w = clientWant(svc, port, ex)
			}
			w.Attrs[attrProtoVersion] = "2"
			checkSpan(t, fmt.Sprintf("%s span %d (%s %s -> %d)", side, i+1, ex.method, ex.path, ex.status), spans[i], w)
		}
	}
}
