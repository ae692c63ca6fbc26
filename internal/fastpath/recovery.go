package fastpath

import "gotas/internal/tcp"

// The engine's use of RACK-TLP (RFC 8985) and D-SACK undo (RFC 2883,
// RFC 3708) for SACK flows: tcp.RACK records when each range was sent and
// marks ranges lost once a later-sent segment is acknowledged and a
// reordering window has passed; the scoreboard's NextSeg then repairs
// them. The flow's one timer slot carries the reordering timer when it
// is due before the RTO or probe timeout (tlpReo).

// sent records a transmission with RACK and the scoreboard (SACK flows).
func (e *Engine) sent(f *flow, c *flowCold, seg tcp.Segment) {
	if f.flags&fSACK != 0 {
		c.rack.OnTransmit(&c.sb, seg, e.nowUs)
	}
}

// rackAck feeds an ACK to RACK and the scoreboard, and undoes the window
// reduction of a recovery that D-SACKs proved spurious.
func (e *Engine) rackAck(f *flow, c *flowCold, ackn tcp.Seq, hasTS bool) tcp.AckInfo {
	ts := tcp.TSEcho{OK: hasTS && e.opts.TSEcr != 0, Ecr: e.opts.TSEcr, Now: e.tsNow}
	info := c.rack.OnAck(&c.sb, e.nowUs, ackn, e.sackBlocks(), ts)
	if info.Spurious {
		e.stats.spuriousUndos.Add(1)
		f.cwnd = max(f.cwnd, c.undoCwnd)
		f.ssthresh = max(f.ssthresh, c.undoSsthresh)
		c.sb.ForgetUndo()
	}
	return info
}

// saveUndo remembers the window before a reduction that may prove
// spurious (fast recovery or RTO).
func (c *flowCold) saveUndo(f *flow) { c.undoCwnd, c.undoSsthresh = f.cwnd, f.ssthresh }

// sackLoss is loss detection with SACK: RACK (RFC 8985 6.2) and RFC
// 6675's DupThresh rule, plus RFC 5827 early retransmit for flights too
// short to collect DupThresh SACKs.
func (e *Engine) sackLoss(id uint32, f *flow, c *flowCold, info tcp.AckInfo, acked uint32) {
	lost, tmo := c.rack.DetectLoss(&c.sb, e.nowUs, c.rto.SRTT())
	enter := !c.sb.InRecovery() && (info.DupAck || lost > 0) &&
		(c.sb.ShouldEnterRecovery() || c.sb.EarlyRetransmit() && !e.canSendNew(id, f, c))
	if f.flags&fAlive == 0 {
		return // canSendNew found the app's ring corrupt
	}
	if enter {
		e.enterRecovery(id, true)
		e.armReoTimer(id, tmo)
		return
	}
	if f.flags&fAlive == 0 || !c.sb.InRecovery() {
		e.armReoTimer(id, tmo)
		return
	}
	if info.Sacked > 0 && acked == 0 && e.ptoAllowed(f, c) {
		// Progress without a cumulative ACK: the probe timer watches the
		// retransmissions from here.
		e.armLossTimer(id, f.sndMax)
	}
	e.armReoTimer(id, tmo)
	e.wantTx(id)
}

// armReoTimer arms RACK's reordering timer tmoUs from now (RFC 8985 6.3)
// when it is due before the flow's timer.
func (e *Engine) armReoTimer(id uint32, tmoUs uint32) {
	f := &e.fs.hot[id]
	if tmoUs == 0 || f.flags&fAlive == 0 {
		return
	}
	at := e.now + uint64(tmoUs)*1000
	if t, ok := e.timers.Scheduled(id); ok && t <= at {
		return
	}
	f.tlp = f.tlp&^tlpArmed | tlpReo
	e.timers.Schedule(id, at)
}

// reoTimeout runs when the reordering timer fires: what RACK now deems
// lost is repaired, through fast recovery if none runs; then the loss
// timer guards the flight again.
func (e *Engine) reoTimeout(id uint32) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	lost, tmo := c.rack.DetectLoss(&c.sb, e.nowUs, c.rto.SRTT())
	if lost > 0 && !c.sb.InRecovery() && c.sb.ShouldEnterRecovery() {
		e.enterRecovery(id, true)
	} else if lost > 0 {
		e.wantTx(id)
	}
	if f.flags&fAlive == 0 {
		return
	}
	if f.sndUna != f.sndMax {
		e.armLossTimer(id, f.sndMax)
	}
	e.armReoTimer(id, tmo)
}
