// Command dns is the demo shop's name server: a tiny authoritative DNS
// server for the demo.local zone on a loopback UDP port. Every name under
// demo.local has the A record 127.0.0.1 (and no AAAA record); anything
// else is NXDOMAIN. The frontend resolves catalog.demo.local and
// checkout.demo.local through it, so its look-ups are real DNS queries.
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
)

const zone = "demo.local."

func main() {
	addr := flag.String("addr", "127.0.0.1:10053", "UDP address to answer on")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	ua, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("dns: answering for %s on udp %s", zone, c.LocalAddr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		c.Close()
	}()
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		if resp := answer(buf[:n]); resp != nil {
			if _, err := c.WriteToUDP(resp, from); err != nil {
				log.Printf("dns: write to %s: %v", from, err)
			}
		}
	}
}

// answer builds the response to query, or nil for what is not a query.
func answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	inZone := name == zone || strings.HasSuffix(name, "."+zone)
	if !inZone {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	if inZone && q.Type == dnsmessage.TypeA {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5}
		if b.AResource(hdr, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}) != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
