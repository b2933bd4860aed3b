package dns

import (
	"errors"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weftrace/weft/protocols"
)

// headerLen is the fixed DNS header; minMessage adds the smallest question
// (the root name, type and class).
const (
	headerLen  = 12
	minMessage = headerLen + 5
)

// message is what a span needs of one DNS message. It is reused: decode
// overwrites every field.
type message struct {
	id       uint16
	response bool
	rcode    int    // extended by the OPT record when one was read
	ancount  uint16 // from the header, so a cut-short response keeps it
	// hasQuestion is set when the first question was decoded whole.
	hasQuestion bool
	qtype       uint16
	name        dnsmessage.Name
	addrs       [protocols.DNSMaxAddrs]netip.Addr
	naddrs      int
	// partial is set when decoding stopped before the end of what the
	// header announced: the bytes ran out (capture limit) or went wrong.
	partial bool
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// decode fills m from b, which may be cut short. It reports false when b is
// not even a DNS header. Only responses are read past their question.
func decode(b []byte, m *message) bool {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return false
	}
	*m = message{id: h.ID, response: h.Response, rcode: int(h.RCode), ancount: be16(b[6:])}
	q, err := p.Question()
	switch {
	case errors.Is(err, dnsmessage.ErrSectionDone):
	case err != nil:
		m.partial = true
		return true
	default:
		m.hasQuestion, m.qtype, m.name = true, uint16(q.Type), q.Name
	}
	if !m.response {
		return true
	}
	if err := p.SkipAllQuestions(); err != nil {
		m.partial = true
		return true
	}
	if !m.answers(&p) {
		m.partial = true
		return true
	}
	if be16(b[10:]) == 0 {
		return true // no additional records, so no OPT
	}
	if err := p.SkipAllAuthorities(); err != nil {
		m.partial = true
		return true
	}
	if !m.opt(&p, h.RCode) {
		m.partial = true
	}
	return true
}

// answers reads the A and AAAA answers (the first DNSMaxAddrs) and skips
// the others; it reports false when the section could not be read whole.
func (m *message) answers(p *dnsmessage.Parser) bool {
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return true
		}
		if err != nil {
			return false
		}
		full := m.naddrs == len(m.addrs)
		switch {
		case rh.Class == dnsmessage.ClassINET && rh.Type == dnsmessage.TypeA && !full:
			r, err := p.AResource()
			if err != nil {
				return false
			}
			m.addrs[m.naddrs] = netip.AddrFrom4(r.A)
			m.naddrs++
		case rh.Class == dnsmessage.ClassINET && rh.Type == dnsmessage.TypeAAAA && !full:
			r, err := p.AAAAResource()
			if err != nil {
				return false
			}
			m.addrs[m.naddrs] = netip.AddrFrom16(r.AAAA)
			m.naddrs++
		default:
			if err := p.SkipAnswer(); err != nil {
				return false
			}
		}
	}
}

// opt looks for the OPT record among the additionals and extends the
// response code with its upper bits (RFC 6891 6.1.3); it reports false
// when the section could not be read whole.
func (m *message) opt(p *dnsmessage.Parser, rc dnsmessage.RCode) bool {
	for {
		rh, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return true
		}
		if err != nil {
			return false
		}
		if rh.Type == dnsmessage.TypeOPT {
			m.rcode = int(rh.ExtendedRCode(rc))
			return true
		}
		if err := p.SkipAdditional(); err != nil {
			return false
		}
	}
}
