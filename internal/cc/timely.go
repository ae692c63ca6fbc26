package cc

// TAS's TIMELY defaults (tas/config.c, tas/slow/cc.c; cc.md 2.2 and 2.3).
// The paper (SIGCOMM'15) uses larger thresholds; TAS's suit a single
// rack.
const (
	timelyTLowUs  = 30         // T_low: below it, always increase
	timelyTHighUs = 150        // T_high: above it, decrease by the RTT excess
	timelyStepBps = 10_000_000 // δ, the additive step
	timelyInitBps = 10_000_000
	timelyAlpha   = 0.02 // EWMA weight of a new RTT difference
	timelyBeta    = 0.8  // multiplicative decrease factor
	timelyMinRTT  = 11   // µs: the gradient's normalization
	timelyMinBps  = 10_000_000
	// timelyHAI: after this many consecutive increases the step is
	// multiplied by it (hyperactive increase, paper 4.3: N = 5).
	timelyHAI = 5
)

// Timely is TIMELY in TAS's form: slow start doubles the rate until the
// RTT passes the middle of [T_low, T_high]; after it the rate is first
// capped at 1.2x the measured rate, then below T_low it grows by δ, above
// T_high it shrinks by β(1−T_high/RTT), and between them the smoothed RTT
// gradient decides: grow by δ (5δ from the fifth such increase in a row)
// when it is not positive, shrink by β·gradient otherwise. One update
// never takes more than half the rate, and the rate stays above 10 Mbit/s.
type Timely struct {
	rate, step       float64
	tLow, tHigh      float64 // µs
	prevRTT, rttDiff float64 // µs
	slowStart        bool
	incs             int // consecutive gradient-driven increases
	act              actual
	interval         int
}

func newTimely(p Params) Controller {
	return &Timely{rate: float64(or(p.InitBps, timelyInitBps)), step: float64(or(p.StepBps, timelyStepBps)),
		tLow: float64(p.TLow) / 1e3, tHigh: float64(p.THigh) / 1e3, slowStart: true, interval: p.interval(DefaultInterval)}
}

// Update implements Controller.
func (t *Timely) Update(s *Sample) uint32 {
	act := t.act.cap(rateOf(s.Acked, s.Elapsed))
	if s.RTT == 0 {
		return kbps(t.rate) // nothing measured yet
	}
	rtt := float64(s.RTT)
	if t.slowStart && rtt > (t.tLow+t.tHigh)/2 {
		t.slowStart = false
	}
	if !t.slowStart {
		t.rate = min(t.rate, act)
	}
	if t.prevRTT != 0 {
		t.rttDiff = (1-timelyAlpha)*t.rttDiff + timelyAlpha*(rtt-t.prevRTT)
	}
	t.prevRTT = rtt
	old := t.rate
	if t.slowStart {
		t.rate *= 2
	} else {
		t.rate = t.next(rtt)
	}
	t.rate = max(t.rate, old/2, timelyMinBps)
	return kbps(t.rate)
}

// next is TIMELY's rate computation (paper Algorithm 1) after slow start.
func (t *Timely) next(rtt float64) float64 {
	grad := t.rttDiff / timelyMinRTT
	switch {
	case rtt < t.tLow:
		t.incs = 0 // as TAS: HAI counts gradient-driven increases only
		return t.rate + t.step
	case rtt > t.tHigh:
		t.incs = 0
		return t.rate * (1 - timelyBeta*(1-t.tHigh/rtt))
	case grad <= 0:
		t.incs++
		if t.incs >= timelyHAI {
			t.incs-- // stay hyperactive while the gradient stays down
			return t.rate + timelyHAI*t.step
		}
		return t.rate + t.step
	default:
		t.incs = 0
		return t.rate * (1 - timelyBeta*grad)
	}
}

// Interval implements Controller.
func (t *Timely) Interval() int { return t.interval }
