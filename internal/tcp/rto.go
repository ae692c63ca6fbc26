package tcp

// RFC 6298 retransmission-timer defaults, in microseconds.
const (
	// DefaultRTOMin is 200 ms, Linux's TCP_RTO_MIN, instead of RFC 6298's
	// 1 s (rule 2.4, a SHOULD). Datacenter RTTs are tens of microseconds,
	// so a 1 s floor turns every tail loss into a second of idle time;
	// 200 ms is still far above any RTT the fast path sees and keeps
	// spurious timeouts rare against delayed-ACK peers. Lower it (e.g. to
	// a few ms) only where every peer ACKs immediately, as TAS does.
	DefaultRTOMin = 200_000
	// DefaultRTOMax is 60 s, the minimum upper bound RFC 6298 (2.5) allows.
	DefaultRTOMax = 60_000_000
	// DefaultRTOInitial is RFC 6298's 1 s initial RTO (2.1), used until the
	// first sample.
	DefaultRTOInitial = 1_000_000
	// DefaultClockGranularity is G in RTO = SRTT + max(G, 4*RTTVAR). It
	// should be the tick of the timer that fires retransmissions; 1 ms
	// matches a slow path that scans its timers every millisecond.
	DefaultClockGranularity = 1_000
)

// maxRTTSample caps samples so that 8*R fits comfortably in uint32 state.
const maxRTTSample = 1 << 28 // µs, ~268 s

// RTOEstimator computes the RFC 6298 retransmission timeout from RTT
// samples given in microseconds. SRTT and RTTVAR are kept in 1/8 µs fixed
// point, so the 1/8 and 1/4 EWMA gains lose less than 1/8 µs per step.
//
// Karn's algorithm (RFC 6298 section 3) is the caller's job: do not pass a
// sample measured on a retransmitted segment unless it comes from the
// timestamp echo of a segment sent after the retransmission (RFC 7323
// section 4), which is unambiguous. With one timestamp sample per ACK,
// RFC 7323 appendix G suggests scaling the gains by the number of samples
// per RTT; this estimator uses RFC 6298's fixed 1/8 and 1/4, so feed it one
// sample per RTT (or per window) if that matters.
//
// RFC 6298 5.7 (reset to 3 s when the SYN or SYN-ACK was lost) is left to
// the caller: set Initial and call Reset.
type RTOEstimator struct {
	Min         uint32 // lower bound on the RTO (µs)
	Max         uint32 // upper bound on the RTO and its backoff (µs)
	Initial     uint32 // RTO before the first sample (µs)
	Granularity uint32 // clock granularity G (µs)

	srtt8   uint32 // SRTT in 1/8 µs
	rttvar8 uint32 // RTTVAR in 1/8 µs
	rto     uint32 // current RTO including backoff (µs)
	backoff uint8  // number of Backoff calls since the last sample
	valid   bool   // a sample has been taken
}

// NewRTOEstimator returns an estimator with the default bounds and no
// samples; its timeout is DefaultRTOInitial.
func NewRTOEstimator() RTOEstimator {
	return RTOEstimator{Min: DefaultRTOMin, Max: DefaultRTOMax, Initial: DefaultRTOInitial,
		Granularity: DefaultClockGranularity, rto: DefaultRTOInitial}
}

// Reset forgets all samples and backoff; the timeout becomes Initial
// (clamped to [Min, Max]).
func (e *RTOEstimator) Reset() {
	e.srtt8, e.rttvar8, e.backoff, e.valid = 0, 0, 0, false
	e.rto = e.clamp(uint64(e.Initial))
}

func (e *RTOEstimator) clamp(v uint64) uint32 {
	if v < uint64(e.Min) {
		v = uint64(e.Min)
	}
	if v > uint64(e.Max) {
		v = uint64(e.Max)
	}
	return uint32(v)
}

// Sample feeds one RTT measurement (µs) and recomputes the RTO (RFC 6298
// 2.2 for the first sample, 2.3 afterwards), which also cancels any
// backoff (5.7's "new RTT measurement" case). Samples above ~268 s are
// clamped. A zero sample is valid (sub-microsecond RTT).
func (e *RTOEstimator) Sample(rttUs uint32) {
	r := uint64(min(rttUs, maxRTTSample))
	r8 := r * 8
	if !e.valid {
		e.srtt8 = uint32(r8)       // SRTT = R
		e.rttvar8 = uint32(r8 / 2) // RTTVAR = R/2
		e.valid = true
	} else {
		s := uint64(e.srtt8)
		var d uint64 // |SRTT - R'|
		if s > r8 {
			d = s - r8
		} else {
			d = r8 - s
		}
		// RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'| uses the old SRTT.
		e.rttvar8 = uint32((3*uint64(e.rttvar8) + d) / 4)
		// SRTT = 7/8 SRTT + 1/8 R'
		e.srtt8 = uint32((7*s + r8) / 8)
	}
	e.backoff = 0
	e.rto = e.clamp(e.compute())
}

// compute returns SRTT + max(G, K*RTTVAR) with K = 4, rounded up to µs.
func (e *RTOEstimator) compute() uint64 {
	v := 4 * uint64(e.rttvar8)
	if g := 8 * uint64(e.Granularity); g > v {
		v = g
	}
	return (uint64(e.srtt8) + v + 7) / 8
}

// Backoff doubles the RTO after a retransmission timeout (RFC 6298 5.5),
// up to Max, and returns the new value. The count is reported by Backoffs
// so the caller can give up on the connection (RFC 1122 R2).
func (e *RTOEstimator) Backoff() uint32 {
	e.rto = e.clamp(2 * uint64(e.rto))
	if e.backoff < 255 {
		e.backoff++
	}
	return e.rto
}

// Timeout returns the current RTO in µs, including backoff.
func (e *RTOEstimator) Timeout() uint32 { return e.rto }

// SRTT returns the smoothed RTT in µs (rounded down); 0 before a sample.
func (e *RTOEstimator) SRTT() uint32 { return e.srtt8 / 8 }

// RTTVar returns the RTT variation in µs (rounded down).
func (e *RTOEstimator) RTTVar() uint32 { return e.rttvar8 / 8 }

// HasSample reports whether at least one RTT sample has been taken.
func (e *RTOEstimator) HasSample() bool { return e.valid }

// Backoffs returns the number of Backoff calls since the last sample.
func (e *RTOEstimator) Backoffs() int { return int(e.backoff) }
