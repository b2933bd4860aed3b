// Command gosrv is the Go net/http server the e2e tests trace. It listens on
// 127.0.0.1 on a free port and prints the port number alone on the first line
// of stdout. Routes:
//
//	GET  /items/{id}     200, a small JSON object (Content-Length)
//	GET  /status/{code}  that status code with a short text body
//	GET  /chunked        200, a chunked body (flushed in five chunks)
//	POST /upload         reads and discards the body; 200, {"bytes": n}
//	GET  /bytes/{n}      200, n bytes (Content-Length, written 1 MiB at a
//	                     time from one buffer: a body of any size, streamed)
//	POST /echo           200, the request body sent back as the body and
//	                     in a Set-Cookie header (weft_echo=body)
//	GET  /chain/{tok}?down=PORT[&pgport=PORT&pgdb=DB]
//	                     GETs http://127.0.0.1:PORT/relay/{tok} (a downstream
//	                     call made while serving), then, with pgport, runs
//	                     SELECT length('{tok}') on PostgreSQL database DB at
//	                     127.0.0.1:PORT (simple protocol, a connection of its
//	                     own); answers with the relay's status and body
//	GET  /fan/{id}?down=PORT
//	                     GETs http://127.0.0.1:PORT/items/{id}.1 and .2 at
//	                     once, each on a goroutine of its own, over a pool of
//	                     keep-alive connections; 200 when both answered 200
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"id": r.PathValue("id"), "name": "item " + r.PathValue("id")})
	})
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "bad status code", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d %s\n", code, http.StatusText(code))
	})
	mux.HandleFunc("GET /chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		rc := http.NewResponseController(w)
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(w, "chunk %d of 5\n", i)
			if err := rc.Flush(); err != nil { // each flush sends one chunk
				log.Printf("flush: %v", err)
				return
			}
		}
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > 4<<30 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 1<<20)
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]int64{"bytes": n})
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Set-Cookie", "weft_echo="+string(body))
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	downstream := &http.Client{Timeout: 10 * time.Second}
	mux.HandleFunc("GET /chain/{tok}", func(w http.ResponseWriter, r *http.Request) {
		port, err := strconv.ParseUint(r.URL.Query().Get("down"), 10, 16)
		if err != nil {
			http.Error(w, "down must be a port", http.StatusBadRequest)
			return
		}
		resp, err := downstream.Get(fmt.Sprintf("http://127.0.0.1:%d/relay/%s", port, r.PathValue("tok")))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if pgPort := r.URL.Query().Get("pgport"); pgPort != "" {
			if err := query(r.Context(), pgPort, r.URL.Query().Get("pgdb"), r.PathValue("tok")); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	})
	fan := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	mux.HandleFunc("GET /fan/{id}", func(w http.ResponseWriter, r *http.Request) {
		port, err := strconv.ParseUint(r.URL.Query().Get("down"), 10, 16)
		if err != nil {
			http.Error(w, "down must be a port", http.StatusBadRequest)
			return
		}
		errs := make(chan error, 2)
		for k := 1; k <= 2; k++ {
			go func() {
				resp, err := fan.Get(fmt.Sprintf("http://127.0.0.1:%d/items/%s.%d", port, r.PathValue("id"), k))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: logged(mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(srv.Serve(ln))
}

// query runs one statement on its own connection, over the simple query
// protocol: one exchange.
func query(ctx context.Context, port, db, tok string) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("pgport: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable", port, db))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT length($1::text)", pgx.QueryExecModeSimpleProtocol, tok).Scan(&n); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n != len(tok) {
		return fmt.Errorf("select: length %d, want %d", n, len(tok))
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.Write(append(b, '\n'))
}

// logged logs each request to stderr (the test prints it on failure).
func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s from %s", r.Method, r.URL.RequestURI(), r.Proto, r.RemoteAddr)
		h.ServeHTTP(w, r)
	})
}
