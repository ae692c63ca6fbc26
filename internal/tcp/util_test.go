package tcp

// rng is a small deterministic xorshift generator so tests do not depend on
// math/rand's stream across Go versions.
type rng struct{ s uint64 }

func newRand(seed uint64) *rng { return &rng{s: seed*0x9e3779b97f4a7c15 + 1} }

func (r *rng) Uint64() uint64 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return r.s
}

func (r *rng) Uint32() uint32 { return uint32(r.Uint64() >> 32) }

// Intn returns a value in [0, n).
func (r *rng) Intn(n int) int { return int(r.Uint64() % uint64(n)) }
