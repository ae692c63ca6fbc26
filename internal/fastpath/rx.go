package fastpath

import (
	"gotas/internal/appif"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// HandleFrame implements Handler: established-flow segments are processed
// here, everything else goes to the slow path.
func (e *Engine) HandleFrame(frame []byte, tx *TxBatch) { e.handle(frame, tx, false) }

// handle processes one received frame. An injected frame (one the slow
// path handed back, KtxInject) is never punted again: a frame the core
// cannot take must not bounce between the two paths.
func (e *Engine) handle(frame []byte, tx *TxBatch, injected bool) {
	e.tx = tx
	et, hl, err := wire.ParseEthernet(frame)
	if err != nil {
		e.stats.rxNotOurs.Add(1)
		return
	}
	if et != wire.EtherTypeIPv4 {
		e.puntOnce(frame, PuntNotIPv4, injected)
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
		e.puntOnce(frame, PuntNotTCP, injected) // the slow path counts it
		return
	}
	if ip.Protocol() != wire.IPProtoTCP || ip.IsFragment() {
		// Fragments go to the slow path, which counts and drops them:
		// nothing here reassembles, and DF is set on all we send.
		e.puntOnce(frame, PuntNotTCP, injected)
		return
	}
	if ip.HasOptions() {
		// IPv4 options (RFC 791) change nothing for TCP: the payload
		// starts after the header length, and we answer without them.
		e.stats.rxIPOptions.Add(1)
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
		e.puntOnce(frame, PuntNoFlow, injected)
		return
	}
	e.segment(id, ip, seg)
}

// puntOnce punts a received frame, and drops (counted) one the slow path
// injected.
func (e *Engine) puntOnce(frame []byte, reason uint8, injected bool) {
	if injected {
		e.stats.injectDropped.Add(1)
		return
	}
	e.punt(frame, reason)
}

// segment processes one segment of an established flow in the order of
// RFC 9293 3.10.7.4, with PAWS first (RFC 7323 5.3 R1) and the RFC 5961
// checks: nothing touches TS.Recent, the send window or the receive ring
// before the segment has passed them all.
func (e *Engine) segment(id uint32, ip wire.IPv4, seg wire.TCP) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	flags := seg.Flags()
	seq := tcp.Seq(seg.SeqNum())
	payload := seg.Payload()
	e.stats.rxSegments.Add(1)

	if err := wire.ParseTCPOptions(seg.Options(), &e.opts); err != nil {
		e.stats.rxBadOptions.Add(1)
		return
	}
	if flags&wire.TCPFlagURG != 0 {
		// Urgent data is delivered inline, as RFC 6093 recommends for
		// new applications; the pointer is ignored.
		e.stats.rxUrgent.Add(1)
	}
	if !e.timestampOK(id, f, seq, flags) {
		return
	}
	segLen := uint32(len(payload))
	fin := flags&wire.TCPFlagFIN != 0
	if fin {
		segLen++
	}
	if !e.inWindow(f, seq, segLen) {
		e.stats.rxOutOfWindow.Add(1)
		if flags&wire.TCPFlagRST == 0 {
			e.outOfWindowAck(id, f, seq, segLen)
		}
		return
	}
	if flags&wire.TCPFlagRST != 0 {
		e.rst(id, seq)
		return
	}
	if flags&wire.TCPFlagSYN != 0 {
		// RFC 5961 4: a SYN on a synchronized connection gets a challenge
		// ACK (which also re-acknowledges a retransmitted SYN-ACK).
		e.challengeAck(id)
		return
	}
	if flags&wire.TCPFlagACK == 0 {
		return // RFC 9293 3.10.7.4, fifth check: no ACK, drop
	}
	ackn := tcp.Seq(seg.AckNum())
	if !e.ackInRange(id, f, c, ackn) {
		return
	}
	e.intOption(id, c, len(payload) > 0)
	hasTS := f.flags&fTS != 0
	if hasTS && seq.LessThanEq(f.rcvNxt) && !tcp.Seq(e.opts.TSVal).LessThan(tcp.Seq(f.tsRecent)) {
		// RFC 7323 4.3: only a segment that passed every check, and that
		// starts at or before what we acknowledged, updates TS.Recent.
		f.tsRecent = e.opts.TSVal
	}
	e.ack(id, seg, ackn, seq, hasTS)
	if f.flags&fAlive == 0 {
		return
	}
	if len(payload) == 0 && !fin {
		if seq.LessThan(f.rcvNxt) {
			// A window probe (Linux sends snd_una-1) or a keepalive:
			// the answer is what it asks for, our window.
			e.sendAck(id)
		}
		return
	}
	if f.flags&fECN != 0 {
		if ip.TOS()&wire.ECNMask == wire.ECNCE {
			f.flags |= fEcePend
		} else if flags&wire.TCPFlagCWR != 0 {
			f.flags &^= fEcePend
		}
	}
	e.data(id, f, c, seq, payload, fin, flags&wire.TCPFlagPSH != 0)
}

// timestampOK applies RFC 7323 to a segment of flow id: on a timestamped
// flow a non-RST segment without the option is dropped (section 3.2), and
// PAWS (section 5) drops one whose TSval is older than TS.Recent. Like
// Linux (TCP_PAWS_WINDOW) PAWS tolerates one tick: a segment that a
// reordering link delayed behind a retransmission, which moved TS.Recent
// on, is new data, not an old duplicate.
func (e *Engine) timestampOK(id uint32, f *flow, seq tcp.Seq, flags wire.TCPFlags) bool {
	if f.flags&fTS == 0 || flags&wire.TCPFlagRST != 0 {
		return true
	}
	if !e.opts.Has(wire.OptTimestamps) {
		e.stats.rxNoTimestamp.Add(1)
		return false
	}
	if tcp.Seq(e.opts.TSVal).Add(pawsWindow).LessThan(tcp.Seq(f.tsRecent)) {
		e.stats.pawsDrops.Add(1)
		e.rateLimitedAck(id)
		return false
	}
	return true
}

// rcvWnd is RCV.WND: the space from rcv_nxt to the right edge of the
// windows we advertised.
func (f *flow) rcvWnd() uint32 {
	if edge := f.rwin.Edge(); f.rcvNxt.LessThan(edge) {
		return uint32(edge - f.rcvNxt)
	}
	return 0
}

// inWindow is RFC 9293's segment acceptability test (3.10.7.4, first
// check) for a segment occupying segLen sequence numbers. Two widenings,
// both Linux's: a segment starting exactly at rcv_nxt is acceptable even
// into a zero window (a window probe: data() takes none of it and ACKs),
// and a pure ACK may lag rcv_nxt by up to the advertised window (an ACK
// reordered behind data the peer sent after it still carries SACK and
// window information).
func (e *Engine) inWindow(f *flow, seq tcp.Seq, segLen uint32) bool {
	wnd := f.rcvWnd()
	if seq == f.rcvNxt {
		return true
	}
	if segLen == 0 {
		return seq.InWindow(f.rcvNxt.Sub(f.advWnd), f.advWnd+wnd+1)
	}
	if wnd == 0 {
		return false
	}
	return seq.InWindow(f.rcvNxt, wnd) || seq.Add(segLen-1).InWindow(f.rcvNxt, wnd)
}

// outOfWindowAck answers an unacceptable segment (RFC 9293: send an ACK,
// drop it). A retransmission of data we already have gets its duplicate
// ACK at once (our ACK was lost); anything else, which a blind attacker
// can send at will, is answered at most every oowAckIntervalNs per flow.
func (e *Engine) outOfWindowAck(id uint32, f *flow, seq tcp.Seq, segLen uint32) {
	if segLen > 0 && seq.Add(segLen).LessThanEq(f.rcvNxt) {
		e.stats.rxDupData.Add(1)
		e.sendAck(id)
		return
	}
	e.rateLimitedAck(id)
}

// rateLimitedAck sends an ACK unless this flow sent one for an invalid
// segment within oowAckIntervalNs (Linux tcp_invalid_ratelimit).
func (e *Engine) rateLimitedAck(id uint32) {
	c := &e.fs.cold[id]
	if c.lastInvalidAck != 0 && e.now-c.lastInvalidAck < oowAckIntervalNs {
		e.stats.acksRateLimited.Add(1)
		return
	}
	c.lastInvalidAck = e.now
	e.sendAck(id)
}

// challengeAck sends an RFC 5961 challenge ACK within the per-flow limit
// and the engine-wide budget of section 7 (challengeAcksPerSecond).
func (e *Engine) challengeAck(id uint32) {
	c := &e.fs.cold[id]
	if sec := e.now / 1e9; sec != e.chSecond {
		e.chSecond, e.chBudget = sec, challengeAcksPerSecond
	}
	if c.lastInvalidAck != 0 && e.now-c.lastInvalidAck < oowAckIntervalNs || e.chBudget == 0 {
		e.stats.acksRateLimited.Add(1)
		return
	}
	e.chBudget--
	e.stats.challengeAcks.Add(1)
	c.lastInvalidAck = e.now
	e.sendAck(id)
}

// ackInRange applies RFC 5961 section 5.2: an ACK is acceptable only in
// [SND.UNA - MAX.SND.WND, SND.NXT]; anything else gets a challenge ACK
// and the segment is dropped (RFC 9293 3.10.7.4: an ACK of data never
// sent is answered and dropped, so its data is not taken either).
func (e *Engine) ackInRange(id uint32, f *flow, c *flowCold, ackn tcp.Seq) bool {
	if ackn.GreaterThan(f.sndMax) || ackn.LessThan(f.sndUna.Sub(c.maxSndWnd)) {
		e.stats.rxBadAck.Add(1)
		e.challengeAck(id)
		return false
	}
	return true
}

// data places payload [seq, seq+len) in the RX ring and decides the ACK.
// The segment is acceptable (inWindow); what lies outside the window or
// the ring's free space is trimmed, and the peer sends it again.
func (e *Engine) data(id uint32, f *flow, c *flowCold, seq tcp.Seq, p []byte, fin, psh bool) {
	if f.flags&fRxFin != 0 {
		// Nothing follows the peer's FIN (RFC 9293 3.10.7.4, eighth
		// check: CLOSE-WAIT and later ignore segment text).
		e.stats.rxAfterFin.Add(1)
		e.sendAck(id)
		return
	}
	if d := uint32(f.rcvNxt - seq); int32(d) > 0 {
		if d >= uint32(len(p)) && !(d == uint32(len(p)) && fin) {
			e.stats.rxDupData.Add(1)
			e.sendAck(id) // a retransmission: our ACK was lost
			return
		}
		p, seq = p[d:], f.rcvNxt
	}
	free, ok := e.rxFree(id, f, c)
	if !ok {
		return
	}
	room := min(free, f.rcvWnd())
	off := uint32(seq - f.rcvNxt)
	if off >= room && (len(p) > 0 || off > room) {
		e.sendAck(id) // beyond the window: a probe, or the peer overran it
		return
	}
	if uint32(len(p)) > room-off {
		p = p[:room-off]
		fin = false
	}
	e.stats.rxBytes.Add(uint64(len(p)))
	if off == 0 {
		e.inOrder(id, f, c, seq, p, fin, psh)
		return
	}
	e.outOfOrder(id, f, c, seq, off, p, fin)
}

// inOrder delivers data at rcv_nxt, pulls in out-of-order data it
// completes, accepts a FIN that is now in order, and decides the ACK:
// immediate after a hole closes, on PSH or a short segment, else every
// second full segment (RFC 9293 3.8.6.3: at least every 2*MSS).
func (e *Engine) inOrder(id uint32, f *flow, c *flowCold, seq tcp.Seq, p []byte, fin, psh bool) {
	n := uint32(len(p))
	e.ringWrite(&c.rx, f.rxHead, p)
	hadOOO := !c.ooo.Empty()
	// Advance also when nothing is queued: the set's rcv_nxt must follow
	// ours, or after 2 GiB it would see new segments as old.
	adv := n + c.ooo.Advance(seq.Add(n))
	f.rcvNxt = f.rcvNxt.Add(adv)
	f.rxHead += adv
	c.rx.Head.Store(f.rxHead)
	if adv > 0 {
		f.rxBump += adv
		e.wantEvent(id)
	}
	finAt, finNow := seq.Add(n), fin && adv == n && c.ooo.Empty()
	if c.rxFinQueued && c.rxFinAt == f.rcvNxt {
		finAt, finNow = f.rcvNxt, true
	}
	if finNow && f.rxFin(finAt) {
		c.rxFinQueued = false
		e.rxFinished(id)
		return
	}
	if hadOOO {
		e.sendAck(id) // it filled a hole: at once (RFC 5681 4.2)
		return
	}
	// A GRO-sized segment (an AF_XDP multi-buffer frame: the peer's GSO
	// packet) counts as the full segments it carries, so one of two or
	// more is acknowledged at once, as Linux acknowledges a GRO packet.
	f.ackPend = uint8(min(uint32(f.ackPend)+max(n/max(uint32(f.mss), 1), 1), delAckSegments))
	switch {
	case f.ackPend >= delAckSegments:
		e.sendAck(id)
	case psh || n < uint32(f.mss):
		e.holdAck(id) // the end of a message: an answer may carry the ACK
	default:
		e.wantAck(id)
	}
}

// outOfOrder keeps data off rcv_nxt at its ring offset if the set takes
// it, and remembers a FIN that ends it, so the FIN is accepted once the
// hole before it fills (not dropped and waited for again).
func (e *Engine) outOfOrder(id uint32, f *flow, c *flowCold, seq tcp.Seq, off uint32, p []byte, fin bool) {
	e.stats.rxOOO.Add(1)
	n := uint32(len(p))
	stored := n == 0
	if n > 0 {
		r := c.ooo.Insert(seq, seq.Add(n))
		if r.Status <= tcp.OOOStoredEvicted {
			e.ringWrite(&c.rx, f.rxHead+off, p)
			stored = true
		}
	}
	if fin && stored && (!c.rxFinQueued || seq.Add(n).LessThan(c.rxFinAt)) {
		c.rxFinAt, c.rxFinQueued = seq.Add(n), true
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

// rxFree returns the free RX ring space from rcv_nxt on. The app owns the
// tail; one it moved out of range (behind what it was given, or past what
// was written) aborts the flow (GoneCorrupt) and reports false.
func (e *Engine) rxFree(id uint32, f *flow, c *flowCold) (uint32, bool) {
	used := f.rxHead - c.rx.Tail.Load()
	if used > c.rx.Mask+1 {
		e.corrupt(id)
		return 0, false
	}
	return c.rx.Mask + 1 - used, true
}

// corrupt aborts a flow whose ring positions the application made
// impossible. The slow path resets the peer and tells the app.
func (e *Engine) corrupt(id uint32) {
	e.stats.corruptRings.Add(1)
	e.gone(id, GoneCorrupt)
}

func (e *Engine) ringWrite(r *appif.Ring, pos uint32, p []byte) {
	start := pos & r.Mask
	k := copy(r.Data[start:], p)
	copy(r.Data, p[k:])
}

// rst applies RFC 5961 3.2: only an exact match aborts; elsewhere in the
// window a RST gets a challenge ACK; outside it (inWindow lets a segment
// lag rcv_nxt) it is dropped.
func (e *Engine) rst(id uint32, seq tcp.Seq) {
	f := &e.fs.hot[id]
	if seq == f.rcvNxt {
		e.stats.resets.Add(1)
		e.gone(id, GoneReset)
		return
	}
	if seq.InWindow(f.rcvNxt, max(f.rcvWnd(), 1)) {
		e.challengeAck(id)
	}
}

// ack processes the acknowledgment and window fields of a segment whose
// ACK passed ackInRange.
func (e *Engine) ack(id uint32, seg wire.TCP, ackn, seq tcp.Seq, hasTS bool) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	if ackn.LessThan(f.sndUna) {
		return // an old duplicate: its ACK says nothing new (RFC 9293)
	}
	wnd := tcp.DecodeWindow(seg.Window(), f.sndShift)
	acked := uint32(ackn - f.sndUna)
	oldWnd := f.sndWnd
	e.updateWindow(id, f, c, seq, ackn, wnd)
	var info tcp.AckInfo
	if f.flags&fSACK != 0 {
		info = e.rackAck(f, c, ackn, hasTS)
	}
	if acked > 0 {
		e.newlyAcked(id, f, c, ackn, acked, hasTS)
	}
	if f.flags&fECN != 0 && seg.Flags()&wire.TCPFlagECE != 0 {
		e.ecnEcho(id, f, ackn, acked)
	}
	if f.flags&fSACK != 0 {
		e.sackLoss(id, f, c, info, acked)
		return
	}
	// RFC 5681 2 defines a duplicate ACK; a closed window is no loss
	// signal (the persist timer probes it).
	if acked == 0 && len(seg.Payload()) == 0 && seg.Flags()&wire.TCPFlagFIN == 0 &&
		wnd == oldWnd && wnd != 0 && f.sndUna != f.sndMax {
		e.dupAck(id, f)
	}
}

// sackBlocks returns the received segment's SACK blocks (none unless SACK
// was negotiated).
func (e *Engine) sackBlocks() []tcp.SACKBlock {
	if !e.opts.Has(wire.OptSACK) {
		return nil
	}
	bs := e.opts.SACKBlocks()
	for i, b := range bs {
		e.sacks[i] = tcp.SACKBlock{Start: tcp.Seq(b.Start), End: tcp.Seq(b.End)}
	}
	return e.sacks[:len(bs)]
}

// updateWindow applies the RFC 9293 SND.WL1/WL2 rule (3.10.7.4, fifth
// check) and tracks MAX.SND.WND for the RFC 5961 ACK range. Any ACK into
// a zero window shows the peer alive, so persist probes it answers do not
// count towards the abort.
func (e *Engine) updateWindow(id uint32, f *flow, c *flowCold, seq, ackn tcp.Seq, wnd uint32) {
	if f.wl1.LessThan(seq) || f.wl1 == seq && f.wl2.LessThanEq(ackn) {
		grew := wnd > f.sndWnd
		f.sndWnd, f.wl1, f.wl2 = wnd, seq, ackn
		c.maxSndWnd = max(c.maxSndWnd, wnd)
		if grew {
			e.wantTx(id)
		}
	}
	if f.sndWnd == 0 {
		f.retries = 0
	}
}

// newlyAcked advances snd_una over acked bytes (the FIN included when it is
// covered), frees TX ring space, takes an RTT sample and grows the window.
func (e *Engine) newlyAcked(id uint32, f *flow, c *flowCold, ackn tcp.Seq, acked uint32, hasTS bool) {
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
	ctr := &e.fs.Counters[id]
	ctr.AckedBytes.Add(uint64(data))
	ctr.Acks.Add(1)
	e.wantEvent(id)
	e.rttSample(id, f, c, ackn, hasTS)
	if f.flags&fRecovery != 0 && ackn.GreaterThanEq(f.recover) {
		f.flags &^= fRecovery
	}
	if f.flags&fRecovery == 0 {
		// Below the recovery point outside fast recovery: repairing
		// what an RTO presumed lost.
		f.growCwnd(data, c.pacer.Rate() != 0, ackn.LessThan(f.recover))
	}
	if f.sndUna == f.sndMax {
		e.timers.Cancel(id)
		f.tlp &^= tlpArmed | tlpReo
	} else {
		e.armLossTimer(id, f.sndMax)
	}
	e.wantTx(id)
}

// rttSample times one segment at a time in microseconds, never a
// retransmitted one (Karn). Timestamp echoes are unambiguous (RFC 7323 4)
// but only millisecond-grained (tcp.TSTickNs), so they serve only to end
// an RTO backoff that no timed segment ends.
func (e *Engine) rttSample(id uint32, f *flow, c *flowCold, ackn tcp.Seq, hasTS bool) {
	switch {
	case f.flags&fTiming != 0 && f.rttSeq.LessThan(ackn):
		rtt := e.nowUs - f.rttTime
		c.rto.Sample(rtt)
		ctr := &e.fs.Counters[id]
		ctr.LastRTT.Store(rtt)
		ctr.RTTSamples.Add(1)
		f.flags &^= fTiming
	case hasTS && e.opts.TSEcr != 0 && c.rto.Backoffs() > 0:
		c.rto.Sample(tcp.TSRTTUs(e.tsNow - e.opts.TSEcr))
	default:
		return
	}
	e.fs.Counters[id].SRTT.Store(c.rto.SRTT())
}

// growCwnd is NewReno-like growth: slow start below ssthresh, else about
// one MSS per window. A paced flow (paced: the slow path's congestion
// control set a rate) always grows as in slow start: its rate decides
// what it sends, and the window only bounds the data in flight after a
// loss, so it must not lag the rate.
//
// Both phases count the bytes an ACK covers, as Linux's tcp_slow_start
// and tcp_cong_avoid_ai do, not RFC 5681's one MSS per ACK: a receiver
// that ACKs once per GRO unit (Linux, up to 44 segments; our own large
// frames arrive as one) would otherwise hold slow start to one MSS per
// 64 KB, and congestion avoidance to 1/44 MSS per round trip. Counting
// bytes gives ACK division (RFC 3465 2.3) nothing: each byte is counted
// once. After an RTO (afterRTO: the ACK is below the recovery point),
// an ACK grows the window by one MSS at most (RFC 3465 3.2): one covering
// all that the receiver held would otherwise release a burst of half the
// old flight at once.
func (f *flow) growCwnd(acked uint32, paced, afterRTO bool) {
	mss := uint32(f.mss)
	if afterRTO {
		acked = min(acked, mss)
	}
	switch {
	case paced:
		f.cwnd += acked
	case f.cwnd < f.ssthresh:
		f.cwnd = min(f.cwnd+acked, f.ssthresh)
	default:
		f.cwnd += max(uint32(uint64(mss)*uint64(acked)/uint64(f.cwnd)), 1)
	}
	f.cwnd = min(f.cwnd, maxCwnd)
}

// ecnEcho reacts to ECE (RFC 3168 6.1.2): at most one window reduction
// per window of data, and CWR on the next new segment. A paced flow only
// counts the marked bytes: its congestion control (DCTCP) reacts to the
// fraction of them, and its segments all carry CWR (sendRange) so the
// receiver echoes each CE mark about once rather than until our reply.
func (e *Engine) ecnEcho(id uint32, f *flow, ackn tcp.Seq, acked uint32) {
	e.fs.Counters[id].ECNBytes.Add(uint64(acked))
	if e.fs.cold[id].pacer.Rate() != 0 {
		return
	}
	if f.flags&fRecovery == 0 && ackn.GreaterThanEq(f.recover) && acked > 0 {
		e.reduce(f)
		f.recover = f.sndMax
		f.flags |= fCwrPend
	}
}

// dupAck counts duplicate ACKs without SACK (RFC 5681 3.2).
func (e *Engine) dupAck(id uint32, f *flow) {
	if f.dupAcks < 255 {
		f.dupAcks++
	}
	if f.dupAcks == tcp.DupThresh && f.flags&fRecovery == 0 {
		e.enterRecovery(id, false)
	}
}

// canSendNew reports whether unsent data could go out now (queued, and
// within the peer's window and the congestion window).
func (e *Engine) canSendNew(id uint32, f *flow, c *flowCold) bool {
	queued, ok := e.txQueued(id, f, c)
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
	c.saveUndo(f)
	e.reduce(f)
	f.flags |= fRecovery
	f.flags &^= fTiming
	f.recover = f.sndMax
	if sack {
		seg := c.sb.EnterRecovery()
		queued, ok := e.txQueued(id, f, c)
		if !ok {
			return
		}
		if e.sendRange(id, seg.Start, seg.Len, f.sndUna.Add(queued)) > 0 {
			e.sent(f, c, seg)
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
