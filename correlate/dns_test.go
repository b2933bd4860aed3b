package correlate

import (
	"net/netip"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

var (
	dnsServer = netip.MustParseAddrPort("10.0.0.53:53")
	dnsClient = netip.MustParseAddrPort("10.0.0.7:40000")
)

// dnsExchange is a DNS exchange seen from role on a UDP socket: the
// client's is connected to the server; the server's is bound to the
// wildcard address, as most are.
func dnsExchange(role conn.Role, d protocols.DNSInfo) *protocols.Exchange {
	info := &conn.Info{ID: conn.ID{PID: 77, FD: 5, Gen: 1}, Role: role, UDP: true, Comm: "dig",
		Tuple: conn.Tuple{Local: dnsClient, Remote: dnsServer}}
	d.Peer = dnsServer
	if role == conn.RoleServer {
		info.Tuple = conn.Tuple{Local: netip.MustParseAddrPort("0.0.0.0:53")}
		d.Peer = dnsClient
	}
	if d.Transport == "" {
		d.Transport = "udp"
	}
	return &protocols.Exchange{Conn: info, Role: role, Protocol: protocols.DNS, Start: 1000, End: 3000, DNS: &d}
}

func TestDNSSpans(t *testing.T) {
	answered := protocols.DNSInfo{ID: 1, Name: "example.test", Type: 1, RCode: 0, Answers: 2, NAddrs: 2,
		Addrs: [protocols.DNSMaxAddrs]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.2")}}
	tests := []struct {
		name    string
		ex      *protocols.Exchange
		kind    trace.SpanKind
		spanNm  string
		status  codes.Code
		want    []string
		answers []string
	}{
		{
			name: "client answer", ex: dnsExchange(conn.RoleClient, answered),
			kind: trace.SpanKindClient, spanNm: "DNS A example.test", status: codes.Unset,
			want: []string{
				"dns.question.name=example.test", "dns.question.type=A", "network.transport=udp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"dns.response_code=NOERROR", "dns.answer.count=2",
			},
			answers: []string{"192.0.2.1", "192.0.2.2"},
		},
		{
			name: "server answer", ex: dnsExchange(conn.RoleServer, answered),
			kind: trace.SpanKindServer, spanNm: "DNS A example.test", status: codes.Unset,
			want: []string{
				"dns.question.name=example.test", "dns.question.type=A", "network.transport=udp",
				"server.port=53", "client.address=10.0.0.7", "client.port=40000",
				"network.peer.address=10.0.0.7", "network.peer.port=40000",
				"dns.response_code=NOERROR", "dns.answer.count=2",
			},
			answers: []string{"192.0.2.1", "192.0.2.2"},
		},
		{
			name: "NXDOMAIN is an answer", ex: dnsExchange(conn.RoleClient, protocols.DNSInfo{Name: "nope.test", Type: 28, RCode: 3, Transport: "tcp"}),
			kind: trace.SpanKindClient, spanNm: "DNS AAAA nope.test", status: codes.Unset,
			want: []string{
				"dns.question.name=nope.test", "dns.question.type=AAAA", "network.transport=tcp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"dns.response_code=NXDOMAIN", "dns.answer.count=0",
			},
		},
		{
			name: "SERVFAIL", ex: dnsExchange(conn.RoleServer, protocols.DNSInfo{Name: "broken.test", Type: 15, RCode: 2}),
			kind: trace.SpanKindServer, spanNm: "DNS MX broken.test", status: codes.Error,
			want: []string{
				"dns.question.name=broken.test", "dns.question.type=MX", "network.transport=udp",
				"server.port=53", "client.address=10.0.0.7", "client.port=40000",
				"network.peer.address=10.0.0.7", "network.peer.port=40000",
				"dns.response_code=SERVFAIL", "dns.answer.count=0", "error.type=SERVFAIL",
			},
		},
		{
			name: "REFUSED", ex: dnsExchange(conn.RoleClient, protocols.DNSInfo{Name: "x.test", Type: 65, RCode: 5}),
			kind: trace.SpanKindClient, spanNm: "DNS HTTPS x.test", status: codes.Error,
			want: []string{
				"dns.question.name=x.test", "dns.question.type=HTTPS", "network.transport=udp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"dns.response_code=REFUSED", "dns.answer.count=0", "error.type=REFUSED",
			},
		},
		{
			name: "timeout", ex: dnsExchange(conn.RoleClient, protocols.DNSInfo{Name: "drop.test", Type: 1, RCode: -1, TimedOut: true}),
			kind: trace.SpanKindClient, spanNm: "DNS A drop.test", status: codes.Error,
			want: []string{
				"dns.question.name=drop.test", "dns.question.type=A", "network.transport=udp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"error.type=timeout",
			},
		},
		{
			// The socket closed at once, unanswered (nothing listened:
			// ECONNREFUSED): no response, not a timeout.
			name: "given up at once", ex: dnsExchange(conn.RoleClient, protocols.DNSInfo{Name: "refused.test", Type: 1, RCode: -1, NoResponse: true}),
			kind: trace.SpanKindClient, spanNm: "DNS A refused.test", status: codes.Error,
			want: []string{
				"dns.question.name=refused.test", "dns.question.type=A", "network.transport=udp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"error.type=no_response",
			},
		},
		{
			name: "root, unnamed type, extended code", ex: dnsExchange(conn.RoleClient, protocols.DNSInfo{Name: ".", Type: 65280, RCode: 16}),
			kind: trace.SpanKindClient, spanNm: "DNS TYPE65280 .", status: codes.Error,
			want: []string{
				"dns.question.name=.", "dns.question.type=TYPE65280", "network.transport=udp",
				"server.address=10.0.0.53", "server.port=53",
				"network.peer.address=10.0.0.53", "network.peer.port=53",
				"dns.response_code=BADVERS", "dns.answer.count=0", "error.type=BADVERS",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, col := newTest(t, Config{})
			s := addOne(t, c, col, tt.ex)
			if s.Name != tt.spanNm || s.Kind != tt.kind || s.StatusCode != tt.status || s.StatusMessage != "" {
				t.Errorf("name %q kind %v status %v %q", s.Name, s.Kind, s.StatusCode, s.StatusMessage)
			}
			var answers []string
			var rest []string
			for _, kv := range s.Attributes {
				if kv.Key == "dns.answers" {
					answers = kv.Value.AsStringSlice()
					continue
				}
				rest = append(rest, string(kv.Key)+"="+kv.Value.String())
			}
			if !slices.Equal(rest, tt.want) {
				t.Errorf("attributes\n got %q\nwant %q", rest, tt.want)
			}
			if !slices.Equal(answers, tt.answers) {
				t.Errorf("dns.answers = %q, want %q", answers, tt.answers)
			}
			if len(s.Attributes) > maxDNSAttrs {
				t.Errorf("%d attributes, preallocated %d", len(s.Attributes), maxDNSAttrs)
			}
			if !s.Start.Equal(epoch.Add(1000)) || !s.End.Equal(epoch.Add(3000)) || s.Process == nil {
				t.Errorf("start %v end %v process %v", s.Start, s.End, s.Process)
			}
		})
	}
}

// TestDNSUnknownPeer: an unconnected socket's remote end (0.0.0.0:0) is
// not reported as the peer.
func TestDNSUnknownPeer(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := dnsExchange(conn.RoleServer, protocols.DNSInfo{Name: "p.test", Type: 1})
	ex.DNS.Peer = netip.AddrPort{}
	ex.Conn.Tuple.Remote = netip.MustParseAddrPort("0.0.0.0:0")
	for _, kv := range addOne(t, c, col, ex).Attributes {
		switch kv.Key {
		case "client.address", "client.port", "network.peer.address", "network.peer.port":
			t.Errorf("%s=%s without a known peer", kv.Key, kv.Value.String())
		}
	}
}

// TestDNSMaximalAttributes: a server span with every attribute fits the
// preallocated slice.
func TestDNSMaximalAttributes(t *testing.T) {
	c, col := newTest(t, Config{})
	d := protocols.DNSInfo{Name: "m.test", Type: 1, RCode: 2, Answers: 1, NAddrs: 1,
		Addrs: [protocols.DNSMaxAddrs]netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	ex := dnsExchange(conn.RoleServer, d)
	ex.Conn.Tuple.Local = dnsServer
	s := addOne(t, c, col, ex)
	if len(s.Attributes) != maxDNSAttrs {
		t.Errorf("%d attributes, want the maximum %d: %q", len(s.Attributes), maxDNSAttrs, attrStrings(s.Attributes))
	}
}
