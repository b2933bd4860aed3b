// Command goresolve is the Go resolver client the e2e tests trace: Go's
// own resolver (PreferGo) asks -server, over -network (udp or tcp), for
// the -type (A or AAAA) addresses of the name given as argument, one
// query, and prints one JSON line on stdout: the addresses, whether the
// name does not exist, any other error, and the wall-clock window around
// the lookup.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"os"
	"time"
)

type result struct {
	Addrs    []string `json:"addrs"`
	NotFound bool     `json:"not_found"`
	Err      string   `json:"err,omitempty"`
	StartNs  int64    `json:"start_ns"`
	EndNs    int64    `json:"end_ns"`
}

func main() {
	server := flag.String("server", "", "DNS server host:port")
	network := flag.String("network", "udp", "udp or tcp")
	qtype := flag.String("type", "A", "A or AAAA")
	timeout := flag.Duration("timeout", 5*time.Second, "lookup timeout")
	flag.Parse()
	if *server == "" || flag.NArg() != 1 {
		log.Fatal("usage: goresolve -server host:port [-network udp|tcp] [-type A|AAAA] name")
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, *network, *server)
	}}
	family := "ip4"
	if *qtype == "AAAA" {
		family = "ip6"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res result
	res.StartNs = time.Now().UnixNano()
	ips, err := r.LookupIP(ctx, family, flag.Arg(0))
	res.EndNs = time.Now().UnixNano()
	for _, ip := range ips {
		res.Addrs = append(res.Addrs, ip.String())
	}
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		res.NotFound = true
	case err != nil:
		res.Err = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Fatal(err)
	}
}
