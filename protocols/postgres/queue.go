package postgres

import "github.com/weftrace/weft/conn"

// opKind is what a pending client message waits for.
type opKind uint8

const (
	opStartup  opKind = iota // the startup packet: answered by the first ReadyForQuery
	opQuery                  // simple query: answered up to ReadyForQuery
	opParse                  // ParseComplete
	opBind                   // BindComplete
	opDescribe               // (ParameterDescription,) RowDescription or NoData
	opExecute                // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
	opClose                  // CloseComplete
	opSync                   // ReadyForQuery
	opFunction               // FunctionCall: FunctionCallResponse, then ReadyForQuery
	opGap                    // client messages lost with uncaptured bytes: answers up to a ReadyForQuery
)

// endsGroup says whether ReadyForQuery answers this kind: the end of a
// group of answers, where the two sides are known to be in step.
func (k opKind) endsGroup() bool {
	switch k {
	case opStartup, opQuery, opSync, opFunction, opGap:
		return true
	}
	return false
}

// op is one client message waiting for the server's answer.
type op struct {
	kind  opKind
	st    stmt
	start int64  // when its first byte (or its run's first byte) moved
	seq   uint32 // TCP sequence number of that byte
	tid   uint32
	cause conn.Cause
}

// queue is a bounded FIFO ring of ops.
type queue struct {
	buf  []op
	head int
	n    int
}

// push appends o; it reports false, and does nothing, when max ops
// already wait.
func (q *queue) push(o op, max int) bool {
	if q.n >= max {
		return false
	}
	if q.n == len(q.buf) {
		nb := make([]op, min(max, len(q.buf)*2+4))
		for i := range q.n {
			nb[i] = *q.at(i)
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = o
	q.n++
	return true
}

func (q *queue) pop() op {
	o := q.buf[q.head]
	q.buf[q.head] = op{} // let the strings go
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return o
}

// front returns the oldest op, or nil.
func (q *queue) front() *op {
	if q.n == 0 {
		return nil
	}
	return &q.buf[q.head]
}

func (q *queue) at(i int) *op { return &q.buf[(q.head+i)%len(q.buf)] }

// clear drops every op and returns how many there were.
func (q *queue) clear() int {
	n := q.n
	for q.n > 0 {
		q.pop()
	}
	return n
}
