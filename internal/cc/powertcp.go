package cc

import "math"

// PowerTCP constants (NSDI'22 Algorithm 1; inet-tub/powertcp-linux
// powertcp_defs.h; cc.md 1.4).
const (
	// powerGamma is γ, the EWMA weight toward the target: 921/1024 ≈ 0.9
	// in the Linux port, 0.9 in the NS3 artifact.
	powerGamma = 0.9
	// powerBetaDiv: the default β is the host BDP divided by the expected
	// number of flows, 10 (the Linux port's expected_flows).
	powerBetaDiv = 10
	// powerCutoff floors the normalized power (p_norm_cutoff = 0.01 in
	// the Linux port), so one update raises the rate at most ~100x.
	powerCutoff = 0.01
	// powerMinDiv: the rate never falls below the line rate / 1000 (ours;
	// NS3 uses a fixed 100 Mbit/s at 25 Gbit/s, 1/250).
	powerMinDiv = 1000
	// PowerInterval: PowerTCP reacts every RTT (cc.md recommendation 6).
	PowerInterval = 1
)

// power is the control law PowerTCP and θ-PowerTCP share, in the rate
// domain: R ← γ·(R_old/Γs + β/θ) + (1−γ)·R, where Γs is the normalized
// power smoothed over one base RTT and θ the current RTT. It is the
// paper's window law w ← γ·(w_old/Γ + β) + (1−γ)·w (Algorithm 1) divided
// by θ, since a flow with window w sends at w/θ. With θ (not τ, as in
// cc.md 1.6) the equilibrium stays the paper's: ΣR = b and R_i·(1−1/Γ) =
// β/θ with Γ = θ/τ = 1 + q/(bτ) give q = N·β exactly, where β/τ would give
// q = N·β·bτ/(bτ − N·β) and no equilibrium at all once N·β ≥ bτ.
//
// R_old is the rate in force when the measured segment left, about one
// RTT ago: updating once per RTT, that is the rate before the previous
// update. Dividing the current rate instead by a power that reflects the
// older one overshoots: in the simulator 4 flows then swing ±30% around
// b/N with a period of ~10 RTTs (hence Algorithm 1's cwnd_old).
type power struct {
	rate, smooth float64 // bit/s; Γs (1 before any measurement)
	old          float64 // bit/s: the rate one update earlier (R_old)
	link, gamma  float64
	beta         float64 // bytes; 0 = BDP/10 from τ
	tau          float64 // s; 0 = the smallest RTT seen
	minRTT       float64 // s
	interval     int
}

func newPower(p Params) power {
	return power{rate: float64(p.LinkBps), old: float64(p.LinkBps), smooth: 1, link: float64(p.LinkBps), gamma: p.Gamma,
		beta: float64(p.Beta), tau: p.BaseRTT.Seconds(), interval: p.interval(PowerInterval)}
}

// baseRTT is τ: configured, else the smallest RTT seen, else TAS's initial
// RTT estimate.
func (w *power) baseRTT(rttUs uint32) float64 {
	if rttUs != 0 && (w.minRTT == 0 || float64(rttUs)/1e6 < w.minRTT) {
		w.minRTT = float64(rttUs) / 1e6
	}
	switch {
	case w.tau > 0:
		return w.tau
	case w.minRTT > 0:
		return w.minRTT
	}
	return initRTTUs / 1e6
}

// apply smooths the normalized power gn measured over dt seconds into Γs
// and moves the rate (paper Algorithm 1, UPDATEWINDOW in the rate domain);
// rttUs is the current RTT θ (0: unknown, τ stands in).
func (w *power) apply(gn, dt, tau float64, rttUs uint32) uint32 {
	gn = max(gn, powerCutoff)
	dt = min(dt, tau)
	w.smooth = (w.smooth*(tau-dt) + gn*dt) / tau
	beta := w.beta
	if beta == 0 {
		beta = w.link * tau / 8 / powerBetaDiv
	}
	theta := tau
	if rttUs != 0 {
		theta = float64(rttUs) / 1e6
	}
	r := w.gamma*(w.old/w.smooth+beta*8/theta) + (1-w.gamma)*w.rate
	w.old = w.rate
	w.rate = math.Min(math.Max(r, w.link/powerMinDiv), w.link)
	return kbps(w.rate)
}

// PowerTCP reacts to the power Γ = λ·(q + bτ) of the most loaded hop on
// the path, from the in-band telemetry each ACK echoes: λ, the arrival
// rate, is the queue's growth plus its dequeue rate. Its equilibrium is a
// full link with a standing queue of β per flow (cc.md 1.2). Without
// telemetry (a path or a peer that strips it) it falls back to
// θ-PowerTCP's RTT-based power and counts the update in Fallbacks.
type PowerTCP struct {
	power
	prev      []Hop
	theta     thetaState
	Fallbacks uint64
}

func newPowerTCP(p Params) Controller { return &PowerTCP{power: newPower(p)} }

// Update implements Controller.
func (c *PowerTCP) Update(s *Sample) uint32 {
	tau := c.baseRTT(s.RTT)
	if len(s.Hops) == 0 {
		c.Fallbacks++
		gn, ok := c.theta.normPower(s, tau)
		if !ok {
			return kbps(c.rate)
		}
		return c.apply(gn, float64(s.Elapsed)/1e9, tau, s.RTT)
	}
	c.theta.normPower(s, tau) // keeps the RTT state current for a later fallback
	gn, dt, ok := intNormPower(c.prev, s.Hops, tau)
	c.prev = append(c.prev[:0], s.Hops...)
	if !ok {
		return kbps(c.rate) // the first record only primes the state
	}
	return c.apply(gn, dt, tau, s.RTT)
}

// intNormPower is NORMPOWER (paper Algorithm 1) over the hops: for each
// hop, λ = (Δqlen + ΔtxBytes)/Δt and Γn = λ·(qlen + b·τ)/(b²·τ); it
// returns the largest Γn and its Δt in seconds. ok is false when the
// records cannot be compared with the previous ones (the first, a
// different path length, or no time passed).
func intNormPower(prev, cur []Hop, tau float64) (gn, dt float64, ok bool) {
	if len(prev) != len(cur) {
		return 0, 0, false
	}
	for i := range cur {
		h, p := &cur[i], &prev[i]
		if h.TS <= p.TS || h.RateBps == 0 || h.TxBytes < p.TxBytes {
			continue
		}
		d := float64(h.TS-p.TS) / 1e9
		grow := float64(h.QLen) - float64(p.QLen) + float64(h.TxBytes-p.TxBytes)
		lambda := max(grow, 0) * 8 / d // bit/s
		b := float64(h.RateBps)
		g := lambda * (float64(h.QLen)*8 + b*tau) / (b * b * tau)
		if !ok || g > gn {
			gn, dt, ok = g, d, true
		}
	}
	return gn, dt, ok
}

// Interval implements Controller.
func (c *PowerTCP) Interval() int { return c.interval }
