package dns

import "golang.org/x/net/dns/dnsmessage"

// LooksLikeDatagram reports whether b, the captured bytes of one UDP
// datagram, is a standard DNS query or response, whatever the port: one
// question of a known class that decodes whole, a reserved bit clear, and
// for a query no records but EDNS/TSIG additionals. Random bytes pass with
// odds far below one in 2^32; other UDP protocols' first datagrams
// (QUIC, NTP, syslog, mDNS responses without a question) do not.
func LooksLikeDatagram(b []byte) bool { return plausible(b) }

// LooksLikeStream reports whether b, the first captured bytes of a TCP
// stream, starts with a length-prefixed DNS message (RFC 1035 4.2.2) that
// LooksLikeDatagram would accept, or is a length prefix alone that could
// announce a query: servers commonly read the prefix first, then the
// message, and the server's first read is all detection sees of it. A
// two-byte first read matches no other protocol weft knows, so the looser
// test takes nothing from them.
func LooksLikeStream(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	n := int(be16(b))
	if n < minMessage {
		return false
	}
	if len(b) == 2 {
		return n <= maxQueryLen
	}
	b = b[2:]
	if len(b) > n {
		b = b[:n]
	}
	return plausible(b)
}

// maxQueryLen bounds the length a lone prefix may announce: a query
// holds one question and a few EDNS options (RFC 1035 limits names to 255
// bytes; padding and cookies add a few hundred).
const maxQueryLen = 1024

func plausible(b []byte) bool {
	if len(b) < minMessage {
		return false
	}
	flags := be16(b[2:])
	query := flags&0x8000 == 0
	opcode, z, rcode := flags>>11&0xf, flags&0x40, flags&0xf
	qd, an, ns, ar := be16(b[4:]), be16(b[6:]), be16(b[8:]), be16(b[10:])
	if qd != 1 || opcode != 0 || z != 0 {
		return false
	}
	if query && (an != 0 || ns != 0 || ar > 2 || rcode != 0) {
		return false
	}
	var p dnsmessage.Parser
	if _, err := p.Start(b); err != nil {
		return false
	}
	q, err := p.Question()
	if err != nil {
		return false
	}
	// The top bit of the class is mDNS's unicast-response flag.
	switch q.Class & 0x7fff {
	case dnsmessage.ClassINET, dnsmessage.ClassCHAOS, dnsmessage.ClassHESIOD, dnsmessage.ClassANY:
		return true
	}
	return false
}
