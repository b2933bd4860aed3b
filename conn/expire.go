package conn

// Expirer is a Handler with timers of its own: a DNS query waiting for an
// answer that may never come ends as a timeout even if its socket stays
// quiet. ExpireHandlers calls it periodically.
type Expirer interface {
	Expire(now int64)
}

// ExpireHandlers lets every connection's Handler that is an Expirer run
// its timers at now (monotonic ns). Call it periodically from the reader's
// goroutine, like EvictIdle; it walks every connection, so about once a
// second.
func (t *Table) ExpireHandlers(now int64) {
	for e := t.lru.head; e != nil; e = e.lruNext {
		if x, ok := e.h.(Expirer); ok {
			x.Expire(now)
		}
	}
}
