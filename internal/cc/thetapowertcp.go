package cc

// thetaMinCurrent floors θ-PowerTCP's "current" 1 + dθ/dt: 0.5, as the
// NS3 artifact (RdmaHw::UpdateRatePower with PowerTCPdelay). A falling RTT
// says the queue drains, not that the link idles.
const thetaMinCurrent = 0.5

// thetaState keeps the previous RTT for the gradient.
type thetaState struct {
	prevRTT float64 // s; 0 before the first sample
	since   uint64  // ns since the previous sample
}

// normPower is θ-PowerTCP's normalized power (cc.md 1.3): the voltage is
// proportional to the RTT θ (θ·b = q + bτ) and the current to 1 + dθ/dt,
// so Γn = (1 + dθ/dt)·θ/τ. The first sample only primes the state.
//
// The gradient spans the time since the previous sample, which may be
// several updates back.
func (t *thetaState) normPower(s *Sample, tau float64) (float64, bool) {
	t.since += s.Elapsed
	if s.RTT == 0 {
		return 0, false
	}
	rtt := float64(s.RTT) / 1e6
	prev, dt := t.prevRTT, t.since
	t.prevRTT, t.since = rtt, 0
	if prev == 0 || dt == 0 {
		return 0, false
	}
	grad := (rtt - prev) / (float64(dt) / 1e9)
	return max(1+grad, thetaMinCurrent) * rtt / tau, true
}

// ThetaPowerTCP is PowerTCP with the power estimated from RTT samples
// alone (NSDI'22, θ-PowerTCP), for paths without telemetry; it needs
// precise RTTs, which a kernel-bypass stack has.
type ThetaPowerTCP struct {
	power
	theta thetaState
}

func newThetaPowerTCP(p Params) Controller { return &ThetaPowerTCP{power: newPower(p)} }

// Update implements Controller.
func (c *ThetaPowerTCP) Update(s *Sample) uint32 {
	tau := c.baseRTT(s.RTT)
	gn, ok := c.theta.normPower(s, tau)
	if !ok {
		return kbps(c.rate)
	}
	return c.apply(gn, float64(s.Elapsed)/1e9, tau, s.RTT)
}

// Interval implements Controller.
func (c *ThetaPowerTCP) Interval() int { return c.interval }
