package flowgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Goodput is the payload share of a full frame: 1448 of 1514 bytes
// (1500-byte MTU, TCP timestamps, Ethernet header).
const Goodput = 1448.0 / 1514

// Arrival is one generated flow.
type Arrival struct {
	Start  time.Duration
	Size   int64
	Sender int
}

// Generate draws n flows: sizes from c, Poisson arrivals whose offered
// payload is load times what a link of linkBps carries (λ = load·b·η /
// (8·E[S]), η the goodput share), each from a sender chosen uniformly.
func Generate(c *CDF, load float64, linkBps uint64, n, senders int, seed int64) []Arrival {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x666c6f7767656e)) // "flowgen"
	lambda := load * float64(linkBps) * Goodput / (8 * c.Mean())
	out := make([]Arrival, n)
	var t float64
	for i := range out {
		t += -math.Log(1-rng.Float64()) / lambda
		out[i] = Arrival{Start: time.Duration(t * 1e9), Size: c.Quantile(rng.Float64()), Sender: rng.IntN(senders)}
	}
	return out
}

// Bucket bounds (bytes): flows up to 10 KB, 100 KB (the "short" flows of
// the PowerTCP paper), 1 MB, and larger.
var Buckets = []int64{10_000, 100_000, 1_000_000, math.MaxInt64}

// BucketStats are the slowdowns of one size bucket.
type BucketStats struct {
	MaxSize int64   `json:"max_size"`
	Flows   int     `json:"flows"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p999"`
}

// ByBucket groups slowdowns by flow size; sizes and slowdowns are in the
// same order.
func ByBucket(sizes []int64, slow []float64) []BucketStats {
	groups := make([][]float64, len(Buckets))
	for i, s := range sizes {
		b, _ := slices.BinarySearch(Buckets, s)
		groups[min(b, len(Buckets)-1)] = append(groups[min(b, len(Buckets)-1)], slow[i])
	}
	var out []BucketStats
	for i, g := range groups {
		if len(g) == 0 {
			continue
		}
		slices.Sort(g)
		out = append(out, BucketStats{MaxSize: Buckets[i], Flows: len(g), P50: pct(g, 0.5), P99: pct(g, 0.99), P999: pct(g, 0.999)})
	}
	return out
}

// pct is the q-quantile of sorted x (nearest rank).
func pct(x []float64, q float64) float64 {
	return x[min(int(math.Ceil(q*float64(len(x))))-1, len(x)-1)]
}
