package fastpath

import (
	"gotas/internal/cc"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// txBudget is how many segments one flow sends per turn before others get
// theirs (a frame the queue cuts counts as the segments it becomes).
const txBudget = 16

// maxFrameSegments bounds the segments in one frame the queue cuts: a
// peer's tiny MSS (48 is allowed) would otherwise make a 64 KB frame
// 1,300 segments, each one more for the kernel to build in one go.
const maxFrameSegments = 64

// segmentsIn is how many segments of mss bytes n bytes take (at least 1:
// a FIN or an empty ACK is one).
func segmentsIn(n, mss uint32) uint32 { return max((n+mss-1)/mss, 1) }

// maxSegmentedPayload is the most payload a frame that the queue cuts
// into segments carries: an IPv4 packet's 65535 bytes less the largest
// IPv4 and TCP headers ours have (no IP options, at most 40 option bytes).
const maxSegmentedPayload = 0xffff - wire.IPv4MinHeaderLen - wire.TCPMaxHeaderLen

// pacedFramesPerSec: a paced flow's frame holds at most a 1/1000 s of
// its rate (Linux's sk_pacing_shift of 10).
const pacedFramesPerSec = 1000

// pawsWindow is the PAWS tolerance in timestamp ticks (Linux's
// TCP_PAWS_WINDOW).
const pawsWindow = 1

// Loss-probe state (flow.tlp).
const (
	tlpArmed  = 1 << iota // the flow's timer is a probe timeout, not the RTO
	tlpProbed             // a probe went out; only the RTO until snd_una moves
	tlpReo                // the flow's timer is RACK's reordering timer
)

// Probe timeout (RFC 8985 section 7.2): PTO = 2*SRTT plus ptoSlackUs for
// scheduling noise, plus ptoDelAckUs when a single segment is outstanding
// (the peer may delay its ACK; 40 ms is Linux's minimum delayed-ACK
// timeout, and a probe that fires anyway costs one segment), and never
// more than the RTO.
const (
	ptoSlackUs  = 2_000
	ptoDelAckUs = 40_000
)

// serveTx gives every flow on the transmit list one turn.
func (e *Engine) serveTx() bool {
	if len(e.txList) == 0 {
		return false
	}
	list := e.txList
	e.txList = e.txNext[:0]
	for _, id := range list {
		f := &e.fs.hot[id]
		f.flags &^= fInTx
		if f.flags&fAlive != 0 {
			e.transmit(id)
		}
	}
	e.txNext = list[:0]
	return true
}

// txQueued returns the bytes in the TX ring from snd_una on (unacked and
// unsent). The app owns the head: one out of range, behind data already
// sent, or moved after TX_CLOSE aborts the flow (GoneCorrupt) and reports
// false; the caller must then leave the flow alone.
func (e *Engine) txQueued(id uint32, f *flow, c *flowCold) (uint32, bool) {
	head := c.tx.Head.Load()
	n := head - f.txTail
	sent := uint32(f.sndMax - f.sndUna)
	if f.flags&fTxFinSent != 0 && f.flags&fTxFinAcked == 0 {
		sent-- // the FIN's sequence number is no ring byte
	}
	if n > c.tx.Mask+1 || n < sent || f.flags&fTxClose != 0 && head != c.txCloseHead {
		e.corrupt(id)
		return 0, false
	}
	return n, true
}

// transmit sends what the windows allow, up to txBudget segments.
func (e *Engine) transmit(id uint32) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	queued, ok := e.txQueued(id, f, c)
	if !ok {
		return
	}
	dataEnd := f.sndUna.Add(queued)
	mss := e.segPayload(f, c)
	ctr := &e.fs.Counters[id]
	c.pacer.SetRateKbps(ctr.RateKbps.Load())
	if limit := ctr.CwndCap.Load(); limit != 0 {
		f.cwnd = min(f.cwnd, max(limit, uint32(f.mss)))
	}
	exhausted := true
	for spent := uint32(0); spent < txBudget; {
		if c.pacer.Rate() != 0 && c.pacer.Next() > e.now {
			e.pace.Schedule(id, c.pacer.Next())
			return
		}
		var sent uint32
		if f.flags&fSACK != 0 && c.sb.InRecovery() {
			sent = e.sendRecovery(id, f, c, mss, dataEnd)
		} else {
			sent = e.sendNew(id, f, c, mss, dataEnd)
		}
		if sent == 0 {
			exhausted = false
			break
		}
		spent += segmentsIn(sent, mss)
		if f.sndMax.LessThan(f.sndNxt) {
			f.sndMax = f.sndNxt
		}
		if c.pacer.Rate() != 0 {
			c.pacer.Sent(e.now, sent)
		}
	}
	if f.sndNxt.LessThan(dataEnd) || f.flags&fTxClose != 0 && f.flags&fTxFinSent == 0 {
		if f.sndWnd == 0 && f.sndUna == f.sndMax {
			e.armPersist(id)
		}
	}
	if exhausted {
		e.wantTx(id) // budget used up: more may be allowed, next turn
	}
}

// segPayload is the payload of a full segment now: the MSS less the SACK
// blocks our ACKs carry while we hold out-of-order data (as Linux's
// tcp_current_mss), so data segments can carry them too.
//
// A telemetry flow also leaves room for the option and the records the
// switches append (cc.INTReserve), so the frame still fits after them;
// with a tiny MSS (a peer's choice) it does not, and its segments go
// without the option (intTx).
func (e *Engine) segPayload(f *flow, c *flowCold) uint32 {
	mss := uint32(f.mss)
	if f.flags&fSACK != 0 && !c.ooo.Empty() {
		mss -= sackOptionLen(min(c.ooo.Len(), f.sackLimit()))
	}
	if c.intOn && mss > 2*cc.INTReserve {
		mss -= cc.INTReserve
	}
	return mss
}

// segmentMax is the most new data one frame of flow f may carry: mss, or
// with segmentation offload (TxBatch.LargeFrame) as many full segments as
// fit in an IPv4 packet (maxFrameSegments at most), which the queue cuts
// (GSO). A paced flow's frames stay within a millisecond at its rate, as
// Linux's tcp_tso_autosize keeps them, so pacing keeps its grain. Single
// segments: a telemetry flow's, since switches append their records to
// each, and a paced ECN flow's, whose every segment carries CWR (sendRange)
// where segmentation keeps it on a frame's first segment only.
func (e *Engine) segmentMax(f *flow, c *flowCold, mss uint32) uint32 {
	room := e.tx.LargeFrame() - wire.EthernetHeaderLen - wire.IPv4MinHeaderLen - wire.TCPMaxHeaderLen
	paced := c.pacer.Rate() != 0
	if room <= int(mss) || c.intOn || mss != uint32(f.mss) || paced && f.flags&fECN != 0 {
		return mss
	}
	most := uint32(min(room, maxSegmentedPayload, maxFrameSegments*int(mss)))
	if paced {
		most = uint32(min(uint64(most), c.pacer.Rate()/pacedFramesPerSec))
	}
	return max(mss, most/mss*mss)
}

// sackLimit is how many SACK blocks fit in the option space (RFC 2018 3:
// 4, or 3 beside timestamps).
func (f *flow) sackLimit() int {
	if f.flags&fTS != 0 {
		return 3
	}
	return 4
}

// sackOptionLen is the option space k SACK blocks take, with the two NOPs
// that align them: kind, length and 8 bytes a block (RFC 2018 3).
func sackOptionLen(k int) uint32 { return 4 + 8*uint32(k) }

// sendRecovery sends the next segment RFC 6675's NextSeg picks while the
// pipe leaves room for it; 0 when nothing may go.
func (e *Engine) sendRecovery(id uint32, f *flow, c *flowCold, mss uint32, dataEnd tcp.Seq) uint32 {
	if c.sb.Pipe()+mss > f.cwnd {
		return 0
	}
	wndEdge := f.sndUna.Add(f.sndWnd)
	var newData uint32
	if f.sndNxt.LessThan(dataEnd) && f.sndNxt.LessThan(wndEdge) {
		newData = min(uint32(dataEnd-f.sndNxt), uint32(wndEdge-f.sndNxt))
	}
	seg := c.sb.NextSeg(newData)
	if seg.Kind == tcp.SegNone {
		return 0
	}
	sent := e.sendRange(id, seg.Start, seg.Len, dataEnd)
	if sent == 0 {
		return 0
	}
	if seg.Kind == tcp.SegNew {
		f.sndNxt = seg.End()
	}
	e.sent(f, c, seg)
	return sent
}

// sendNew sends the next segment from snd_nxt within the congestion and
// peer windows (new data, or again after go-back-N), and the FIN after the
// last byte once the app closed; 0 when nothing may go.
func (e *Engine) sendNew(id uint32, f *flow, c *flowCold, mss uint32, dataEnd tcp.Seq) uint32 {
	inflight := uint32(f.sndNxt - f.sndUna)
	wndEdge := f.sndUna.Add(f.sndWnd)
	var limit uint32
	if f.cwnd > inflight && f.sndNxt.LessThan(wndEdge) {
		limit = min(f.cwnd-inflight, uint32(wndEdge-f.sndNxt))
	}
	var n uint32
	if f.sndNxt.LessThan(dataEnd) {
		queued := uint32(dataEnd - f.sndNxt)
		most := e.segmentMax(f, c, mss)
		if f.sndNxt.LessThan(f.sndMax) {
			// Go-back-N: a frame is all retransmission (no ECT, Karn)
			// or all new data.
			most = min(most, max(uint32(f.sndMax-f.sndNxt), mss))
		}
		n = min(most, queued, limit)
		if n > mss && n%mss != 0 && (n < queued || c.nagle) {
			n -= n % mss // the runt tail waits, as it would on its own
		}
		if n < mss && inflight > 0 && (n < queued || c.nagle) {
			// Sender SWS avoidance (RFC 9293 3.8.6.2.1): with more
			// queued, wait for an ACK to open room for a full segment
			// rather than send a runt now; with Nagle (RFC 896), a runt
			// waits for the flight to be acknowledged.
			n = 0
		}
	}
	finDue := f.flags&fTxClose != 0 && f.sndNxt.Add(n) == dataEnd &&
		(f.flags&fTxFinSent == 0 || dataEnd.LessThan(f.sndMax) && f.sndNxt.LessThanEq(dataEnd))
	if n == 0 && !(finDue && f.sndNxt == dataEnd) {
		return 0
	}
	l := n
	if finDue {
		l++ // the FIN's sequence number
	}
	sent := e.sendRange(id, f.sndNxt, l, dataEnd)
	if sent == 0 {
		return 0
	}
	e.sent(f, c, tcp.Segment{Start: f.sndNxt, Len: l, Kind: tcp.SegNew})
	f.sndNxt = f.sndNxt.Add(l)
	return sent
}

// sendRange sends the segment [start, start+l); l includes a FIN when the
// range reaches past dataEnd. It returns the bytes sent, 0 if no buffer.
func (e *Engine) sendRange(id uint32, start tcp.Seq, l uint32, dataEnd tcp.Seq) uint32 {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	flags := wire.TCPFlagACK
	n := l
	if start.Add(l).GreaterThan(dataEnd) {
		n = uint32(dataEnd - start)
		flags |= wire.TCPFlagFIN
	}
	pos := f.txTail + uint32(start-f.sndUna)
	a, b := ringSpan(c.tx.Data, c.tx.Mask, pos, n)
	retx := start.LessThan(f.sndMax)
	if n > 0 {
		flags |= wire.TCPFlagPSH
		if (f.flags&fCwrPend != 0 || f.flags&fECN != 0 && c.pacer.Rate() != 0) && !retx {
			flags |= wire.TCPFlagCWR
			f.flags &^= fCwrPend
		}
	}
	// RFC 3168 6.1.5: retransmitted data is not ECN-capable.
	if !e.build(id, start, flags, a, b, n > 0 && !retx) {
		return 0
	}
	if flags&wire.TCPFlagFIN != 0 {
		if f.flags&fRxFin == 0 {
			f.flags |= fActiveClose
		}
		f.flags |= fTxFinSent
	}
	e.stats.txSegments.Add(uint64(segmentsIn(n, uint32(f.mss))))
	e.stats.txBytes.Add(uint64(n))
	e.timeSegment(id, f, start, l, retx, n)
	if _, armed := e.timers.Scheduled(id); !armed || f.sndUna == f.sndMax ||
		!retx && e.ptoAllowed(f, c) {
		// RFC 8985 7.2: new data restarts the probe timer.
		e.armLossTimer(id, tcp.MaxSeq(f.sndMax, start.Add(l)))
	}
	return l
}

// timeSegment starts an RTT measurement on new data when none runs, and
// ends one a retransmission covers (Karn: its ACK would be ambiguous).
func (e *Engine) timeSegment(id uint32, f *flow, start tcp.Seq, l uint32, retx bool, n uint32) {
	if retx {
		e.stats.txRetransmits.Add(1)
		e.fs.Counters[id].Retransmits.Add(1)
		if f.flags&fTiming != 0 && f.rttSeq.InWindow(start, l) {
			f.flags &^= fTiming
		}
		return
	}
	if f.flags&fTiming == 0 && n > 0 {
		f.flags |= fTiming
		f.rttSeq, f.rttTime = start, e.nowUs
	}
}

func ringSpan(data []byte, mask, pos, n uint32) (a, b []byte) {
	s := pos & mask
	first := min(n, mask+1-s)
	return data[s : s+first], data[:n-first]
}

// sendAck sends a pure ACK now.
func (e *Engine) sendAck(id uint32) {
	f := &e.fs.hot[id]
	if e.build(id, f.sndNxt, wire.TCPFlagACK, nil, nil, false) {
		e.stats.txAcks.Add(1)
	}
}

// build writes one segment of flow id into the transmit batch: Ethernet,
// IPv4 and TCP headers with timestamps and SACK blocks (as many as the
// MSS leaves room for beside the payload), the payload a+b, and a full
// software checksum; a payload longer than the MSS (segmentMax) makes a
// frame the queue cuts into segments, with the pseudo-header sum for the
// checksums it completes. ect marks the packet ECT(0).
func (e *Engine) build(id uint32, seq tcp.Seq, flags wire.TCPFlags, a, b []byte, ect bool) bool {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	n := len(a) + len(b)
	free, ok := e.rxFree(id, f, c)
	if !ok {
		return false
	}
	large := n > int(f.mss) // sendNew makes these only with TxBatch.LargeFrame
	var buf []byte
	if large {
		buf = e.tx.NextLarge()
	} else {
		buf = e.tx.Next()
	}
	if buf == nil {
		return false
	}
	e.segOptions(f, c, uint32(n))
	if f.flags&fEcePend != 0 {
		flags |= wire.TCPFlagECE
	}
	win := f.rwin.Field(f.rcvNxt, free)
	f.advWnd = uint32(win) << f.rwin.Shift()
	var tos uint8
	if ect && f.flags&fECN != 0 {
		tos = wire.ECNECT0
	}
	k := wire.PutEthernet(buf, f.rmac, e.cfg.MAC, wire.EtherTypeIPv4)
	ipOff := k
	k += wire.IPv4MinHeaderLen
	hl := wire.PutTCP(buf[k:], wire.TCPFields{SrcPort: f.key.LocalPort, DstPort: f.key.RemotePort,
		SeqNum: uint32(seq), AckNum: uint32(f.rcvNxt), Flags: flags, Window: win}, &e.txo)
	if k+hl+n > len(buf) {
		// Cannot happen while the MSS is clamped to the frame (Install,
		// pmtu); if it did, the segment is dropped, not the process.
		e.stats.txOversize.Add(1)
		return false
	}
	copy(buf[k+hl+copy(buf[k+hl:], a):], b)
	segLen := hl + n
	wire.PutIPv4(buf[ipOff:], wire.IPv4Fields{TOS: tos, TotalLen: uint16(wire.IPv4MinHeaderLen + segLen),
		DF: true, TTL: ipTTL, Protocol: wire.IPProtoTCP, Src: f.key.LocalIP, Dst: f.key.RemoteIP})
	total := k + segLen
	if total < minEthernetFrame {
		clear(buf[total:minEthernetFrame])
		total = minEthernetFrame
	}
	if large {
		wire.SetTCPPartialChecksum(f.key.LocalIP, f.key.RemoteIP, buf[k:k+segLen])
		e.tx.CommitSegments(total, f.mss)
	} else {
		wire.SetTCPChecksum(f.key.LocalIP, f.key.RemoteIP, buf[k:k+segLen])
		e.tx.Commit(total)
	}
	f.ackPend = 0
	f.flags &^= fInAck
	return true
}

// segOptions fills e.txo for a segment with n payload bytes: timestamps
// when negotiated, and SACK blocks for what we hold out of order, as many
// as fit beside the payload within the MSS.
func (e *Engine) segOptions(f *flow, c *flowCold, n uint32) {
	o := &e.txo
	o.Present = 0
	if f.flags&fTS != 0 {
		o.Present = wire.OptTimestamps
		o.TSVal, o.TSEcr = e.tsNow, f.tsRecent
	}
	e.intTx(f, c, n)
	if f.flags&fSACK == 0 || c.ooo.Empty() {
		return
	}
	limit := f.sackLimit()
	if n > 0 {
		room := uint32(f.mss) - min(n, uint32(f.mss))
		if room < sackOptionLen(1) {
			return
		}
		limit = min(limit, int(room-sackOptionLen(0))/8)
	}
	for _, s := range c.ooo.SACKBlocks(e.sacks[:0], limit) {
		o.AddSACK(wire.SACKBlock{Start: uint32(s.Start), End: uint32(s.End)})
	}
}

func (e *Engine) armRTO(id uint32) {
	rto := e.fs.cold[id].rto.Timeout()
	e.fs.hot[id].tlp &^= tlpArmed | tlpReo
	e.timers.Schedule(id, e.now+uint64(rto)*1000)
}

// ptoAllowed reports whether a tail loss probe (RFC 8985 section 7) may
// guard the flow's outstanding data instead of the RTO: SACK (which tells
// what the probe's ACK repaired), an RTT sample, no RTO backoff, no probe
// since snd_una last moved, and no go-back-N recovery.
func (e *Engine) ptoAllowed(f *flow, c *flowCold) bool {
	return f.flags&fSACK != 0 && f.tlp&tlpProbed == 0 && f.retries == 0 && c.rto.HasSample() &&
		(f.flags&fRecovery == 0 || c.sb.InRecovery())
}

// armLossTimer arms the timer that guards data outstanding up to end: the
// probe timeout when ptoAllowed, else the RTO.
func (e *Engine) armLossTimer(id uint32, end tcp.Seq) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	if !e.ptoAllowed(f, c) {
		e.armRTO(id)
		return
	}
	pto := 2*c.rto.SRTT() + ptoSlackUs
	if uint32(end-f.sndUna) <= uint32(f.mss) {
		pto += ptoDelAckUs
	}
	pto = min(pto, c.rto.Timeout())
	f.tlp = f.tlp&^tlpReo | tlpArmed
	e.timers.Schedule(id, e.now+uint64(pto)*1000)
}

// lossProbe runs when the probe timeout fires (RFC 8985 section 7.3): no
// ACK for a PTO means the tail of the flight, or its ACKs, may be lost,
// which only an RTO would otherwise repair. Outside recovery it sends one
// segment to elicit an ACK (with SACK blocks) that triggers fast
// recovery: new data if the peer's window has room, else the last
// segment again; the congestion window is left alone. In SACK recovery it
// presumes the retransmissions lost (RFC 6675 cannot see a lost
// retransmission) so the holes go out again. Then the RTO takes over
// until snd_una moves.
func (e *Engine) lossProbe(id uint32) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	f.tlp |= tlpProbed
	e.stats.lossProbes.Add(1)
	if c.sb.InRecovery() {
		c.rack.RetransmissionsLost(&c.sb)
		e.armRTO(id)
		e.wantTx(id)
		return
	}
	queued, ok := e.txQueued(id, f, c)
	if !ok {
		return
	}
	defer e.armRTO(id)
	dataEnd := f.sndUna.Add(queued)
	wndEdge := f.sndUna.Add(f.sndWnd)
	if f.sndNxt == f.sndMax && f.sndNxt.LessThan(dataEnd) && f.sndNxt.LessThan(wndEdge) {
		n := min(uint32(f.mss), uint32(dataEnd-f.sndNxt), uint32(wndEdge-f.sndNxt))
		if e.sendRange(id, f.sndNxt, n, dataEnd) > 0 {
			e.sent(f, c, tcp.Segment{Start: f.sndNxt, Len: n, Kind: tcp.SegNew})
			f.sndNxt = f.sndNxt.Add(n)
			f.sndMax = f.sndNxt
		}
		return
	}
	l := min(uint32(f.mss), uint32(f.sndMax-f.sndUna))
	if e.sendRange(id, f.sndMax.Sub(l), l, dataEnd) > 0 {
		e.sent(f, c, tcp.Segment{Start: f.sndMax.Sub(l), Len: l, Kind: tcp.SegRetransmit})
	}
}

func (e *Engine) armPersist(id uint32) {
	if _, ok := e.timers.Scheduled(id); ok {
		return
	}
	f := &e.fs.hot[id]
	rto := uint64(e.fs.cold[id].rto.Timeout()) << min(f.retries, 6)
	e.timers.Schedule(id, e.now+min(rto, 60_000_000)*1000)
}

// pollTimers fires due retransmission and persist timers, and releases
// paced flows whose time has come.
func (e *Engine) pollTimers() bool {
	worked := false
	for {
		n := e.pace.Poll(e.now, e.wheelOut[:])
		for _, id := range e.wheelOut[:n] {
			if e.fs.hot[id].flags&fAlive != 0 {
				e.wantTx(id)
			}
		}
		worked = worked || n > 0
		if n < len(e.wheelOut) {
			break
		}
	}
	for {
		n := e.timers.Poll(e.now, e.wheelOut[:])
		for _, id := range e.wheelOut[:n] {
			e.timeout(id)
		}
		worked = worked || n > 0
		if n < len(e.wheelOut) {
			break
		}
	}
	return worked
}

func (e *Engine) timeout(id uint32) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	if f.flags&fAlive == 0 {
		return
	}
	probe, reo := f.tlp&tlpArmed != 0, f.tlp&tlpReo != 0
	f.tlp &^= tlpArmed | tlpReo
	if reo && f.sndUna != f.sndMax {
		e.reoTimeout(id)
		return
	}
	if f.sndWnd == 0 {
		e.persistProbe(id, f, c)
		return
	}
	if f.sndUna == f.sndMax {
		e.wantTx(id) // the window opened: send what waits
		return
	}
	if probe {
		e.lossProbe(id)
		return
	}
	f.retries++
	if int(f.retries) > e.cfg.MaxRetries {
		e.gone(id, GoneTimeout)
		return
	}
	e.stats.rtos.Add(1)
	e.fs.Counters[id].RTOs.Add(1)
	flight := uint32(f.sndMax - f.sndUna)
	c.saveUndo(f)
	f.ssthresh = max(flight/2, 2*uint32(f.mss))
	f.cwnd = uint32(f.mss)
	f.flags &^= fRecovery
	f.recover = f.sndMax
	f.dupAcks = 0
	c.rack.OnRTO(&c.sb)
	c.rto.Backoff()
	e.goBack(f)
	e.armRTO(id)
	e.wantTx(id)
}

// persistProbe probes a zero window (RFC 9293 3.8.6.1): with data the
// peer has not acknowledged, one byte of it at snd_una (the peer's ACK of
// a probe it cannot take carries its current window); otherwise an ACK
// with an old sequence number, which any TCP answers the same way. Every
// ACK resets the count (updateWindow), so a peer that answers is probed
// for as long as it keeps its window closed, and one that stops answering
// is aborted after MaxRetries probes.
func (e *Engine) persistProbe(id uint32, f *flow, c *flowCold) {
	queued, ok := e.txQueued(id, f, c)
	if !ok {
		return
	}
	if queued == 0 && f.flags&fTxClose == 0 {
		return // nothing to send: no probe needed until there is
	}
	if f.retries++; int(f.retries) > e.cfg.MaxRetries {
		e.gone(id, GoneTimeout)
		return
	}
	e.stats.probes.Add(1)
	if queued > 0 {
		e.goBack(f)
		e.sendRange(id, f.sndUna, 1, f.sndUna.Add(queued))
		f.sndNxt = tcp.MaxSeq(f.sndNxt, f.sndUna.Add(1))
		f.sndMax = tcp.MaxSeq(f.sndMax, f.sndNxt)
	} else {
		e.build(id, f.sndUna.Sub(1), wire.TCPFlagACK, nil, nil, false)
	}
	e.timers.Cancel(id)
	e.armPersist(id)
}
