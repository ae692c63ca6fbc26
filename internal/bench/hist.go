// Package bench holds the workloads tasbench and tasctl run: the echo RPC
// protocol of TAS's micro_rpc benchmark, an HTTP server, and a bulk stream,
// each over any stack that gives net.Conn and net.Listener.
package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets: 2^subBits buckets per
// power of two, so any value is kept within 1/2^subBits (here 1.6%) of its
// true value, in fixed memory and without allocation per sample.
type Histogram struct {
	counts [64 << subBits]uint64
	n      uint64
	sum    float64
	max    uint64
}

const subBits = 6

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	exp := bits.Len64(v) - 1 - subBits
	return (exp+1)<<subBits | int(v>>uint(exp))&(1<<subBits-1)
}

// lowerBound is the smallest value that falls into bucket b.
func lowerBound(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	exp := b>>subBits - 1
	return (uint64(1)<<subBits | uint64(b&(1<<subBits-1))) << uint(exp)
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the average latency.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the latency below which a fraction q of samples fall,
// as the midpoint of its bucket (exact for values under 64 ns).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := lowerBound(b)
			hi := lowerBound(b + 1)
			v := lo + (hi-lo-1)/2
			return time.Duration(min(v, h.max))
		}
	}
	return time.Duration(h.max)
}
