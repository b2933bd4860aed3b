package bench

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	prevHi := uint64(0)
	for b := 0; b < 64*subCount; b++ {
		lo, hi := bucketRange(b)
		if b > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", b, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d]", b, lo, hi)
		}
		if bucketOf(lo) != b || bucketOf(hi) != b {
			t.Fatalf("bucket %d: bucketOf(%d)=%d bucketOf(%d)=%d", b, lo, bucketOf(lo), hi, bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d: [%d, %d] wider than 1/%d", b, lo, hi, subCount)
		}
		prevHi = hi
		if hi == math.MaxUint64 || lo > math.MaxInt64 {
			break
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram: want 0")
	}
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 1.0/subCount {
			t.Errorf("q%.3f = %v, want %v within 1/%d", c.q, got, c.want, subCount)
		}
	}
	if h.Quantile(1) > h.Max() {
		t.Errorf("q1 %v above max %v", h.Quantile(1), h.Max())
	}
	if h.Count() != 10000 {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{3, 3, 7, 100, -5} {
		h.Record(v)
	}
	// sorted: 0 (the negative one), 3, 3, 7, 100
	for q, want := range map[float64]time.Duration{0.2: 0, 0.4: 3, 0.6: 3, 0.8: 7, 1: 100} {
		if got := h.Quantile(q); got != want {
			t.Errorf("q%.1f = %v, want %v", q, got, want)
		}
	}
}

func TestHistogramMergeAndJSON(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i+1000) * time.Millisecond)
	}
	a.Merge(&b)
	if a.Count() != 2000 || a.Max() != 1999*time.Millisecond {
		t.Fatalf("merged: count %d max %v", a.Count(), a.Max())
	}
	js, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var c Histogram
	if err := json.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	if c.Count() != a.Count() || c.Max() != a.Max() || c.Quantile(0.5) != a.Quantile(0.5) || c.Quantile(0.99) != a.Quantile(0.99) {
		t.Errorf("after JSON: count %d max %v p50 %v p99 %v; want %d %v %v %v", c.Count(), c.Max(), c.Quantile(0.5), c.Quantile(0.99),
			a.Count(), a.Max(), a.Quantile(0.5), a.Quantile(0.99))
	}
	if err := json.Unmarshal([]byte(`{"buckets":[[99999999,1]]}`), &c); err == nil {
		t.Error("a bucket out of range: want an error")
	}
}
