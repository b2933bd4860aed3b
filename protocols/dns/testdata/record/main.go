// Command record records real DNS traffic for the parser's fixtures. It
// runs a small DNS server built on dnsmessage on 127.0.0.1 (UDP and TCP on
// one port), drives real clients against it (dig, Go's resolver), and
// writes, per scenario, every datagram, TCP read and TCP write as the
// server saw it (format: ../README.md).
//
//	go run ./protocols/dns/testdata/record -out protocols/dns/testdata
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func main() {
	out := flag.String("out", ".", "directory the .rec files are written to")
	flag.Parse()
	srv, err := listen()
	if err != nil {
		log.Fatal(err)
	}
	go srv.serveUDP(srv.udp)
	go srv.serveTCP()
	port := fmt.Sprint(srv.port)
	// glibc's resolver retransmits on the same socket, unlike dig and Go,
	// which open a new one per try; it only talks to port 53.
	glibc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53})
	if err != nil {
		log.Printf("no glibc scenario: %v", err)
	} else {
		go srv.serveUDP(glibc)
	}
	getent := func(name string) func() error {
		return func() error {
			conf := filepath.Join(os.TempDir(), "weft-record-resolv.conf")
			if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n"), 0o644); err != nil {
				return err
			}
			defer os.Remove(conf)
			b, err := exec.Command("unshare", "--mount", "sh", "-c",
				"mount --bind "+conf+" /etc/resolv.conf && exec getent ahostsv4 "+name).CombinedOutput()
			log.Printf("getent ahostsv4 %s:\n%s", name, b)
			return err
		}
	}
	dig := func(args ...string) func() error {
		return func() error {
			a := append([]string{"@127.0.0.1", "-p", port, "+tries=1", "+timeout=3"}, args...)
			b, err := exec.Command("dig", a...).CombinedOutput()
			log.Printf("dig %s:\n%s", strings.Join(a, " "), b)
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 9 {
				return nil // no reply: what the timeout scenario wants
			}
			return err
		}
	}
	lookup := func(network, name string) func() error {
		return func() error {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, srv.addr.String())
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			addrs, err := r.LookupHost(ctx, name)
			log.Printf("go %s lookup %s: %v %v", network, name, addrs, err)
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return nil
			}
			return err
		}
	}
	for _, sc := range []struct {
		name string
		run  func() error
		port uint16 // the server's; 0: srv.port
	}{
		{"dig-a-udp", dig("example.test", "A"), 0},
		{"dig-nxdomain-udp", dig("nope.example", "A"), 0},
		{"dig-servfail-udp", dig("servfail.test", "A"), 0},
		{"dig-refused-udp", dig("refused.test", "MX"), 0},
		{"dig-badvers-udp", dig("badvers.test", "A"), 0},
		{"dig-a-tcp", dig("+tcp", "www.example.test", "A"), 0},
		{"dig-retry-udp", dig("+tries=2", "+timeout=1", "retry.test", "A"), 0},
		{"dig-timeout-udp", dig("+timeout=1", "drop.test", "A"), 0},
		{"dig-tc-fallback", dig("big.test", "A"), 0},
		{"go-lookuphost-udp", lookup("udp", "example.test."), 0},
		{"go-lookuphost-tcp", lookup("tcp", "example.test."), 0},
		{"go-nxdomain-udp", lookup("udp", "nope.example."), 0},
		{"glibc-retransmit-udp", getent("retry.test"), 53},
	} {
		if sc.port == 53 && glibc == nil {
			continue
		}
		srv.startRecording(cmp.Or(sc.port, srv.port))
		if err := sc.run(); err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		// The server records a response before it sends it: once the
		// client has its answer, the recording is complete.
		rec := srv.stopRecording()
		path := filepath.Join(*out, sc.name+".rec")
		if err := os.WriteFile(path, rec, 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s (%d bytes)", path, len(rec))
	}
}

type server struct {
	addr netip.AddrPort
	port uint16
	udp  *net.UDPConn
	tcp  *net.TCPListener

	mu      sync.Mutex
	rec     bytes.Buffer
	t0      time.Time
	dropped map[string]bool // retry.test queries dropped once, by peer and id
}

// listen binds UDP and TCP on one free loopback port.
func listen() (*server, error) {
	for range 20 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			u.Close()
			continue
		}
		return &server{
			addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), port: uint16(port),
			udp: u, tcp: t, dropped: map[string]bool{},
		}, nil
	}
	return nil, errors.New("no port free for both UDP and TCP")
}

func (s *server) startRecording(port uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.Reset()
	fmt.Fprintf(&s.rec, "server %s\n", netip.AddrPortFrom(s.addr.Addr(), port))
	s.t0 = time.Now()
}

func (s *server) stopRecording() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.rec.Bytes())
}

// record logs b as moving toward the server (in) or from it, to or from
// client over proto.
func (s *server) record(in bool, proto string, client net.Addr, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := "<"
	if in {
		dir = ">"
	}
	ap, err := netip.ParseAddrPort(client.String())
	if err != nil {
		log.Fatalf("client address %s: %v", client, err)
	}
	fmt.Fprintf(&s.rec, "%s %s %s %d %d\n", dir, proto, ap, time.Since(s.t0).Nanoseconds(), len(b))
	s.rec.Write(b)
	s.rec.WriteByte('\n')
}

func (s *server) serveUDP(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			log.Fatal(err)
		}
		s.record(true, "udp", from, buf[:n])
		resp := s.answer(buf[:n], from.String(), false)
		if resp == nil {
			continue
		}
		s.record(false, "udp", from, resp)
		if _, err := c.WriteToUDP(resp, from); err != nil {
			log.Fatal(err)
		}
	}
}

func (s *server) serveTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serveConn(c)
	}
}

func (s *server) serveConn(c net.Conn) {
	defer c.Close()
	var pending []byte
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.record(true, "tcp", c.RemoteAddr(), buf[:n])
			pending = append(pending, buf[:n]...)
			for len(pending) >= 2 {
				l := int(pending[0])<<8 | int(pending[1])
				if len(pending) < 2+l {
					break
				}
				resp := s.answer(pending[2:2+l], c.RemoteAddr().String(), true)
				pending = pending[2+l:]
				if resp == nil {
					continue
				}
				out := append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)
				s.record(false, "tcp", c.RemoteAddr(), out)
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			log.Printf("tcp read: %v", err)
			return
		}
	}
}

var (
	soaName = dnsmessage.MustNewName("test.")
	soa     = dnsmessage.SOAResource{
		NS: dnsmessage.MustNewName("ns.test."), MBox: dnsmessage.MustNewName("hostmaster.test."),
		Serial: 2026112501, Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: 60,
	}
)

// answer builds the response to query (nil: drop it). Names:
// example.test and below: A 192.0.2.1 and 192.0.2.2, AAAA 2001:db8::1;
// servfail.test SERVFAIL; refused.test REFUSED; badvers.test the extended
// code BADVERS; drop.test never answered; retry.test answered from the
// second copy on; big.test truncated over UDP and 40 A records over TCP;
// anything else NXDOMAIN with the zone's SOA.
func (s *server) answer(query []byte, peer string, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	p.SkipAllQuestions()
	p.SkipAllAnswers()
	p.SkipAllAuthorities()
	edns := false
	for {
		rh, err := p.AdditionalHeader()
		if err != nil {
			break
		}
		if rh.Type == dnsmessage.TypeOPT {
			edns = true
		}
		p.SkipAdditional()
	}
	name := strings.ToLower(q.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	var answers func(b *dnsmessage.Builder) error
	ext := dnsmessage.RCode(0)
	hdr := func(typ dnsmessage.Type) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: q.Name, Type: typ, Class: dnsmessage.ClassINET, TTL: 300}
	}
	switch {
	case name == "example.test." || strings.HasSuffix(name, ".example.test."):
		answers = func(b *dnsmessage.Builder) error {
			switch q.Type {
			case dnsmessage.TypeA:
				if err := b.AResource(hdr(dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}); err != nil {
					return err
				}
				return b.AResource(hdr(dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte{192, 0, 2, 2}})
			case dnsmessage.TypeAAAA:
				return b.AAAAResource(hdr(dnsmessage.TypeAAAA), dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::1").As16()})
			}
			return nil
		}
	case name == "servfail.test.":
		rh.RCode = dnsmessage.RCodeServerFailure
	case name == "refused.test.":
		rh.RCode = dnsmessage.RCodeRefused
	case name == "badvers.test.":
		ext = 16 // BADVERS: 1 in the OPT record's upper bits, 0 in the header
	case name == "drop.test.":
		return nil
	case name == "retry.test.":
		key := fmt.Sprintf("%s/%d", peer, h.ID)
		s.mu.Lock()
		first := !s.dropped[key]
		s.dropped[key] = true
		s.mu.Unlock()
		if first {
			return nil
		}
		answers = func(b *dnsmessage.Builder) error {
			return b.AResource(hdr(dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}})
		}
	case name == "big.test.":
		if !tcp {
			rh.Truncated = true
			break
		}
		answers = func(b *dnsmessage.Builder) error {
			for i := range 40 {
				if err := b.AResource(hdr(dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte{198, 51, 100, byte(i + 1)}}); err != nil {
					return err
				}
			}
			return nil
		}
	default:
		rh.RCode = dnsmessage.RCodeNameError
	}
	rh.RCode |= ext & 0xf
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	must(b.StartQuestions())
	must(b.Question(q))
	must(b.StartAnswers())
	if answers != nil {
		must(answers(&b))
	}
	must(b.StartAuthorities())
	if rh.RCode == dnsmessage.RCodeNameError {
		must(b.SOAResource(dnsmessage.ResourceHeader{Name: soaName, Class: dnsmessage.ClassINET, TTL: 60}, soa))
	}
	must(b.StartAdditionals())
	if edns || ext != 0 {
		var oh dnsmessage.ResourceHeader
		must(oh.SetEDNS0(1232, ext, false))
		must(b.OPTResource(oh, dnsmessage.OPTResource{}))
	}
	out, err := b.Finish()
	must(err)
	return out
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
