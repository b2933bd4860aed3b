package correlate

import (
	"net/netip"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Client spans name the service they called in service.peer.name (semconv
// v1.40.0's successor of peer.service, which that version no longer
// defines) when the server end is a process on this host: the service of
// the matched server span, else of the process last seen listening at the
// address called (learned from server spans and accepted connections).
// server.address stays as the client named it.
//
// Addresses are not qualified by network namespace: two containers that
// each listen on their own 127.0.0.1:8080 share one entry. A matched
// server span, which is exact, always wins over the table, and the
// table over Config.PeerNames, asked last, for an address of no process
// weft knows (a Kubernetes Service or pod on another node).

const (
	maxListeners = 4096
	// listenerTTL is how long an address is believed to belong to the
	// process last seen there.
	listenerTTL = int64(10 * time.Minute)
)

// listener is the process last seen accepting at an address.
type listener struct {
	pid  uint32
	comm string
	name string // service name; "" until resolved
	seen int64
}

// PeerNamer names the service behind an IP address weft has seen no
// process listen at. It must answer from memory, at once.
type PeerNamer interface {
	PeerName(ip netip.Addr) string
}

type peerTable struct {
	procs ProcessLookup
	names PeerNamer // nil: none
	m     map[netip.AddrPort]listener
}

func newPeerTable(procs ProcessLookup) peerTable {
	return peerTable{procs: procs, m: make(map[netip.AddrPort]listener)}
}

// learn records that a server span of pid, service name, was at addr.
func (t *peerTable) learn(addr netip.AddrPort, pid uint32, name string, now int64) {
	if !addr.IsValid() || name == "" {
		return
	}
	t.put(addr, listener{pid: pid, name: name, seen: now})
}

// accepted records that pid accepted a connection at addr; its service
// name is resolved when first needed.
func (t *peerTable) accepted(addr netip.AddrPort, pid uint32, comm string, now int64) {
	if !addr.IsValid() {
		return
	}
	if l, ok := t.m[addr]; ok && l.pid == pid {
		l.seen = now
		t.m[addr] = l
		return
	}
	t.put(addr, listener{pid: pid, comm: comm, seen: now})
}

func (t *peerTable) put(addr netip.AddrPort, l listener) {
	if _, ok := t.m[addr]; !ok && len(t.m) >= maxListeners {
		for k := range t.m { // any one: the map is a cache
			delete(t.m, k)
			break
		}
	}
	t.m[addr] = l
}

// lookup returns the service listening at addr, or "".
func (t *peerTable) lookup(addr netip.AddrPort, now int64) string {
	l, ok := t.m[addr]
	if !ok || now-l.seen > listenerTTL {
		return ""
	}
	if l.name == "" && t.procs != nil {
		if p := t.procs.Lookup(l.pid, l.comm); p != nil {
			l.name = p.ServiceName
			t.m[addr] = l
		}
	}
	return l.name
}

// addPeerService sets service.peer.name on client span n when its server
// is known to be on this host, once: when its tree is emitted or when it
// expires, whichever comes first (no partner can come after either).
func (j *joiner) addPeerService(n *node) {
	if n.peerDone {
		return
	}
	n.peerDone = true
	name := ""
	if n.partner != nil {
		name = serviceName(&n.partner.span)
	}
	if name == "" {
		name = j.peers.lookup(n.remote, j.now)
	}
	if name == "" && j.peers.names != nil {
		name = j.peers.names.PeerName(n.remote.Addr())
	}
	if name != "" {
		n.span.Attributes = append(n.span.Attributes, semconv.ServicePeerName(name))
	}
}
