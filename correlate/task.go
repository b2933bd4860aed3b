package correlate

import "github.com/weftrace/weft/conn"

// The task rule, for event-loop runtimes whose unit of work the kernel can
// name (CPython asyncio: conn.CauseTask, the running coroutine). The
// kernel marks each write of such a process with the task that made it:
// a call's request, and the response of a request the process served. A
// task works on one thing at a time, so the call belongs to the request
// whose response the same task wrote and which contains the call. The rule
// decides only when exactly one such request contains the call: a task
// that serves several requests at once (pipelining, a worker task fed by
// a queue whose requests overlap) leaves the span a root.

// taskRef names a task of a process.
type taskRef struct {
	pid  uint32
	task uint64
}

// indexTask makes server span n findable by the task that answered it.
func (j *joiner) indexTask(n *node, c conn.Cause) {
	if c.Kind != conn.CauseTask || c.Task == 0 {
		return
	}
	n.task = c.Task
	k := taskRef{pid: n.pid, task: n.task}
	j.byTask[k] = append(j.byTask[k], n)
}

// unindexTask removes an expiring n; a task's requests expire in order.
func (j *joiner) unindexTask(n *node) {
	if n.task == 0 {
		return
	}
	k := taskRef{pid: n.pid, task: n.task}
	list := j.byTask[k]
	for i, m := range list {
		if m == n {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(j.byTask, k)
		return
	}
	j.byTask[k] = list
}

// taskParent finds the request that client span c's task was serving.
func (j *joiner) taskParent(c *node) (*node, causeOutcome) {
	var hit *node
	for _, n := range j.byTask[taskRef{pid: c.pid, task: c.cause.Task}] {
		if n == c || n == c.partner || !contains(n, c) {
			continue
		}
		if hit != nil {
			return nil, causeAmbiguous
		}
		hit = n
	}
	if hit == nil {
		return nil, causeNoExchange
	}
	return hit, causeNested
}
