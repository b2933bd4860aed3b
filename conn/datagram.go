package conn

import "net/netip"

// Datagram feeds one UDP datagram of length bytes, of which data is the
// captured prefix, sent to (Egress) or received from (Ingress) peer.
// Datagrams keep their boundaries: each is delivered at once as one Segment
// with Datagram set, never reassembled or reordered, since a lost datagram
// leaves nothing to wait for. Bytes past the capture limit follow as a Skip
// segment of the same datagram.
func (t *Table) Datagram(id ID, dir Direction, length uint32, data []byte, start, end int64, tid uint32, peer netip.AddrPort) {
	t.DatagramCaused(id, dir, length, data, start, end, tid, peer, Cause{})
}

// DatagramCaused is Datagram for a datagram whose send the kernel
// attributed to an earlier read (Segment.Cause).
func (t *Table) DatagramCaused(id ID, dir Direction, length uint32, data []byte, start, end int64, tid uint32, peer netip.AddrPort, cause Cause) {
	if uint64(len(data)) > uint64(length) {
		data = data[:length]
	}
	if length == 0 || dir > Ingress {
		return
	}
	t.tick(end)
	e := t.lookup(id, tid, start)
	if e == nil {
		return
	}
	if end > e.lastActive {
		e.lastActive = end
	}
	t.lru.moveToFront(e)
	s := &e.streams[dir]
	if len(data) > 0 {
		t.seg = Segment{Dir: dir, Offset: s.next, Data: data, Start: start, End: end, TID: tid, Cause: cause, Datagram: true, Peer: peer}
		s.next += uint64(len(data))
		e.h.Segment(&t.seg)
		t.seg.Data = nil
		t.stats.Segments.Add(1)
		t.stats.BytesDelivered.Add(uint64(len(data)))
	}
	if rest := uint64(length) - uint64(len(data)); rest > 0 {
		t.seg = Segment{Dir: dir, Offset: s.next, Skip: rest, Start: start, End: end, TID: tid, Cause: cause, Datagram: true, Peer: peer}
		s.next += rest
		e.h.Segment(&t.seg)
		t.stats.Segments.Add(1)
		t.stats.BytesSkippedTruncated.Add(rest)
	}
	t.expire()
}
