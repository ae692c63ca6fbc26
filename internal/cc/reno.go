package cc

// Reno leaves congestion control to the fast path's NewReno-like window
// (RFC 5681 slow start and congestion avoidance, halving on loss or ECE):
// it sets no rate, so the pacer stays off.
type Reno struct{}

func newReno(Params) Controller { return Reno{} }

// Update implements Controller: always 0 (no rate limit).
func (Reno) Update(*Sample) uint32 { return 0 }

// Interval implements Controller; Reno never changes anything, so the
// slow path need not visit it often.
func (Reno) Interval() int { return DefaultInterval }
