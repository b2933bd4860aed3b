package servicemap

import "time"

// latencyBounds are the upper bounds of the latency histogram's buckets,
// 1-2-5 steps from 0.1 ms to 60 s; one more bucket takes the rest.
// Quantiles are interpolated inside a bucket and clamped to the smallest
// and largest latency seen, so they are exact when a slice's requests all
// took about the same time, and otherwise off by at most a bucket's width.
var latencyBounds = [...]time.Duration{
	100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second,
	10 * time.Second, 20 * time.Second, 60 * time.Second,
}

const numLatencyBuckets = len(latencyBounds) + 1

// slice counts one edge's requests during one slice of the window.
type slice struct {
	epoch    int64 // which slice of time: arrival / slice width
	requests uint32
	errors   uint32
	min, max time.Duration
	hist     [numLatencyBuckets]uint32
}

func (s *slice) add(fail bool, d time.Duration) {
	d = max(d, 0)
	if s.requests == 0 || d < s.min {
		s.min = d
	}
	s.max = max(s.max, d)
	s.requests++
	if fail {
		s.errors++
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	s.hist[i]++
}

// merge adds o into s.
func (s *slice) merge(o *slice) {
	if o.requests == 0 {
		return
	}
	if s.requests == 0 || o.min < s.min {
		s.min = o.min
	}
	s.max = max(s.max, o.max)
	s.requests += o.requests
	s.errors += o.errors
	for i, n := range o.hist {
		s.hist[i] += n
	}
}

// quantile estimates the q-quantile (0 < q <= 1) of the latencies in s,
// as histogram_quantile does: the bucket holding the q*requests-th
// request, linearly interpolated, its ends clamped to min and max.
func (s *slice) quantile(q float64) time.Duration {
	if s.requests == 0 {
		return 0
	}
	rank := q * float64(s.requests)
	var below uint32
	for i, n := range s.hist {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		lo, hi := time.Duration(0), s.max
		if i > 0 {
			lo = latencyBounds[i-1]
		}
		if i < len(latencyBounds) {
			hi = min(hi, latencyBounds[i])
		}
		lo = max(lo, s.min)
		frac := (rank - float64(below)) / float64(n)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return s.max
}

// window is an edge's counts over the last Window: a ring of slices
// indexed by epoch, each reset when its epoch comes round again.
type window []slice

// add counts a request that arrived in epoch, when cur is the newest
// epoch; one older than the window is not counted.
func (w window) add(epoch, cur int64, fail bool, d time.Duration) {
	if epoch <= cur-int64(len(w)) {
		return
	}
	s := &w[epoch%int64(len(w))]
	if s.epoch != epoch {
		*s = slice{epoch: epoch}
	}
	s.add(fail, d)
}

// sum merges the slices still inside the window ending at epoch cur.
func (w window) sum(cur int64) slice {
	var t slice
	for i := range w {
		if s := &w[i]; s.epoch > cur-int64(len(w)) && s.epoch <= cur {
			t.merge(s)
		}
	}
	return t
}
