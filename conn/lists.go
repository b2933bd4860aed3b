package conn

// The table keeps three intrusive lists, so that moving a connection to the
// front, ending every connection of a pid and finding the oldest held gap
// cost a few pointer writes and never allocate.

// lruList orders connections by their last event, most recent first.
type lruList struct{ head, tail *entry }

func (l *lruList) pushFront(e *entry) {
	e.lruPrev, e.lruNext = nil, l.head
	if l.head != nil {
		l.head.lruPrev = e
	} else {
		l.tail = e
	}
	l.head = e
}

func (l *lruList) remove(e *entry) {
	if e.lruPrev != nil {
		e.lruPrev.lruNext = e.lruNext
	} else {
		l.head = e.lruNext
	}
	if e.lruNext != nil {
		e.lruNext.lruPrev = e.lruPrev
	} else {
		l.tail = e.lruPrev
	}
	e.lruPrev, e.lruNext = nil, nil
}

// moveToFront is the hot-path touch: nothing to do for the busiest connection.
func (l *lruList) moveToFront(e *entry) {
	if l.head == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

// pidAdd links e into its process's list, whose head lives in pids.
func pidAdd(pids map[uint32]*entry, e *entry) {
	head := pids[e.info.ID.PID]
	e.pidPrev, e.pidNext = nil, head
	if head != nil {
		head.pidPrev = e
	}
	pids[e.info.ID.PID] = e
}

func pidRemove(pids map[uint32]*entry, e *entry) {
	if e.pidPrev != nil {
		e.pidPrev.pidNext = e.pidNext
	} else if e.pidNext != nil {
		pids[e.info.ID.PID] = e.pidNext
	} else {
		delete(pids, e.info.ID.PID)
	}
	if e.pidNext != nil {
		e.pidNext.pidPrev = e.pidPrev
	}
	e.pidPrev, e.pidNext = nil, nil
}

// pendList holds the streams that hold data ahead of a gap, ordered by how
// long their oldest gap has waited (heldSince), oldest first: the reorder
// window and the table-wide byte limit both give up the head first.
type pendList struct{ head, tail *stream }

// insert places s by heldSince, searching from the tail because a new hold
// is almost always the youngest.
func (l *pendList) insert(s *stream) {
	at := l.tail
	for at != nil && at.heldSince > s.heldSince {
		at = at.pendPrev
	}
	s.pending = true
	s.pendPrev = at
	if at == nil {
		s.pendNext = l.head
		l.head = s
	} else {
		s.pendNext = at.pendNext
		at.pendNext = s
	}
	if s.pendNext != nil {
		s.pendNext.pendPrev = s
	} else {
		l.tail = s
	}
}

func (l *pendList) remove(s *stream) {
	if !s.pending {
		return
	}
	if s.pendPrev != nil {
		s.pendPrev.pendNext = s.pendNext
	} else {
		l.head = s.pendNext
	}
	if s.pendNext != nil {
		s.pendNext.pendPrev = s.pendPrev
	} else {
		l.tail = s.pendPrev
	}
	s.pendPrev, s.pendNext, s.pending = nil, nil, false
}
