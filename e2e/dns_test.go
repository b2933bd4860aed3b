package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Attributes of DNS spans: semconv's, and the three weft documents in the
// README for what semconv v1.40.0 lacks. The e2e tests spell those out on
// purpose: renaming them is a breaking change they must catch.
var (
	attrDNSName    = string(semconv.DNSQuestionNameKey)
	attrDNSAnswers = string(semconv.DNSAnswersKey)
	attrTransport  = string(semconv.NetworkTransportKey)
	attrClientPort = string(semconv.ClientPortKey)
	attrErrorType  = string(semconv.ErrorTypeKey)
)

const (
	attrDNSType  = "dns.question.type"
	attrDNSRCode = "dns.response_code"
	attrDNSCount = "dns.answer.count"
)

// dnsQuery is one lookup a test makes and what its spans must say.
type dnsQuery struct {
	name    string // question name, without the trailing dot
	qtype   string // "A" or "AAAA"
	tcp     bool
	rcode   string // "" when the server drops the query (a timeout)
	answers []string
}

func (q dnsQuery) transport() string {
	if q.tcp {
		return "tcp"
	}
	return "udp"
}

// startDNSServer starts testdata/dnssrv as service svc and returns its
// port (UDP and TCP) and process; it is serving when this returns.
func startDNSServer(t *testing.T, svc string) (int, *process) {
	t.Helper()
	lines := make(chan string, 16)
	p := startTestProc(t, "dnssrv", childEnv("OTEL_SERVICE_NAME="+svc), lines, suite.bin["dnssrv"])
	l := waitLine(t, p, lines, 10*time.Second, func(l string) bool {
		_, err := strconv.Atoi(strings.TrimSpace(l))
		return err == nil
	})
	port, _ := strconv.Atoi(strings.TrimSpace(l))
	if err := waitUntil(5*time.Second, p, func() error { return tcpReady(fmt.Sprintf("127.0.0.1:%d", port)) }); err != nil {
		t.Fatalf("dnssrv: %v", err)
	}
	return port, p
}

// freeSourcePort returns a loopback port free a moment ago for both UDP
// and TCP, for dig to send from (-b), so the server span's peer port is
// known.
func freeSourcePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[0]})
		if err == nil {
			u.Close()
			return ports[0]
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return 0
}

// runDig runs dig as service svc, from srcPort, asking 127.0.0.1:port for
// q once (+tries=1, one second to answer), and checks dig saw what the
// test expects; it returns the window around the command.
func runDig(t *testing.T, svc string, port, srcPort int, q dnsQuery) (from, to time.Time) {
	t.Helper()
	args := []string{"@127.0.0.1", "-p", strconv.Itoa(port), "-b", fmt.Sprintf("127.0.0.1#%d", srcPort),
		"+tries=1", "+timeout=1", q.name, q.qtype}
	if q.tcp {
		args = append(args, "+tcp")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dig", args...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	from = time.Now()
	err := cmd.Run()
	to = time.Now()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		t.Fatalf("dig is not installed (apt-get install dnsutils): %v", err)
	case q.rcode == "" && errors.As(err, &ee) && ee.ExitCode() == 9:
		// "no servers could be reached": the drop the test wants.
	case q.rcode == "":
		t.Fatalf("dig %q: %v, want exit status 9 (no reply)\n%s", args, err, &out)
	case err != nil:
		t.Fatalf("dig %q: %v\n%s", args, err, &out)
	case !strings.Contains(out.String(), "status: "+q.rcode+","):
		t.Fatalf("dig %q did not get %s:\n%s", args, q.rcode, &out)
	}
	return from, to
}

// goResolveResult is testdata/goresolve's output line.
type goResolveResult struct {
	Addrs    []string `json:"addrs"`
	NotFound bool     `json:"not_found"`
	Err      string   `json:"err"`
	StartNs  int64    `json:"start_ns"`
	EndNs    int64    `json:"end_ns"`
}

// runGoResolve runs testdata/goresolve as service svc against
// 127.0.0.1:port for q and checks it saw what the test expects; it
// returns the window the program measured around the lookup.
func runGoResolve(t *testing.T, svc string, port int, q dnsQuery) (from, to time.Time) {
	t.Helper()
	args := []string{"-server", fmt.Sprintf("127.0.0.1:%d", port), "-network", q.transport(), "-type", q.qtype, q.name + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.bin["goresolve"], args...)
	cmd.Env = childEnv("OTEL_SERVICE_NAME=" + svc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("goresolve %q: %v\n%s%s", args, err, &stdout, &stderr)
	}
	var r goResolveResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("goresolve output %q: %v", &stdout, err)
	}
	switch {
	case r.Err != "":
		t.Fatalf("goresolve %q: %s", args, r.Err)
	case q.rcode == "NXDOMAIN" && !r.NotFound:
		t.Fatalf("goresolve %q found %q, the test expects NXDOMAIN", args, r.Addrs)
	case q.rcode == "NOERROR" && strings.Join(r.Addrs, ",") != strings.Join(q.answers, ","):
		t.Fatalf("goresolve %q got %q, the test expects %q", args, r.Addrs, q.answers)
	}
	return time.Unix(0, r.StartNs), time.Unix(0, r.EndNs)
}

// dnsWant is what the span of q must be: CLIENT (from the querying
// process, toward srvPort) or SERVER (from dnssrv on srvPort, answering a
// client on cliPort, 0 when unknown), inside [from, to].
func dnsWant(svc, kind string, srvPort, cliPort int, q dnsQuery, from, to time.Time) Want {
	attrs := map[string]any{
		attrDNSName:    q.name,
		attrDNSType:    q.qtype,
		attrTransport:  q.transport(),
		attrServerAddr: loopback,
		attrServerPort: srvPort,
		attrPeerAddr:   loopback,
	}
	if kind == "client" {
		attrs[attrPeerPort] = srvPort
	} else {
		attrs[attrClientAddr] = loopback
		if cliPort != 0 {
			attrs[attrClientPort] = cliPort
			attrs[attrPeerPort] = cliPort
		}
	}
	if q.rcode == "" {
		attrs[attrErrorType] = "timeout"
	} else {
		attrs[attrDNSRCode] = q.rcode
		attrs[attrDNSCount] = len(q.answers)
		if len(q.answers) > 0 {
			// Jaeger shows a string array attribute as its JSON.
			b, _ := json.Marshal(q.answers)
			attrs[attrDNSAnswers] = string(b)
		}
	}
	return Want{Service: svc, Kind: kind, Name: "DNS " + q.qtype + " " + q.name, Error: q.rcode == "", Attrs: attrs, From: from, To: to}
}

// checkDNSSpans waits for exactly one CLIENT span of cliSvc and one SERVER
// span of srvSvc for q, and checks both.
func checkDNSSpans(t *testing.T, cliSvc, srvSvc string, srvPort, cliPort int, q dnsQuery, from, to, srvTo time.Time) {
	t.Helper()
	cli := waitSpans(t, Query{Service: cliSvc, Kind: "client"}, 1, spanTimeout)
	checkSpan(t, "client span", cli[0], dnsWant(cliSvc, "client", srvPort, cliPort, q, from, to))
	srv := waitSpans(t, Query{Service: srvSvc, Kind: "server", Tags: map[string]any{attrDNSName: q.name}}, 1, spanTimeout)
	checkSpan(t, "server span", srv[0], dnsWant(srvSvc, "server", srvPort, cliPort, q, from, srvTo))
}

// TestDNSDig: dig asks dnssrv once per case, over UDP and TCP: one CLIENT
// span from dig and one SERVER span from dnssrv, named "DNS {type}
// {name}", with the response code (NXDOMAIN is not an error), the answer
// count and addresses, the transport, and both ends' addresses.
func TestDNSDig(t *testing.T) {
	needWeft(t)
	tok := token(8)
	for _, c := range []struct {
		label string
		q     dnsQuery
	}{
		{"A over UDP", dnsQuery{name: tok + "-a.example.test", qtype: "A", rcode: "NOERROR", answers: []string{"192.0.2.1"}}},
		{"NXDOMAIN over UDP", dnsQuery{name: tok + ".nope.test", qtype: "A", rcode: "NXDOMAIN"}},
		{"AAAA over TCP", dnsQuery{name: tok + "-tcp.example.test", qtype: "AAAA", tcp: true, rcode: "NOERROR", answers: []string{"2001:db8::1"}}},
	} {
		t.Run(c.label, func(t *testing.T) {
			srvSvc, cliSvc := uniqueName("e2e-dnssrv"), uniqueName("e2e-dig")
			port, _ := startDNSServer(t, srvSvc)
			src := freeSourcePort(t)
			from, to := runDig(t, cliSvc, port, src, c.q)
			checkDNSSpans(t, cliSvc, srvSvc, port, src, c.q, from, to, to)
		})
	}
}

// TestDNSTimeout: dnssrv drops the query; dig gives up after one second
// (+tries=1 +timeout=1) and closes its socket: its CLIENT span is Error
// with error.type=timeout and no response code. dnssrv's SERVER span for
// the unanswered query ends when dnssrv closes its socket (the test stops
// it, well inside weft's 5 s timeout): Error, error.type=timeout too.
func TestDNSTimeout(t *testing.T) {
	needWeft(t)
	q := dnsQuery{name: token(8) + ".drop.test", qtype: "A"}
	srvSvc, cliSvc := uniqueName("e2e-dnssrv"), uniqueName("e2e-dig")
	port, srv := startDNSServer(t, srvSvc)
	src := freeSourcePort(t)
	from, to := runDig(t, cliSvc, port, src, q)
	if waitErr, timedOut := srv.stop(syscall.SIGTERM, 5*time.Second); timedOut || waitErr != nil {
		t.Fatalf("dnssrv did not exit cleanly on SIGTERM: %v (timed out: %v)", waitErr, timedOut)
	}
	srvTo := time.Now()
	if d := to.Sub(from); d < time.Second {
		t.Fatalf("dig gave up after %v, before its one-second timeout", d)
	}
	checkDNSSpans(t, cliSvc, srvSvc, port, src, q, from, to, srvTo)
}

// TestDNSGoResolver: Go's own resolver (PreferGo, one query per lookup)
// asks dnssrv over UDP and TCP, on a new socket each time; its source port
// is not known to the test.
func TestDNSGoResolver(t *testing.T) {
	needWeft(t)
	tok := token(8)
	for _, c := range []struct {
		label string
		q     dnsQuery
	}{
		{"A over UDP", dnsQuery{name: tok + "-go.example.test", qtype: "A", rcode: "NOERROR", answers: []string{"192.0.2.1"}}},
		{"AAAA over TCP", dnsQuery{name: tok + "-gotcp.example.test", qtype: "AAAA", tcp: true, rcode: "NOERROR", answers: []string{"2001:db8::1"}}},
		{"NXDOMAIN over UDP", dnsQuery{name: tok + "-go.nope.test", qtype: "A", rcode: "NXDOMAIN"}},
	} {
		t.Run(c.label, func(t *testing.T) {
			srvSvc, cliSvc := uniqueName("e2e-dnssrv"), uniqueName("e2e-goresolve")
			port, _ := startDNSServer(t, srvSvc)
			from, to := runGoResolve(t, cliSvc, port, c.q)
			checkDNSSpans(t, cliSvc, srvSvc, port, 0, c.q, from, to, to)
		})
	}
}
