package dns

import (
	"strconv"

	"golang.org/x/net/dns/dnsmessage"
)

// maxPresentation is the longest question name in presentation form: 255
// wire bytes, each escaped as \DDD at worst.
const maxPresentation = 4 * 255

// appendName appends n in presentation form without its trailing dot ("."
// for the root). Labels cannot hold dots (dnsmessage rejects them);
// control and non-ASCII bytes become \DDD, tab, CR and LF \t \r \n, and
// backslash and quote are escaped, so the attribute is printable and
// unambiguous whatever a peer sent.
func appendName(dst []byte, n *dnsmessage.Name) []byte {
	b := n.Data[:n.Length]
	if len(b) <= 1 {
		return append(dst, '.')
	}
	for _, c := range b[:len(b)-1] {
		switch {
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\\', c == '"':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// equalFold reports whether a and b are the same name ignoring ASCII case:
// resolvers that randomise a query's case (DNS 0x20) get it echoed, but
// not every server keeps it.
func equalFold(a string, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(b) {
		x, y := a[i], b[i]
		if x != y && lower(x) != lower(y) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// typeNames are the mnemonics of the RR types a question commonly asks for.
var typeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA",
	29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME",
	41: "OPT", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC",
	48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA",
	53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY",
	62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF",
	108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR",
	252: "AXFR", 255: "ANY", 256: "URI", 257: "CAA",
}

// TypeString returns the mnemonic of an RR type ("A", "AAAA", "HTTPS"), or
// "TYPE" and its number (RFC 3597) for one without.
func TypeString(t uint16) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// rcodeNames are the IANA mnemonics of the response codes, extended ones
// (EDNS) included; 16 is BADVERS in a header (BADSIG is its TSIG meaning).
var rcodeNames = [...]string{
	0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
	5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
	10: "NOTZONE", 11: "DSOTYPENI", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME",
	19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE",
}

// RCodeString returns the mnemonic of a response code ("NOERROR",
// "NXDOMAIN", "SERVFAIL"), or "RCODE" and its number for one without.
func RCodeString(rc int) string {
	if rc >= 0 && rc < len(rcodeNames) && rcodeNames[rc] != "" {
		return rcodeNames[rc]
	}
	return "RCODE" + strconv.Itoa(rc)
}
