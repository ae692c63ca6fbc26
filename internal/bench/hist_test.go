package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinBucketError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var vals []time.Duration
	for i := 0; i < 100000; i++ {
		v := time.Duration(r.ExpFloat64() * 50e3) // ~50 µs mean
		h.Record(v)
		vals = append(vals, v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.02 || diff < -0.02 {
			t.Errorf("p%v = %v, exact %v (%.1f%% off)", q*100, got, exact, diff*100)
		}
	}
	if h.Count() != 100000 {
		t.Fatalf("count %d", h.Count())
	}
	if m := h.Mean(); m < 45e3 || m > 55e3 {
		t.Fatalf("mean %v, want about 50µs", m)
	}
}

func TestHistogramSmallValuesExactAndMerge(t *testing.T) {
	var a, b Histogram
	for v := 0; v < 64; v++ {
		a.Record(time.Duration(v))
	}
	b.Record(10 * time.Second)
	a.Merge(&b)
	if a.Count() != 65 {
		t.Fatalf("count %d", a.Count())
	}
	if q := a.Quantile(0.5); q != 32 {
		t.Fatalf("median of 0..63 and 10s = %v, want 32ns", q)
	}
	if q := a.Quantile(1); q < 9800*time.Millisecond || q > 10*time.Second {
		t.Fatalf("max quantile %v", q)
	}
	for b := 0; b < 58<<subBits-1; b++ { // 58<<subBits buckets cover all of uint64
		if lowerBound(b+1) <= lowerBound(b) || bucketOf(lowerBound(b)) != b {
			t.Fatalf("bucket %d: bounds not monotonic or not inverse", b)
		}
	}
}
