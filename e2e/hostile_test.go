package e2e

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
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
