package dns

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// record is one datagram, TCP read or TCP write of a recording, as the
// server saw it (see testdata/README.md).
type record struct {
	toServer bool
	tcp      bool
	client   netip.AddrPort
	ns       int64
	b        []byte
}

type recording struct {
	server  netip.AddrPort
	records []record
}

func loadRec(t testing.TB, name string) recording {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	var r recording
	line, raw, _ := bytes.Cut(raw, []byte("\n"))
	addr, ok := strings.CutPrefix(string(line), "server ")
	if r.server, err = netip.ParseAddrPort(addr); !ok || err != nil {
		t.Fatalf("%s: bad first line %q", name, line)
	}
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) != 5 || f[0] != ">" && f[0] != "<" || f[1] != "udp" && f[1] != "tcp" {
			t.Fatalf("%s: bad record header %q", name, line)
		}
		client, err1 := netip.ParseAddrPort(f[2])
		ns, err2 := strconv.ParseInt(f[3], 10, 64)
		n, err3 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil || err3 != nil || n+1 > len(rest) || rest[n] != '\n' {
			t.Fatalf("%s: bad record header %q", name, line)
		}
		r.records = append(r.records, record{f[0] == ">", f[1] == "tcp", client, ns, rest[:n]})
		raw = rest[n+1:]
	}
	return r
}

// Synthetic timing: record k's syscall ran from recStart(k) to recEnd(k)
// on thread recTID(k); the recording's own clock places it.
func recStart(r *record) int64 { return 1_000_000_000 + r.ns }
func recEnd(r *record) int64   { return recStart(r) + 500 }
func recTID(k int) uint32      { return 700 + uint32(k) }

// closeAfter is when the fixtures' sockets close: after every timeout.
const closeAfter = 60_000_000_000

// view is one socket of a recording: the server's UDP socket, one
// client's UDP socket, or either end of one TCP connection.
type view struct {
	label  string
	server bool // the server's end
	tcp    bool
	client netip.AddrPort // the client of a TCP connection or UDP socket; invalid: the server's UDP socket
}

// views lists every socket of a recording, each with its role known.
func views(r recording) []view {
	var vs []view
	seen := map[view]bool{}
	add := func(v view) {
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	for _, rc := range r.records {
		if rc.tcp {
			add(view{label: "server-tcp-" + rc.client.String(), server: true, tcp: true, client: rc.client})
		} else {
			add(view{label: "server-udp", server: true})
		}
		add(view{label: "client-" + map[bool]string{true: "tcp", false: "udp"}[rc.tcp] + "-" + rc.client.String(), tcp: rc.tcp, client: rc.client})
	}
	return vs
}

// has says whether record rc moved on v's socket.
func (v view) has(rc *record) bool {
	if rc.tcp != v.tcp {
		return false
	}
	if v.server && !v.tcp {
		return true // the server's one UDP socket talks to every client
	}
	return rc.client == v.client
}

// info is the conn.Info of v's socket; role unknown when known is false.
func (v view) info(r recording, known bool) *conn.Info {
	info := &conn.Info{UDP: !v.tcp}
	switch {
	case v.server && v.tcp:
		info.Tuple = conn.Tuple{Local: r.server, Remote: v.client}
		info.Role = conn.RoleServer
	case v.server:
		info.Tuple = conn.Tuple{Local: r.server}
	default:
		info.Tuple = conn.Tuple{Local: v.client, Remote: r.server}
		info.Role = conn.RoleClient
	}
	if !known {
		info.Role = conn.RoleUnknown
	}
	return info
}

// dir is the direction record rc moved in, seen from v's socket.
func (v view) dir(rc *record) conn.Direction {
	if rc.toServer == v.server {
		return conn.Ingress
	}
	return conn.Egress
}

// peer is the other end of record rc, seen from v's socket.
func (v view) peer(r recording, rc *record) netip.AddrPort {
	if v.server {
		return rc.client
	}
	return r.server
}

// segments turns v's records into segments. cut(k, b) returns how to
// split record k: lengths of consecutive pieces, a negative length being
// that many bytes lost (a Skip). Datagrams are never split: for UDP only
// a cut's first piece is captured and the rest of the datagram skipped.
func (v view) segments(r recording, cut func(k int, b []byte) []int) []conn.Segment {
	var segs []conn.Segment
	var off [2]uint64
	for k := range r.records {
		rc := &r.records[k]
		if !v.has(rc) {
			continue
		}
		d := v.dir(rc)
		base := conn.Segment{Dir: d, Start: recStart(rc), End: recEnd(rc), TID: recTID(k)}
		if !v.tcp {
			base.Datagram, base.Peer = true, v.peer(r, rc)
		}
		b := rc.b
		for i, n := range cut(k, b) {
			s := base
			s.Offset = off[d]
			if n < 0 {
				s.Skip = uint64(-n)
			} else {
				s.Data = b[:n]
			}
			if !v.tcp && i > 0 {
				s.Data, s.Skip = nil, uint64(len(b))
			}
			if v.tcp {
				s.Seq = 0xFFFF_FF00 + uint32(off[d]) // wraps early
			}
			segs = append(segs, s)
			off[d] += s.Len()
			b = b[s.Len():]
			if !v.tcp && i > 0 {
				break
			}
		}
	}
	return segs
}

// run feeds segments to a new parser for info and closes it, returning
// copies of the exchanges it emitted.
func run(info *conn.Info, segs []conn.Segment, opts Options) []protocols.Exchange {
	var got []protocols.Exchange
	p := New(info, func(x *protocols.Exchange) {
		c := *x
		d := *x.DNS
		c.DNS = &d
		got = append(got, c)
	}, opts)
	var last int64
	for i := range segs {
		p.Segment(&segs[i])
		last = max(last, segs[i].End)
	}
	p.Close(last + closeAfter)
	return got
}
