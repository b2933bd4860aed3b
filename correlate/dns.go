package correlate

import (
	"net/netip"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/dns"
)

// Semconv v1.40.0 has dns.question.name and dns.answers only. The question
// type, the response code and the answer count are what a DNS span is
// read for, so weft reports them under these names (ECS's for the first
// two, which semconv's DNS attributes follow), declared once here and
// listed in the README.
const (
	// DNSQuestionTypeKey is the question's RR type mnemonic: "A", "AAAA",
	// "TYPE65534" for one without a name.
	DNSQuestionTypeKey = attribute.Key("dns.question.type")
	// DNSResponseCodeKey is the response code mnemonic, EDNS-extended:
	// "NOERROR", "NXDOMAIN", "SERVFAIL", "BADVERS", "RCODE12".
	DNSResponseCodeKey = attribute.Key("dns.response_code")
	// DNSAnswerCountKey is the number of answer records (the header's
	// ANCOUNT).
	DNSAnswerCountKey = attribute.Key("dns.answer.count")
)

// ErrorTypeTimeout is the error.type of a DNS span whose query saw no
// response: none came within the timeout, or the socket closed first.
// A client that gave up at once (its socket closed unanswered well before
// any timeout, as on a refused query) reports ErrorTypeNoResponse. Error
// response codes report their mnemonic ("SERVFAIL") instead.
const ErrorTypeTimeout = "timeout"

// dnsSpanPrefix starts every DNS span name: "DNS A example.com".
const dnsSpanPrefix = "DNS "

// maxDNSAttrs is the most attributes a DNS span gets, so the slice is
// allocated once at its final size.
const maxDNSAttrs = 13

// dnsSpan fills s from a DNS exchange: CLIENT for the process that asked,
// SERVER for the one that answered; named "DNS {type} {name}"; Error for
// timeouts and for every response code but NOERROR and NXDOMAIN (a name
// that does not exist is an answer, not a failure).
func (c *Correlator) dnsSpan(ex *protocols.Exchange, s *Span) {
	d := ex.DNS
	s.Kind = spanKind(ex.Role)
	qtype := dns.TypeString(d.Type)
	s.Name = dnsSpanName(qtype, d.Name)
	attrs := make([]attribute.KeyValue, 0, maxDNSAttrs)
	attrs = append(attrs, semconv.DNSQuestionName(d.Name), DNSQuestionTypeKey.String(qtype))
	if d.Transport == "tcp" {
		attrs = append(attrs, semconv.NetworkTransportTCP)
	} else {
		attrs = append(attrs, semconv.NetworkTransportUDP)
	}

	peer := d.Peer
	if !peer.IsValid() && ex.Conn != nil {
		peer = ex.Conn.Tuple.Remote
	}
	if peer.Port() == 0 && peer.Addr().IsUnspecified() {
		peer = netip.AddrPort{} // an unconnected socket's remote end: unknown
	}
	peerAddr := addrString(peer.Addr())
	switch s.Kind {
	case trace.SpanKindClient:
		attrs = appendAddrPort(attrs, semconv.ServerAddressKey, semconv.ServerPortKey, peerAddr, peer.Port())
	case trace.SpanKindServer:
		if ex.Conn != nil {
			// A socket bound to the wildcard address does not say which
			// of the host's addresses the query came to: the port only.
			local := ex.Conn.Tuple.Local
			if a := local.Addr(); a.IsValid() && !a.IsUnspecified() {
				attrs = append(attrs, semconv.ServerAddress(addrString(a)))
			}
			if local.Port() != 0 {
				attrs = append(attrs, semconv.ServerPort(int(local.Port())))
			}
		}
		attrs = appendAddrPort(attrs, semconv.ClientAddressKey, semconv.ClientPortKey, peerAddr, peer.Port())
	}
	attrs = appendAddrPort(attrs, semconv.NetworkPeerAddressKey, semconv.NetworkPeerPortKey, peerAddr, peer.Port())

	if !d.TimedOut && !d.NoResponse {
		attrs = append(attrs, DNSResponseCodeKey.String(dns.RCodeString(d.RCode)), DNSAnswerCountKey.Int(d.Answers))
		if d.NAddrs > 0 {
			attrs = append(attrs, semconv.DNSAnswers(addrStrings(d.Addrs[:min(d.NAddrs, len(d.Addrs))])...))
		}
	}
	var errType string
	s.StatusCode, errType = dnsStatus(d)
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	s.Attributes = attrs
}

// dnsSpanName is "DNS {type} {name}", built in one allocation.
func dnsSpanName(qtype, name string) string {
	var b strings.Builder
	b.Grow(len(dnsSpanPrefix) + len(qtype) + 1 + len(name))
	b.WriteString(dnsSpanPrefix)
	b.WriteString(qtype)
	b.WriteByte(' ')
	b.WriteString(name)
	return b.String()
}

// dnsStatus says whether the exchange failed, and how (error.type).
func dnsStatus(d *protocols.DNSInfo) (codes.Code, string) {
	switch {
	case d.TimedOut:
		return codes.Error, ErrorTypeTimeout
	case d.NoResponse:
		return codes.Error, ErrorTypeNoResponse
	case d.RCode == 0, d.RCode == 3: // NOERROR, NXDOMAIN
		return codes.Unset, ""
	}
	return codes.Error, dns.RCodeString(d.RCode)
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = addrString(a)
	}
	return out
}
