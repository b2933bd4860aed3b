package load

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// These check that the generators work and count, not how fast anything
// is: no assertion depends on the machine's speed.

func TestHTTPClosedAndOpenLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/items/1" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"id":"1"}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, cfg := range []Config{{Conns: 4, Duration: 200 * time.Millisecond}, {Conns: 4, Rate: 500, Duration: 200 * time.Millisecond}} {
		res, err := HTTP(addr, "/items/1", cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if res.Requests == 0 || res.Errors != 0 || res.Latency.Count() != uint64(res.Requests) {
			t.Errorf("%+v: %+v", cfg, res)
		}
		if cfg.Rate > 0 && res.Requests+res.Dropped > 100 {
			t.Errorf("open loop at 500/s for 0.2 s sent %d", res.Requests+res.Dropped)
		}
	}
	if res, err := HTTP(addr, "/missing", Config{Conns: 1, Duration: 50 * time.Millisecond}); err == nil || res.Errors == 0 {
		t.Errorf("404s: want errors, got %+v, %v", res, err)
	}
}

func TestGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go GRPCServe(ln) // ends with the listener
	defer ln.Close()
	res, err := GRPC(ln.Addr().String(), Config{Conns: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("%+v", res)
	}
}
