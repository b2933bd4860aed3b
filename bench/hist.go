package bench

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is known within 1/128
// (0.8%) — fine enough to tell a 5% rise in p99.
const subBits = 7

const subCount = 1 << subBits

// Histogram counts latencies in log-linear buckets (the HDR histogram's
// layout, without its dependency): bounded memory whatever is recorded,
// mergeable, and exact below 128 ns. The zero value is ready to use.
type Histogram struct {
	counts [64 * subCount]uint64
	n      uint64
	max    int64
}

// bucketOf returns the bucket of v (v >= 0).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	return e*subCount + int(v>>uint(e-1)) - subCount
}

// bucketRange returns the smallest and largest value bucket b holds.
func bucketRange(b int) (lo, hi uint64) {
	if b < subCount {
		return uint64(b), uint64(b)
	}
	e := b / subCount
	m := uint64(b%subCount + subCount)
	lo = m << uint(e-1)
	return lo, lo + (1 << uint(e-1)) - 1
}

// Record counts one latency; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(uint64(v))]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Count is how many latencies were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Quantile returns the latency below which a fraction q (0..1) of the
// recorded ones lie: the middle of the bucket holding the ceil(q*n)th
// smallest, never above the largest recorded. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(b)
			return min(time.Duration(lo+(hi-lo)/2), time.Duration(h.max))
		}
	}
	return time.Duration(h.max)
}

// histJSON is a histogram on the wire between weftbench's processes: the
// non-empty buckets only.
type histJSON struct {
	Buckets [][2]uint64 `json:"buckets"` // bucket index, count
	Max     int64       `json:"max_ns"`
}

// MarshalJSON writes the non-empty buckets.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := histJSON{Max: h.max, Buckets: [][2]uint64{}}
	for b, c := range h.counts {
		if c > 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(b), c})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote; a bucket out of range is an
// error.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w histJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Histogram{max: w.Max}
	for _, bc := range w.Buckets {
		if bc[0] >= uint64(len(h.counts)) {
			return fmt.Errorf("histogram bucket %d out of range", bc[0])
		}
		h.counts[bc[0]] += bc[1]
		h.n += bc[1]
	}
	return nil
}
