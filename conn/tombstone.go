package conn

// tombstoneCap is how many ended connections are remembered. Late events
// trail a close by at most a few ring-buffer slots, so a short memory is
// enough.
const tombstoneCap = 1024

// tombstones remembers connections that ended for good (closed, process
// exited, fd reused), so a data event that raced its connection's close
// is dropped instead of bringing the connection back as a new, unknown
// one. Connections evicted for idleness or room are not remembered: they
// are still alive in the kernel and may rightly come back.
type tombstones struct {
	set  map[ID]struct{}
	ring [tombstoneCap]ID
	next int
	full bool
}

func (ts *tombstones) add(id ID) {
	if ts.set == nil {
		ts.set = make(map[ID]struct{})
	}
	if ts.full {
		delete(ts.set, ts.ring[ts.next])
	}
	ts.ring[ts.next] = id
	ts.set[id] = struct{}{}
	ts.next++
	if ts.next == tombstoneCap {
		ts.next, ts.full = 0, true
	}
}

func (ts *tombstones) has(id ID) bool {
	_, ok := ts.set[id]
	return ok
}
