package cc

import "math"

// dctcp-win constants (TAS tas/slow/cc.c, cc.md 2.3).
const (
	// dctcpWinInitSegs is TAS's initial window: 2 segments of 1400 B.
	dctcpWinInit = 2 * 1400
)

// DCTCPWin is TAS's window-domain DCTCP (dctcp-win): a window grown by
// the acknowledged bytes in slow start and by MSS·acked/w in congestion
// avoidance, cut by α/2 on marks (SIGCOMM'10 eq. 2) and halved on loss,
// turned into a rate w/max(RTT, w/link rate) (TAS's window_to_rate). As
// in TAS, the first sign of congestion ends slow start and is acted on
// in the same update.
type DCTCPWin struct {
	win, alpha float64
	mss, link  float64
	slowStart  bool
	interval   int
}

func newDCTCPWin(p Params) Controller {
	return &DCTCPWin{win: dctcpWinInit, alpha: dctcpAlpha0, mss: float64(p.MSS), link: float64(p.LinkBps),
		slowStart: true, interval: p.interval(DefaultInterval)}
}

// Update implements Controller.
func (d *DCTCPWin) Update(s *Sample) uint32 {
	if d.slowStart && s.Losses == 0 && s.ECN == 0 {
		d.win += float64(s.Acked)
	} else {
		d.slowStart = false
		d.avoid(s)
	}
	d.win = max(d.win, d.mss)
	rtt := float64(or(uint64(s.SRTT), initRTTUs)) / 1e6 // s
	return kbps(d.win * 8 / max(rtt, d.win*8/d.link))
}

// avoid is congestion avoidance: halve on loss, else DCTCP's α cut on
// marks or about one MSS per window of acknowledged data.
func (d *DCTCPWin) avoid(s *Sample) {
	if s.Losses > 0 {
		d.win /= 2
		return
	}
	d.alpha = dctcpAlpha(d.alpha, s.Acked, s.ECN)
	switch {
	case s.ECN > 0:
		d.win *= 1 - d.alpha/2
	case s.Acked > 0:
		d.win += d.mss * float64(s.Acked) / d.win
	}
}

// Window implements Windowed: unlike TAS, which only turns the window into
// a rate, the window also caps the flow's data in flight, as DCTCP's
// does; the rate w/RTT alone rises as the queue drains (the RTT falls)
// and overshoots, in the simulator by a factor of 3 around K.
func (d *DCTCPWin) Window() uint32 { return uint32(min(d.win, math.MaxUint32)) }

// Interval implements Controller.
func (d *DCTCPWin) Interval() int { return d.interval }
