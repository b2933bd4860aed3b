package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileLoad throws, at addr, in parallel and each bounded in count and
// time: connections of random bytes, 64 KiB header lines, slowloris
// dribbling and idle connections held open.
func hostileLoad(t *testing.T, addr string, stop <-chan struct{}) (sent int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := func() { mu.Lock(); sent++; mu.Unlock() }
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return nil
		}
		count()
		return c
	}
	// 200 connections of 16 KiB random bytes each.
	wg.Go(func() {
		buf := make([]byte, 16<<10)
		for range 200 {
			if c := dial(); c != nil {
				rand.Read(buf)
				c.SetDeadline(time.Now().Add(2 * time.Second))
				c.Write(buf)
				c.Close()
			}
		}
	})
	// 50 requests with a 64 KiB header line.
	wg.Go(func() {
		big := "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
		for range 50 {
			if c := dial(); c != nil {
				c.SetDeadline(time.Now().Add(2 * time.Second))
				c.Write([]byte(big))
				c.Read(make([]byte, 512))
				c.Close()
			}
		}
	})
	// 100 slowloris connections: a request head a byte every 50 ms.
	for range 4 {
		wg.Go(func() {
			var conns []net.Conn
			for range 25 {
				if c := dial(); c != nil {
					conns = append(conns, c)
				}
			}
			head := []byte("GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			for i := 0; ; i++ {
				select {
				case <-stop:
					for _, c := range conns {
						c.Close()
					}
					return
				case <-time.After(50 * time.Millisecond):
				}
				for _, c := range conns {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					c.Write(head[i%len(head) : i%len(head)+1])
				}
			}
		})
	}
	// 1000 idle connections held until the end.
	wg.Go(func() {
		var conns []net.Conn
		for range 1000 {
			if c := dial(); c != nil {
				conns = append(conns, c)
			}
		}
		<-stop
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Wait()
	return sent
}

// TestHostileTraffic: while a Go server takes random bytes, 64 KiB header
// lines, slowloris dribbling and a thousand idle connections, normal
// requests made at the same time still become exactly their spans, weft
// stays up with bounded memory, and what it could not parse is counted.
func TestHostileTraffic(t *testing.T) {
	s := needWeft(t)
	svc, loadSvc := uniqueName("e2e-hostile-srv"), uniqueName("e2e-hostile-load")
	port := startGoServer(t, svc)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 5 * time.Second}
	before, err := weftCounters(hc, s.weft, "weft_http1_", "weft_detect_")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() { done <- hostileLoad(t, addr, stop) }()
	prefix := "h" + token(5)
	runLoad(t, loadSvc, "http://"+addr+"/items/{id}", prefix, 200, 4)
	var peak int64
	if r, err := anonRSS(s.weft.process.cmd.Process.Pid); err == nil {
		peak = r
	}
	close(stop)
	sent := <-done
	if sent < 1000 {
		t.Fatalf("only %d hostile connections made", sent)
	}
	if !s.weft.running() {
		t.Fatalf("weft %s under hostile traffic", s.weft.describeExit())
	}
	var paths []string
	for i := range 200 {
		paths = append(paths, fmt.Sprintf("/items/%s-%d", prefix, i))
	}
	waitSpans(t, Query{Service: svc, Kind: "server", Paths: paths}, 200, spanTimeout)
	waitSpans(t, Query{Service: loadSvc, Kind: "client", Paths: paths}, 200, spanTimeout)
	after, err := weftCounters(hc, s.weft, "weft_http1_", "weft_detect_")
	if err != nil {
		t.Fatal(err)
	}
	if after["weft_http1_malformed_total"]+after["weft_detect_ignored_connections_total"] <= before["weft_http1_malformed_total"]+before["weft_detect_ignored_connections_total"] {
		t.Errorf("nothing counted as malformed or ignored after %d hostile connections: %v -> %v", sent, before, after)
	}
	if peak > 256<<20 {
		t.Errorf("weft's anonymous RSS %d MiB under hostile traffic, want under 256 MiB", peak>>20)
	}
	t.Logf("%d hostile connections; counters %v -> %v; anonymous RSS %d MiB", sent, before, after, peak>>20)
}

// hostileProtocolBytes throws random bytes, each bounded in count, at an
// h2c server (after the client preface, and without), PostgreSQL (after a
// valid startup message, and without) and a DNS server (UDP datagrams and
// TCP streams), one connection at a time (PostgreSQL has 100 slots).
func hostileProtocolBytes(h2, pg, dnsAddr, db string, stop <-chan struct{}) (sent int) {
	buf := make([]byte, 8<<10)
	send := func(network, addr string, head []byte) {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		sent++
		rand.Read(buf)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(append(head, buf...))
	}
	startup := pgStartup("postgres", db)
	for i := range 100 {
		select {
		case <-stop:
			return sent
		default:
		}
		send("tcp", h2, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		send("tcp", h2, nil)
		send("tcp", pg, startup)
		send("tcp", pg, nil)
		send("tcp", dnsAddr, nil)
		if c, err := net.Dial("udp", dnsAddr); err == nil {
			for range 5 {
				rand.Read(buf[:12+i*5])
				c.Write(buf[:12+i*5])
			}
			sent++
			c.Close()
		}
	}
	return sent
}

// pgStartup is a PostgreSQL protocol 3.0 StartupMessage.
func pgStartup(user, db string) []byte {
	body := []byte{0, 3, 0, 0}
	for _, kv := range []string{"user", user, "database", db} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	n := len(body) + 4
	return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// TestHostileProtocols: random bytes on HTTP/2, PostgreSQL and DNS ports
// (after a valid start, and without) while normal h2c requests (curl),
// queries (psql) and lookups (dig) go to the same servers: weft stays up,
// counts what it could not parse, and the normal ones are exactly their
// spans on both sides.
func TestHostileProtocols(t *testing.T) {
	s := needWeft(t)
	needHTTP2Workloads(t)
	h2Svc, curlSvc := uniqueName("e2e-hostile-h2"), uniqueName("e2e-hostile-curl")
	h2Port := startPortServer(t, "h2csrv", h2Svc)
	dnsSvc, digSvc := uniqueName("e2e-hostile-dns"), uniqueName("e2e-hostile-dig")
	dnsPort, _ := startDNSServer(t, dnsSvc)
	pg := startPostgres(t)
	db := pg.createDB(t)
	psqlSvc := uniqueName("e2e-hostile-psql")
	hc := &http.Client{Timeout: 5 * time.Second}
	prefixes := []string{"weft_http2_", "weft_postgres_", "weft_dns_", "weft_detect_"}
	before, err := weftCounters(hc, s.weft, prefixes...)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		done <- hostileProtocolBytes(fmt.Sprintf("127.0.0.1:%d", h2Port), fmt.Sprintf("127.0.0.1:%d", pg.port), fmt.Sprintf("127.0.0.1:%d", dnsPort), db, stop)
	}()
	const n = 5
	tok := token(6)
	var names []string
	src := freeSourcePort(t)
	for i := range n {
		res, _, _ := runCurl(t, childEnv("OTEL_SERVICE_NAME="+curlSvc),
			curlOp{url: fmt.Sprintf("http://127.0.0.1:%d/items/%d", h2Port, 1000+i), args: []string{"--http2-prior-knowledge"}})
		if res[0].status != 200 {
			t.Fatalf("h2c request %d: status %d", i, res[0].status)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-o", "/dev/null", "-c", "SELECT 1", pg.dsn(db, "disable"))
		cmd.Env = childEnv("OTEL_SERVICE_NAME=" + psqlSvc)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("psql %d: %v\n%s", i, err, out)
		}
		name := fmt.Sprintf("%s-%d.example.test", tok, i)
		runDig(t, digSvc, dnsPort, src, dnsQuery{name: name, qtype: "A", rcode: "NOERROR", answers: []string{"192.0.2.1"}})
		names = append(names, "DNS A "+name)
	}
	close(stop)
	sent := <-done
	if sent < 300 {
		t.Fatalf("only %d hostile connections made", sent)
	}
	if !s.weft.running() {
		t.Fatalf("weft %s under hostile protocol bytes", s.weft.describeExit())
	}
	for _, c := range []struct {
		q    Query
		name func(i int) string
	}{
		{Query{Service: h2Svc, Kind: "server", Tags: map[string]any{attrProtoVersion: "2", attrStatus: 200}}, func(int) string { return "GET /items/{id}" }},
		{Query{Service: curlSvc, Kind: "client", Tags: map[string]any{attrProtoVersion: "2", attrStatus: 200}}, func(int) string { return "GET /items/{id}" }},
		{Query{Service: postgresService, Kind: "server", Tags: map[string]any{attrDBNamespace: db}}, func(int) string { return "SELECT " + db }},
		{Query{Service: psqlSvc, Kind: "client"}, func(int) string { return "SELECT " + db }},
		{Query{Service: dnsSvc, Kind: "server"}, func(i int) string { return names[i] }},
		{Query{Service: digSvc, Kind: "client"}, func(i int) string { return names[i] }},
	} {
		spans := waitSpans(t, c.q, n, spanTimeout)
		for i, sp := range spans {
			if sp.Name != c.name(i) {
				t.Errorf("{%s} span %d: name %q, want %q", c.q, i, sp.Name, c.name(i))
			}
		}
	}
	after, err := weftCounters(hc, s.weft, prefixes...)
	if err != nil {
		t.Fatal(err)
	}
	var moved []string
	for k, v := range after {
		if v != before[k] && (strings.Contains(k, "malformed") || strings.Contains(k, "ignored") || strings.Contains(k, "gave_up") || strings.Contains(k, "dropped") || strings.Contains(k, "error")) {
			moved = append(moved, fmt.Sprintf("%s %v -> %v", k, before[k], v))
		}
	}
	if len(moved) == 0 {
		t.Errorf("nothing counted as malformed or ignored after %d hostile connections: %v -> %v", sent, before, after)
	}
	t.Logf("%d hostile connections; counters moved: %s", sent, strings.Join(moved, "; "))
}
