// Command loadgen drives the demo shop: a steady mix of browsing (GET /),
// product pages (GET /product/{id}, now and then an unknown id) and
// checkouts (POST /checkout) at -rate requests per second from -c
// workers with keep-alive connections. Every -report it prints one line:
// requests, errors and the median latency since the last line.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type result struct {
	route string
	code  int
	dur   time.Duration
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "frontend base URL")
	rate := flag.Float64("rate", 5, "requests per second")
	workers := flag.Int("c", 4, "concurrent workers")
	duration := flag.Duration("duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
	report := flag.Duration("report", 10*time.Second, "interval of the summary lines (0: none)")
	flag.Parse()
	log.SetFlags(0)
	if *rate <= 0 || *workers < 1 {
		log.Fatal("loadgen: -rate and -c must be positive")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	jobs := make(chan struct{})
	results := make(chan result, 1024)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				results <- one(client, *base)
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	var end <-chan time.Time
	if *duration > 0 {
		end = time.After(*duration)
	}
	var tick <-chan time.Time
	if *report > 0 {
		t := time.NewTicker(*report)
		defer t.Stop()
		tick = t.C
	}
	pace := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer pace.Stop()
	var window []result
	last := time.Now()
loop:
	for {
		select {
		case <-pace.C:
			select {
			case jobs <- struct{}{}:
			default: // every worker is busy: skip this beat
			}
		case r := <-results:
			window = append(window, r)
		case <-tick:
			summary(window, time.Since(last))
			window, last = window[:0], time.Now()
		case <-end:
			break loop
		case <-stop:
			break loop
		}
	}
	close(jobs)
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		window = append(window, r)
	}
	summary(window, time.Since(last))
}

// one sends one request of the mix and returns what happened.
func one(c *http.Client, base string) result {
	var req *http.Request
	var route string
	switch n := rand.IntN(100); {
	case n < 45:
		route = "GET /"
		req, _ = http.NewRequest(http.MethodGet, base+"/", nil)
	case n < 85:
		route = "GET /product/{id}"
		id := 1 + rand.IntN(12)
		if rand.IntN(20) == 0 {
			id = 900 + rand.IntN(100) // not in the catalog: 404
		}
		req, _ = http.NewRequest(http.MethodGet, base+"/product/"+strconv.Itoa(id), nil)
	default:
		route = "POST /checkout"
		form := url.Values{"product_id": {strconv.Itoa(1 + rand.IntN(12))}, "quantity": {strconv.Itoa(1 + rand.IntN(3))},
			"email": {fmt.Sprintf("customer%d@example.com", rand.IntN(1000))}}
		req, _ = http.NewRequest(http.MethodPost, base+"/checkout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	began := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{route: route, dur: time.Since(began)}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return result{route: route, code: resp.StatusCode, dur: time.Since(began)}
}

func summary(rs []result, over time.Duration) {
	if len(rs) == 0 {
		return
	}
	errs := 0
	durs := make([]time.Duration, len(rs))
	for i, r := range rs {
		if r.code == 0 || r.code >= 500 {
			errs++
		}
		durs[i] = r.dur
	}
	slices.Sort(durs)
	fmt.Printf("loadgen: %d requests in %.0fs (%.1f/s), %d errors, p50 %v, max %v\n",
		len(rs), over.Seconds(), float64(len(rs))/over.Seconds(), errs,
		durs[len(durs)/2].Round(100*time.Microsecond), durs[len(durs)-1].Round(time.Millisecond))
}
