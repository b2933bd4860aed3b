// Package load is weftbench's load generators: HTTP/1.1 keep-alive
// connections driven closed-loop (as fast as answers come) or open-loop
// (at a fixed rate, latency measured from each request's scheduled send
// time so a stall counts against every request it delays: no coordinated
// omission), and grpc-go unary calls closed-loop.
package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/weftrace/weft/bench"
)

// Config says how hard to push.
type Config struct {
	Conns    int           // connections (HTTP) or concurrent calls (gRPC)
	Rate     float64       // requests per second; 0 = closed loop
	Duration time.Duration // how long to send
}

// Result is what a load run did.
type Result struct {
	Requests int64 `json:"requests"` // answered
	Errors   int64 `json:"errors"`
	// Dropped counts scheduled requests never sent because every
	// connection was that far behind (open loop only).
	Dropped int64           `json:"dropped"`
	Seconds float64         `json:"seconds"`
	Latency bench.Histogram `json:"latency"`
}

// shard is one worker's tally, merged at the end (no shared lock on the
// hot path).
type shard struct {
	req, errs int64
	hist      bench.Histogram
}

// HTTP drives GET path on addr over cfg.Conns keep-alive connections.
func HTTP(addr, path string, cfg Config) (Result, error) {
	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weftbench\r\n\r\n", path, addr))
	conns := make([]*httpConn, cfg.Conns)
	for i := range conns {
		c, err := dialHTTP(addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return Result{}, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	do := func(c *httpConn) error {
		if c.Conn == nil {
			nc, err := dialHTTP(addr)
			if err != nil {
				return err
			}
			*c = *nc
		}
		if err := c.roundTrip(req); err != nil {
			c.Close()
			c.Conn = nil
			return err
		}
		return nil
	}
	return run(cfg, len(conns), func(i int) error { return do(conns[i]) })
}

// httpConn is one keep-alive HTTP/1.1 connection.
type httpConn struct {
	net.Conn
	r *bufio.Reader
}

func dialHTTP(addr string) (*httpConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &httpConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *httpConn) Close() {
	if c.Conn != nil {
		c.Conn.Close()
	}
}

func (c *httpConn) roundTrip(req []byte) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// run calls do(worker) from workers goroutines, closed- or open-loop as
// cfg says, and tallies.
func run(cfg Config, workers int, do func(worker int) error) (Result, error) {
	if workers <= 0 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("load: need workers and a duration")
	}
	shards := make([]shard, workers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	var dropped int64
	if cfg.Rate <= 0 {
		for w := range workers {
			wg.Go(func() {
				s := &shards[w]
				for {
					t := time.Now()
					if !t.Before(end) {
						return
					}
					if err := do(w); err != nil {
						s.errs++
						continue
					}
					s.req++
					s.hist.Record(time.Since(t))
				}
			})
		}
		wg.Wait()
	} else {
		// Idle workers wait on one queue in FIFO order, so the load
		// spreads over every connection.
		queue := make(chan time.Time, 1<<16)
		for w := range workers {
			wg.Go(func() {
				s := &shards[w]
				for sched := range queue {
					if err := do(w); err != nil {
						s.errs++
						continue
					}
					s.req++
					s.hist.Record(time.Since(sched))
				}
			})
		}
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		next := start
		for next.Before(end) {
			now := time.Now()
			for ; !next.After(now) && next.Before(end); next = next.Add(interval) {
				select {
				case queue <- next:
				default:
					dropped++
				}
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		close(queue)
		wg.Wait()
	}
	res := Result{Dropped: dropped, Seconds: time.Since(start).Seconds()}
	for i := range shards {
		res.Requests += shards[i].req
		res.Errors += shards[i].errs
		res.Latency.Merge(&shards[i].hist)
	}
	if res.Requests == 0 {
		return res, fmt.Errorf("load: no request answered (%d errors)", res.Errors)
	}
	return res, nil
}

// ctxTimeout bounds one gRPC call.
func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
