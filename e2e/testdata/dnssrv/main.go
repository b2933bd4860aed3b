// Command dnssrv is the DNS server the e2e tests trace, built on
// dnsmessage. It serves UDP and TCP on one free port of 127.0.0.1 and
// prints the port number alone on the first line of stdout. Answers:
//
//	example.test and below   A 192.0.2.1, AAAA 2001:db8::1 (NOERROR)
//	drop.test and below      nothing: the query is dropped (clients time out)
//	anything else            NXDOMAIN
//
// On SIGTERM it closes its sockets (so their queries still waiting end)
// and exits 0.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	udp, tcp, err := listen()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(udp.LocalAddr().(*net.UDPAddr).Port)
	go serveUDP(udp)
	go serveTCP(tcp)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	udp.Close()
	tcp.Close()
	log.Print("stopped")
}

// listen binds UDP and TCP on one free loopback port.
func listen() (*net.UDPConn, *net.TCPListener, error) {
	for range 20 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, nil, err
		}
		t, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: u.LocalAddr().(*net.UDPAddr).Port})
		if err == nil {
			return u, t, nil
		}
		u.Close()
	}
	return nil, nil, errors.New("no port free for both UDP and TCP")
}

func serveUDP(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		if resp := answer(buf[:n], "udp"); resp != nil {
			if _, err := c.WriteToUDP(resp, from); err != nil {
				log.Printf("write to %s: %v", from, err)
			}
		}
	}
}

func serveTCP(l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		go serveConn(c)
	}
}

// serveConn answers length-prefixed queries (RFC 1035 4.2.2) until EOF.
func serveConn(c net.Conn) {
	defer c.Close()
	var prefix [2]byte
	for {
		if _, err := io.ReadFull(c, prefix[:]); err != nil {
			return
		}
		q := make([]byte, int(prefix[0])<<8|int(prefix[1]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := answer(q, "tcp")
		if resp == nil {
			continue
		}
		if _, err := c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)); err != nil {
			return
		}
	}
}

// answer builds the response to query, or nil to drop it.
func answer(query []byte, transport string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		log.Printf("%s: not DNS: %v", transport, err)
		return nil
	}
	q, err := p.Question()
	if err != nil {
		log.Printf("%s: no question: %v", transport, err)
		return nil
	}
	name := strings.ToLower(q.Name.String())
	under := func(zone string) bool { return name == zone || strings.HasSuffix(name, "."+zone) }
	log.Printf("%s: id %d %v %s", transport, h.ID, q.Type, name)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	var rr func(*dnsmessage.Builder) error
	switch {
	case under("drop.test."):
		return nil
	case under("example.test."):
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
		switch q.Type {
		case dnsmessage.TypeA:
			rr = func(b *dnsmessage.Builder) error {
				return b.AResource(hdr, dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}})
			}
		case dnsmessage.TypeAAAA:
			aaaa := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
			rr = func(b *dnsmessage.Builder) error { return b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: aaaa}) }
		}
	default:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		log.Fatal(err)
	}
	if err := b.Question(q); err != nil {
		log.Fatal(err)
	}
	if err := b.StartAnswers(); err != nil {
		log.Fatal(err)
	}
	if rr != nil {
		if err := rr(&b); err != nil {
			log.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		log.Fatal(err)
	}
	return out
}
