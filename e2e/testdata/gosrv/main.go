// Command gosrv is the Go net/http server the e2e tests trace. It listens on
// 127.0.0.1 on a free port and prints the port number alone on the first line
// of stdout. Routes:
//
//	GET  /items/{id}     200, a small JSON object (Content-Length)
//	GET  /status/{code}  that status code with a short text body
//	GET  /chunked        200, a chunked body (flushed in five chunks)
//	POST /upload         reads and discards the body; 200, {"bytes": n}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
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
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]int64{"bytes": n})
	})
	srv := &http.Server{Handler: logged(mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(srv.Serve(ln))
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
