// Command loadgen is the e2e tests' load generator: it sends -n GET
// requests to -url (whose "{id}" is replaced by "<prefix>-<i>") from -c
// workers, each with its own keep-alive connection, so -c requests are in
// flight at once. It prints one line per failed request on stderr and
// exits 1 if any failed; on success it prints "ok N SECONDS" on stdout.
//
// With -alpha the request number is written in letters (a, b, ..., ba,
// ...), so each path segment is a name, not an id weft would template:
// -n distinct span names.
//
// With -warmup W it first sends W requests the same way, prints "warm",
// and waits -pause before the measured ones: a benchmark takes its
// snapshot in that pause, so process start-up is outside its window.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "", "URL with {id}")
	prefix := flag.String("prefix", "r", "request id prefix")
	n := flag.Int("n", 100, "requests")
	c := flag.Int("c", 8, "concurrent workers")
	warmup := flag.Int("warmup", 0, "requests before the measured ones")
	pause := flag.Duration("pause", time.Second, "wait after the warm-up")
	alpha := flag.Bool("alpha", false, "write request numbers in letters")
	flag.Parse()
	if *alpha {
		number = letters
	}
	if !strings.Contains(*target, "{id}") || *n < 1 || *c < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -url must contain {id}; -n and -c must be positive")
		os.Exit(2)
	}
	if *warmup > 0 {
		if f := run(*target, *prefix+"w", *warmup, *c); f > 0 {
			fmt.Fprintf(os.Stderr, "loadgen: %d of %d warm-up requests failed\n", f, *warmup)
			os.Exit(1)
		}
		fmt.Println("warm")
		time.Sleep(*pause)
	}
	began := time.Now()
	if f := run(*target, *prefix, *n, *c); f > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d of %d requests failed\n", f, *n)
		os.Exit(1)
	}
	fmt.Printf("ok %d %.3fs\n", *n, time.Since(began).Seconds())
}

// run sends n requests from c workers and returns how many failed.
func run(target, prefix string, n, c int) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One connection per worker: the worker's requests reuse it.
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				u := strings.ReplaceAll(target, "{id}", prefix+"-"+number(i))
				resp, err := client.Get(u)
				if err != nil {
					failed.Add(1)
					fmt.Fprintf(os.Stderr, "GET %s: %v\n", u, err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					fmt.Fprintf(os.Stderr, "GET %s: %d\n", u, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

// number writes a request number into its path.
var number = func(i int64) string { return strconv.FormatInt(i, 10) }

// letters writes i in base 26 with the digits a..z.
func letters(i int64) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			break
		}
	}
	slices.Reverse(b)
	return string(b)
}
