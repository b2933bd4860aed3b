package http1

// queue is a bounded FIFO ring of requests waiting for their response.
type queue struct {
	buf  []request
	head int
	n    int
}

// push appends r, dropping the oldest when max are already waiting; it
// reports whether it dropped one.
func (q *queue) push(r request, max int) (dropped bool) {
	if q.n >= max {
		q.pop()
		dropped = true
	}
	if q.n == len(q.buf) {
		nb := make([]request, min(max, len(q.buf)*2+2))
		for i := range q.n {
			nb[i] = *q.at(i)
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = r
	q.n++
	return dropped
}

func (q *queue) pop() request {
	r := q.buf[q.head]
	q.buf[q.head] = request{} // let the strings go
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return r
}

func (q *queue) at(i int) *request { return &q.buf[(q.head+i)%len(q.buf)] }
