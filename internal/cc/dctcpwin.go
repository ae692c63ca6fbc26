package cc

// dctcp-win constants (TAS tas/slow/cc.c, cc.md 2.3).
const (
	// dctcpWinInitSegs is TAS's initial window: 2 segments of 1400 B.
	dctcpWinInit = 2 * 1400
)

// DCTCPWin is TAS's window-domain DCTCP (dctcp-win): a window grown by
// the acknowledged bytes in slow start and by MSS·acked/w in congestion
// avoidance, cut by α/2 on marks (SIGCOMM'10 eq. 2) and halved on loss,
// turned into a rate w/max(RTT, w/link rate) (TAS's window_to_rate).
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
	d.alpha = dctcpAlpha(d.alpha, s.Acked, s.ECN)
	switch {
	case s.Losses > 0:
		d.slowStart = false
		d.win /= 2
	case s.ECN > 0:
		d.slowStart = false
		d.win *= 1 - d.alpha/2
	case d.slowStart:
		d.win += float64(s.Acked)
	case s.Acked > 0:
		d.win += d.mss * float64(s.Acked) / d.win
	}
	d.win = max(d.win, d.mss)
	rtt := float64(or(uint64(s.SRTT), initRTTUs)) / 1e6 // s
	return kbps(d.win * 8 / max(rtt, d.win*8/d.link))
}

// Interval implements Controller.
func (d *DCTCPWin) Interval() int { return d.interval }
