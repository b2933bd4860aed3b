package correlate

import (
	"testing"

	"github.com/weftrace/weft/conn"
)

func taskCause(task uint64) conn.Cause { return conn.Cause{Kind: conn.CauseTask, Task: task} }

// An asyncio front with two requests in flight on one thread: each task's
// two sequential calls are nested under the request whose response the
// same task wrote, though both requests contain all four calls in time.
func TestTaskNestsOverlappingRequests(t *testing.T) {
	c, col := newJoinTest(t)
	a := dial(curl, 43001, front, "127.0.0.1:8080")
	b := dial(curl, 43002, front, "127.0.0.1:8080")
	out1 := dial(front, 43003, back, "127.0.0.1:9000")
	out2 := dial(front, 43004, back, "127.0.0.1:9000")
	a1 := out1.cli(10, "/back/a1", side{start: 2, end: 3, reqTID: 7, respTID: 7})
	a1.RequestCause = taskCause(0xa)
	b1 := out2.cli(20, "/back/b1", side{start: 2.5, end: 3.5, reqTID: 7, respTID: 7})
	b1.RequestCause = taskCause(0xb)
	a2 := out1.cli(30, "/back/a2", side{start: 4, end: 5, reqTID: 7, respTID: 7})
	a2.RequestCause = taskCause(0xa)
	b2 := out2.cli(40, "/back/b2", side{start: 4.5, end: 6, reqTID: 7, respTID: 7})
	b2.RequestCause = taskCause(0xb)
	sa := a.srv(1, "/a", side{start: 1, end: 8, reqTID: 7, respTID: 7})
	sa.ResponseCause = taskCause(0xa)
	sb := b.srv(1, "/b", side{start: 1.5, end: 9, reqTID: 7, respTID: 7})
	sb.ResponseCause = taskCause(0xb)
	addAll(c, a1, b1, a2, b2, sa, sb)
	c.FlushAll()
	wantTree(t, col.spans, `
		front server GET /a
		  front client GET /back/a1
		  front client GET /back/a2
		--
		front server GET /b
		  front client GET /back/b1
		  front client GET /back/b2
	`)
	if got := c.joinStats.byCause[causeNested].Load(); got != 4 {
		t.Errorf("nested by task: %d, want 4", got)
	}
}

// A task that answered two requests both containing the call (a pipelined
// connection, a worker task with a backlog) does not decide; neither does
// a task that answered nothing the call falls in.
func TestTaskUndecidedStaysRoot(t *testing.T) {
	for _, tc := range []struct {
		name string
		why  causeOutcome
	}{
		{"two requests", causeAmbiguous},
		{"other task", causeNoExchange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, col := newJoinTest(t)
			in := dial(curl, 44001, front, "127.0.0.1:8080")
			other := dial(curl, 44002, front, "127.0.0.1:8080")
			out := dial(front, 44003, back, "127.0.0.1:9000")
			call := out.cli(10, "/back", side{start: 5, end: 6, reqTID: 7, respTID: 7})
			call.RequestCause = taskCause(0xa)
			s1 := in.srv(1, "/s1", side{start: 1, end: 9, reqTID: 7, respTID: 7})
			s2 := other.srv(1, "/s2", side{start: 2, end: 9.5, reqTID: 7, respTID: 7})
			s1.ResponseCause = taskCause(0xb)
			s2.ResponseCause = taskCause(0xb)
			if tc.why == causeAmbiguous {
				s1.ResponseCause = taskCause(0xa)
				s2.ResponseCause = taskCause(0xa)
			}
			addAll(c, call, s1, s2)
			c.FlushAll()
			for _, s := range col.spans {
				if s.Name == "GET /back" && s.ParentSpanID.IsValid() {
					t.Fatalf("call nested (%v) although the task rule could not decide", s.ParentSpanID)
				}
			}
			if got := c.joinStats.byCause[tc.why].Load(); got != 1 {
				t.Errorf("%v: %d, want 1", tc.why, got)
			}
		})
	}
}
