package fastpath

import (
	"gotas/appif"
	"gotas/tcp"
	"gotas/wire"
)

// HandleFrame implements Handler: established-flow segments are processed
// here, everything else goes to the slow path.
func (e *Engine) HandleFrame(frame []byte, tx *TxBatch) {
	e.tx = tx
	et, hl, err := wire.ParseEthernet(frame)
	if err != nil {
		e.stats.rxNotOurs.Add(1)
		return
	}
	if et != wire.EtherTypeIPv4 {
		e.punt(frame, PuntNotIPv4)
		return
	}
	ip, err := wire.ParseIPv4(frame[hl:])
	if err != nil {
		e.stats.rxNotOurs.Add(1)
		return
	}
	if ip.Dst() != e.cfg.IP {
		if ip.Protocol() == wire.IPProtoTCP {
			e.stats.rxNotOurs.Add(1)
			return
		}
		e.punt(frame, PuntNotTCP) // the slow path counts it
		return
	}
	if ip.Protocol() != wire.IPProtoTCP {
		e.punt(frame, PuntNotTCP)
		return
	}
	if ip.HasOptions() || ip.IsFragment() {
		e.punt(frame, PuntIPOptions)
		return
	}
	seg, err := wire.ParseTCP(ip.Payload())
	if err != nil {
		e.stats.rxNotOurs.Add(1)
		return
	}
	if !wire.VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) &&
		!(e.cfg.PartialCsum && wire.IsPartialChecksum(seg.Checksum(), wire.IPProtoTCP, ip.Src(), ip.Dst(), len(seg))) {
		e.stats.rxBadCsum.Add(1)
		return
	}
	key := FlowKey{LocalIP: ip.Dst(), RemoteIP: ip.Src(), LocalPort: seg.DstPort(), RemotePort: seg.SrcPort()}
	id, ok := e.fs.Table.Lookup(key.Hash(), &key)
	if !ok || e.fs.hot[id].flags&fAlive == 0 {
		e.punt(frame, PuntNoFlow)
		return
	}
	if seg.Flags()&wire.TCPFlagURG != 0 {
		e.punt(frame, PuntURG)
		return
	}
	e.segment(id, ip, seg)
}

// segment processes one segment of an established flow.
func (e *Engine) segment(id uint32, ip wire.IPv4, seg wire.TCP) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	flags := seg.Flags()
	seq := tcp.Seq(seg.SeqNum())
	payload := seg.Payload()
	e.stats.rxSegments.Add(1)

	if err := wire.ParseTCPOptions(seg.Options(), &e.opts); err != nil {
		return
	}
	if flags&wire.TCPFlagRST != 0 {
		e.rst(id, seq)
		return
	}
	if flags&wire.TCPFlagSYN != 0 {
		// RFC 5961 4: a SYN on a synchronized connection gets a challenge
		// ACK (which also re-acknowledges a retransmitted SYN-ACK).
		e.stats.challengeAcks.Add(1)
		e.sendAck(id)
		return
	}
	if flags&wire.TCPFlagACK == 0 {
		return
	}
	hasTS := f.flags&fTS != 0 && e.opts.Has(wire.OptTimestamps)
	// PAWS-lite (RFC 7323 5): an older timestamp marks an old duplicate.
	// Like Linux (TCP_PAWS_WINDOW) it tolerates one tick: a segment that
	// a reordering link delayed behind a retransmission, which moved
	// TS.Recent on, is new data, not an old duplicate.
	if hasTS && tcp.Seq(e.opts.TSVal).Add(pawsWindow).LessThan(tcp.Seq(f.tsRecent)) {
		e.stats.pawsDrops.Add(1)
		e.sendAck(id)
		return
	}
	if hasTS && seq.LessThanEq(f.rcvNxt) && !tcp.Seq(e.opts.TSVal).LessThan(tcp.Seq(f.tsRecent)) {
		f.tsRecent = e.opts.TSVal
	}

	e.ack(id, seg, seq, hasTS)
	if f.flags&fAlive == 0 {
		return
	}

	fin := flags&wire.TCPFlagFIN != 0
	if len(payload) == 0 && !fin {
		if seq != f.rcvNxt {
			e.sendAck(id) // a window probe or an old duplicate: answer
		}
		return
	}
	ce := ip.TOS()&3 == 3
	if f.flags&fECN != 0 {
		if ce {
			f.flags |= fEcePend
		} else if flags&wire.TCPFlagCWR != 0 {
			f.flags &^= fEcePend
		}
	}
	e.data(id, f, c, seq, payload, fin, flags&wire.TCPFlagPSH != 0)
}

// data places payload [seq, seq+len) in the RX ring and decides the ACK.
func (e *Engine) data(id uint32, f *flow, c *flowCold, seq tcp.Seq, p []byte, fin, psh bool) {
	// Trim what was already received.
	if d := int32(f.rcvNxt - seq); d > 0 {
		if int(d) > len(p) || int(d) == len(p) && !fin {
			e.stats.rxDupData.Add(1)
			e.sendAck(id) // a retransmission: our ACK was lost
			return
		}
		if int(d) == len(p) {
			p, seq = p[:0], f.rcvNxt // only the FIN is new
		} else {
			p = p[d:]
			seq = f.rcvNxt
		}
	}
	free, ok := e.rxFree(f, c)
	if !ok {
		return
	}
	off := uint32(seq - f.rcvNxt)
	if off >= free && len(p) > 0 || off > free {
		e.sendAck(id) // beyond the window
		return
	}
	if uint32(len(p)) > free-off {
		p = p[:free-off]
		fin = false
	}
	n := uint32(len(p))
	e.stats.rxBytes.Add(uint64(n))
	if off == 0 {
		e.ringWrite(&c.rx, f.rxHead, p)
		hadOOO := !c.ooo.Empty()
		adv := n
		if hadOOO {
			adv += c.ooo.Advance(seq.Add(n))
		}
		f.rcvNxt = f.rcvNxt.Add(adv)
		f.rxHead += adv
		c.rx.Head.Store(f.rxHead)
		if adv > 0 {
			f.rxBump += adv
			e.wantEvent(id)
		}
		if fin && c.ooo.Empty() && f.rxFin(seq.Add(n)) {
			e.rxFinished(id)
			return
		}
		if hadOOO || psh || n < uint32(f.mss) {
			e.sendAck(id)
			return
		}
		f.ackPend++
		if f.ackPend >= 2 {
			e.sendAck(id)
		} else {
			e.wantAck(id)
		}
		return
	}
	// Out of order: keep it at its offset if the OOO set takes it.
	e.stats.rxOOO.Add(1)
	if n > 0 {
		r := c.ooo.Insert(seq, seq.Add(n))
		if r.Status <= tcp.OOOStoredEvicted {
			e.ringWrite(&c.rx, f.rxHead+off, p)
		}
	}
	e.sendAck(id)
}

// rxFin accepts an in-order FIN at seq.
func (f *flow) rxFin(at tcp.Seq) bool {
	if f.flags&fRxFin != 0 || at != f.rcvNxt {
		return false
	}
	f.rcvNxt = f.rcvNxt.Add(1)
	f.flags |= fRxFin
	if f.flags&fTxFinSent == 0 {
		f.flags &^= fActiveClose
	}
	return true
}

func (e *Engine) rxFinished(id uint32) {
	f := &e.fs.hot[id]
	f.evFlags |= appif.EvRxFin
	e.wantEvent(id)
	e.sendAck(id)
}

// rxFree returns the free RX ring space from rcv_nxt on. A tail the app
// moved out of range means a corrupt ring: the flow is aborted.
func (e *Engine) rxFree(f *flow, c *flowCold) (uint32, bool) {
	tail := c.rx.Tail.Load()
	used := f.rxHead - tail
	if used > c.rx.Mask+1 {
		return 0, false
	}
	return c.rx.Mask + 1 - used, true
}

func (e *Engine) ringWrite(r *appif.Ring, pos uint32, p []byte) {
	start := pos & r.Mask
	k := copy(r.Data[start:], p)
	copy(r.Data, p[k:])
}

// rst applies RFC 5961 3.2: only an exact match aborts; a RST elsewhere in
// the window gets a challenge ACK; anything else is dropped.
func (e *Engine) rst(id uint32, seq tcp.Seq) {
	f := &e.fs.hot[id]
	if seq == f.rcvNxt {
		e.stats.resets.Add(1)
		e.gone(id, GoneReset)
		return
	}
	if seq.InWindow(f.rcvNxt, max(f.advWnd, 1)) {
		e.stats.challengeAcks.Add(1)
		e.sendAck(id)
	}
}

// ack processes the acknowledgment and window fields of a segment.
func (e *Engine) ack(id uint32, seg wire.TCP, seq tcp.Seq, hasTS bool) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	ackn := tcp.Seq(seg.AckNum())
	if ackn.GreaterThan(f.sndMax) {
		e.sendAck(id) // acknowledges data never sent (RFC 9293 3.10.7.4)
		return
	}
	if ackn.LessThan(f.sndUna) {
		return // old
	}
	wnd := tcp.DecodeWindow(seg.Window(), f.sndShift)
	ctr := &e.fs.Counters[id]
	flags := seg.Flags()
	acked := uint32(ackn - f.sndUna)
	var blocks []tcp.SACKBlock
	if f.flags&fSACK != 0 && e.opts.Has(wire.OptSACK) {
		for i, b := range e.opts.SACKBlocks() {
			e.sacks[i] = tcp.SACKBlock{Start: tcp.Seq(b.Start), End: tcp.Seq(b.End)}
		}
		blocks = e.sacks[:len(e.opts.SACKBlocks())]
	}
	// Window update (RFC 9293 SND.WL1/WL2 rule).
	oldWnd := f.sndWnd
	if f.wl1.LessThan(seq) || f.wl1 == seq && f.wl2.LessThanEq(ackn) {
		f.sndWnd, f.wl1, f.wl2 = wnd, seq, ackn
		if f.sndWnd > oldWnd {
			e.wantTx(id)
		}
	}
	var info tcp.AckInfo
	if f.flags&fSACK != 0 {
		info = c.sb.OnAck(ackn, blocks)
	}
	if acked > 0 {
		data := acked
		if f.flags&fTxFinSent != 0 && ackn == f.sndMax && f.flags&fTxFinAcked == 0 {
			data-- // the FIN's sequence number
			f.flags |= fTxFinAcked
			f.evFlags |= appif.EvTxFinAcked
		}
		f.sndUna = ackn
		if f.sndNxt.LessThan(ackn) {
			f.sndNxt = ackn // the receiver had what go-back-N resends
		}
		f.txTail += data
		c.tx.Tail.Store(f.txTail)
		f.txBump += data
		f.dupAcks = 0
		f.retries = 0
		f.tlp &^= tlpProbed
		ctr.AckedBytes.Add(uint64(data))
		e.wantEvent(id)
		// RTT: time one segment at a time in microseconds, never a
		// retransmitted one (Karn). Timestamp echoes are unambiguous (RFC
		// 7323 4) but only millisecond-grained (tcp.TSTickNs), so they
		// serve only to end an RTO backoff that no timed segment ends.
		if f.flags&fTiming != 0 && f.rttSeq.LessThan(ackn) {
			c.rto.Sample(e.nowUs - f.rttTime)
			ctr.SRTT.Store(c.rto.SRTT())
			f.flags &^= fTiming
		} else if hasTS && e.opts.TSEcr != 0 && c.rto.Backoffs() > 0 {
			c.rto.Sample(tcp.TSRTTUs(e.tsNow - e.opts.TSEcr))
			ctr.SRTT.Store(c.rto.SRTT())
		}
		if f.flags&fRecovery != 0 && ackn.GreaterThanEq(f.recover) {
			f.flags &^= fRecovery
		}
		if f.flags&fRecovery == 0 {
			// NewReno-like growth: slow start below ssthresh, else ~1 MSS
			// per window.
			mss := uint32(f.mss)
			if f.cwnd < f.ssthresh {
				f.cwnd += min(data, mss)
			} else {
				f.cwnd += max(mss*mss/f.cwnd, 1)
			}
			f.cwnd = min(f.cwnd, 1<<26)
		}
		if f.sndUna == f.sndMax {
			e.timers.Cancel(id)
			f.tlp &^= tlpArmed
		} else {
			e.armLossTimer(id, f.sndMax)
		}
		e.wantTx(id)
	}
	if f.flags&fECN != 0 && flags&wire.TCPFlagECE != 0 {
		ctr.ECNBytes.Add(uint64(acked))
		if f.flags&fRecovery == 0 && ackn.GreaterThanEq(f.recover) && acked > 0 {
			e.reduce(f)
			f.recover = f.sndMax
			f.flags |= fCwrPend
		}
	}
	// Loss detection: RFC 6675, plus RFC 5827 early retransmit for
	// flights too short to collect DupThresh SACKs.
	if f.flags&fSACK != 0 {
		if info.DupAck && (c.sb.ShouldEnterRecovery() || c.sb.EarlyRetransmit() && !e.canSendNew(f, c)) {
			e.enterRecovery(id, true)
		} else if c.sb.InRecovery() {
			if info.Sacked > 0 && acked == 0 && e.ptoAllowed(f, c) {
				// Progress without a cumulative ACK: the probe timer
				// watches the retransmissions from here.
				e.armLossTimer(id, f.sndMax)
			}
			e.wantTx(id)
		}
		return
	}
	if acked == 0 && len(seg.Payload()) == 0 && seg.Flags()&wire.TCPFlagFIN == 0 &&
		wnd == oldWnd && f.sndUna != f.sndMax {
		if f.dupAcks < 255 {
			f.dupAcks++
		}
		if f.dupAcks == tcp.DupThresh && f.flags&fRecovery == 0 {
			e.enterRecovery(id, false)
		}
	}
}

// canSendNew reports whether unsent data could go out now (queued, and
// within the peer's window and the congestion window).
func (e *Engine) canSendNew(f *flow, c *flowCold) bool {
	queued, ok := e.txQueued(f, c)
	if !ok {
		return false
	}
	return f.sndNxt.LessThan(f.sndUna.Add(queued)) && f.sndNxt.LessThan(f.sndUna.Add(f.sndWnd)) &&
		uint32(f.sndNxt-f.sndUna) < f.cwnd
}

// reduce halves the congestion window (loss or ECN echo).
func (e *Engine) reduce(f *flow) {
	flight := uint32(f.sndMax - f.sndUna)
	f.ssthresh = max(min(flight, f.cwnd)/2, 2*uint32(f.mss))
	f.cwnd = f.ssthresh
}

// enterRecovery starts fast retransmit: SACK-based recovery (RFC 6675)
// when SACK is on, go-back-N from snd_una otherwise. Go-back-N leaves the
// peer window alone (TAS PR #17 subtracted in-flight bytes from it).
func (e *Engine) enterRecovery(id uint32, sack bool) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	e.stats.fastRetx.Add(1)
	e.fs.Counters[id].FastRetx.Add(1)
	e.reduce(f)
	f.flags |= fRecovery
	f.flags &^= fTiming
	f.recover = f.sndMax
	if sack {
		seg := c.sb.EnterRecovery()
		if queued, ok := e.txQueued(f, c); ok {
			if e.sendRange(id, seg.Start, seg.Len, f.sndUna.Add(queued)) > 0 {
				c.sb.OnTransmit(seg)
			}
		}
	} else {
		e.goBack(f)
	}
	e.wantTx(id)
}

// goBack rewinds snd_nxt to snd_una so everything unacknowledged is sent
// again.
func (e *Engine) goBack(f *flow) {
	f.sndNxt = f.sndUna
	f.flags &^= fTiming
}
