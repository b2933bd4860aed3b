// Command h2csrv is a Go net/http server speaking HTTP/2 over plain TCP
// with prior knowledge (h2c; net/http's own support, which replaced
// golang.org/x/net/http2/h2c) and HTTP/1.1. It listens on 127.0.0.1 on a
// free port and prints the port number alone on the first line of stdout.
// Routes:
//
//	GET /items/{id}     200, a small JSON object
//	GET /status/{code}  that status code with a short text body
//	GET /big            200, 256 KiB in many DATA frames
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
		b, _ := json.Marshal(map[string]string{"id": r.PathValue("id")})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "bad status code", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16))
	})
	srv := &http.Server{Handler: logged(mux), ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(srv.Serve(ln))
}

// logged logs each request to stderr (the test prints it on failure).
func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s from %s", r.Method, r.URL.RequestURI(), r.Proto, r.RemoteAddr)
		h.ServeHTTP(w, r)
	})
}
