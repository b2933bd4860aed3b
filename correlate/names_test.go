package correlate

import (
	"fmt"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// TestSpanNamesCappedPerService: a service keeps its first MaxSpanNames
// distinct names; new ones beyond get their protocol's generic name and
// are counted; names it already had keep coming; another service has its
// own budget.
func TestSpanNamesCappedPerService(t *testing.T) {
	c, col := newTest(t, Config{MaxSpanNames: 3})
	name := func(comm string, ex *protocols.Exchange) string {
		ex.Conn.Comm = comm // fakeProcs names the service after the comm
		return addOne(t, c, col, ex).Name
	}
	get := func(path string) *protocols.Exchange {
		return exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: path, Status: 200})
	}
	for i, want := range []string{"GET /a", "GET /b", "GET /items/{id}", "GET", "GET"} {
		path := []string{"/a", "/b", "/items/7", "/c", "/d"}[i]
		if got := name("web", get(path)); got != want {
			t.Errorf("web %s: name %q, want %q", path, got, want)
		}
	}
	if got := name("web", get("/items/8")); got != "GET /items/{id}" {
		t.Errorf("a name the service already had became %q", got)
	}
	post := exchange(conn.RoleServer, protocols.HTTP{Method: "PURGE", Path: "/e", Status: 200})
	if got := name("web", post); got != "HTTP" {
		t.Errorf("an unknown method over the cap: %q, want HTTP", got)
	}
	if got := name("other", get("/c")); got != "GET /c" {
		t.Errorf("another service's first name became %q", got)
	}
	over := map[string]*protocols.Exchange{
		"grpc":       grpcExchange(conn.RoleServer, "/shop.v1.Orders/Get", 0),
		"DNS":        dnsExchange(conn.RoleServer, protocols.DNSInfo{ID: 1, Name: "x.test", Type: 1}),
		"postgresql": pgExchange(conn.RoleServer, protocols.PostgresInfo{Operation: "SELECT", Database: "shop"}),
	}
	for want, ex := range over {
		if got := name("web", ex); got != want {
			t.Errorf("%v over the cap: %q, want %q", ex.Protocol, got, want)
		}
	}
	if got := c.Stats().CappedNames; got != 6 {
		t.Errorf("CappedNames = %d, want 6", got)
	}
}

// TestSpanNamesCapBoundsServices: the sets of at most maxNamedServices
// services are kept, and a negative cap keeps every name.
func TestSpanNamesCapBoundsServices(t *testing.T) {
	n := newNameCap(2)
	ex := exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	for i := range 3 * maxNamedServices {
		n.name(fmt.Sprint("svc", i), "GET /x", ex)
	}
	if len(n.services) > maxNamedServices {
		t.Errorf("%d services remembered, want at most %d", len(n.services), maxNamedServices)
	}
	free := newNameCap(-1)
	for i := range 5000 {
		if got, want := free.name("s", fmt.Sprint("GET /", i), ex), fmt.Sprint("GET /", i); got != want {
			t.Fatalf("no cap: %q, want %q", got, want)
		}
	}
	if len(free.services) != 0 {
		t.Errorf("no cap still remembered names")
	}
}

// BenchmarkSpanNameCap: the cost per span of a name the service already has.
func BenchmarkSpanNameCap(b *testing.B) {
	n := newNameCap(DefaultMaxSpanNames)
	ex := exchange(conn.RoleServer, protocols.HTTP{Method: "GET", Path: "/", Status: 200})
	for b.Loop() {
		n.name("web", "GET /items/{id}", ex)
	}
}
