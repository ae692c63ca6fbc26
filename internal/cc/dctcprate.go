package cc

// TAS's DCTCP defaults (tas/config.c, tas/slow/cc.c; cc.md 2.3).
const (
	// dctcpInitBps is TAS's initial flow rate: 10 Mbit/s.
	dctcpInitBps = 10_000_000
	// dctcpStepBps is cc_dctcp_step: the additive increase per update.
	dctcpStepBps = 10_000_000
	// dctcpG is DCTCP's estimation gain g = 1/16 (SIGCOMM'10 3.1; TAS's
	// cc_dctcp_weight).
	dctcpG = 1.0 / 16
	// dctcpMinAcks is cc_dctcp_minpkts: an update waits for 50 ACKs so
	// the marked fraction is not noise.
	dctcpMinAcks = 50
	// actCap is TAS's clamp: the rate never exceeds 1.2x the measured
	// rate, so an application-limited flow does not bank a rate it
	// never used.
	actCap = 1.2
	// actWeight is the weight of a new measurement in the EWMA of the
	// measured rate: 1/8 (TAS keeps 7/8 of the old value).
	actWeight = 1.0 / 8
	// dctcpAlpha0 is α before the first update: 0, as TAS (RFC 8257 3.3
	// and Linux start at 1 instead).
	dctcpAlpha0 = 0.0
	// dctcpMinBps is our floor (TAS's is 0): a rate of 0 means
	// "unlimited" to the fast path, and a flow paced near 0 would never
	// gather the 50 ACKs an update waits for.
	dctcpMinBps = 1_000_000
)

// dctcpAlpha is DCTCP's α ← (1−g)α + g·F with F the fraction of
// acknowledged bytes that were marked (SIGCOMM'10 eq. 1).
func dctcpAlpha(alpha float64, acked, ecn uint64) float64 {
	if acked == 0 {
		return alpha
	}
	f := min(float64(ecn)/float64(acked), 1)
	return (1-dctcpG)*alpha + dctcpG*f
}

// actual tracks the measured sending rate for the 1.2x cap.
type actual struct {
	ewma float64 // bit/s, starting from 0 as TAS's
}

// cap returns the rate limit 1.2·max(act, EWMA) after folding act in.
func (a *actual) cap(act float64) float64 {
	a.ewma = (1-actWeight)*a.ewma + actWeight*act
	return actCap * max(act, a.ewma)
}

// DCTCPRate is TAS's default controller (dctcp-rate, tas/slow/cc.c): DCTCP
// in the rate domain. It acts once 50 ACKs have arrived: the rate is first
// capped at 1.2x the measured rate (so an application-limited flow does
// not bank a rate it never used); slow start doubles it until the first
// mark or loss; after that a loss halves it, and otherwise α is updated
// from the marked fraction and any mark cuts the rate by α/2, no mark adds
// a fixed step.
type DCTCPRate struct {
	rate, alpha, step float64
	minAcks           uint64
	slowStart         bool
	act               actual
	acc               Sample // measurements not yet acted on
	interval          int
}

func newDCTCPRate(p Params) Controller {
	d := &DCTCPRate{rate: float64(or(p.InitBps, dctcpInitBps)), alpha: dctcpAlpha0,
		step: float64(or(p.StepBps, dctcpStepBps)), minAcks: or(uint64(p.MinAcks), dctcpMinAcks), slowStart: true,
		interval: p.interval(DefaultInterval)}
	return d
}

func or(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

// accumulate adds s's deltas to acc.
func accumulate(acc *Sample, s *Sample) {
	acc.Elapsed += s.Elapsed
	acc.Acks += s.Acks
	acc.Acked += s.Acked
	acc.ECN += s.ECN
	acc.Losses += s.Losses
}

// Update implements Controller.
func (d *DCTCPRate) Update(s *Sample) uint32 {
	accumulate(&d.acc, s)
	a := d.acc
	if a.Acks < d.minAcks {
		return kbps(d.rate)
	}
	d.acc = Sample{}
	d.rate = min(d.rate, d.act.cap(rateOf(a.Acked, a.Elapsed)))
	if d.slowStart && a.Losses == 0 && a.ECN == 0 {
		d.rate *= 2
	} else {
		d.slowStart = false
		d.rate = d.avoid(&a)
	}
	d.rate = max(d.rate, dctcpMinBps)
	return kbps(d.rate)
}

// avoid is congestion avoidance: halve on loss, else DCTCP's α cut on
// marks or the additive step.
func (d *DCTCPRate) avoid(a *Sample) float64 {
	if a.Losses > 0 {
		return d.rate / 2
	}
	d.alpha = dctcpAlpha(d.alpha, a.Acked, a.ECN)
	if a.ECN > 0 {
		return d.rate * (1 - d.alpha/2)
	}
	return d.rate + d.step
}

// Interval implements Controller.
func (d *DCTCPRate) Interval() int { return d.interval }
