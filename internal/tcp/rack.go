package tcp

// RACKCap is the number of transmit-time records a RACK keeps per flow.
// A record is a run of sequence space sent at one time (a burst of
// segments sent in the same microsecond shares one record); the records
// cover [snd_una, HighData) contiguously. When a transmission needs more,
// the two neighbouring records whose times are closest are merged and keep
// the later time. That delays loss detection for the earlier octets (their
// loss is then found later by RACK, or by RFC 6675 or the RTO); when such
// an octet is delivered, RACK.xmit_ts may come out later, and RACK.rtt
// shorter, than exact by at most the merged gap, the closest pair's.
const RACKCap = 32

// RFC 8985 constants.
const (
	// rackReoWndMultMax caps RACK.reo_wnd_mult, which RFC 8985 section
	// 6.2 step 4 increments once per round trip that sees a D-SACK. The
	// window is min(min_RTT/4*mult, SRTT) anyway; 255 is Linux's
	// (u8 reo_wnd_steps) bound.
	rackReoWndMultMax = 255
	// dsackRecoveriesDecay is RACK.reo_wnd_persist's reset value: after
	// this many recoveries without a D-SACK the multiplier returns to 1
	// (RFC 8985 section 6.2 step 4).
	dsackRecoveriesDecay = 16
	// rackMinRTTWindowUs is the window of the RACK.min_RTT filter, which
	// RFC 8985 section 6.2 step 1 asks to be a windowed minimum rather
	// than the minimum over the connection's lifetime. 300 s is Linux's
	// tcp_min_rtt_wlen default.
	rackMinRTTWindowUs = 300_000_000
	// tsTickUs is the timestamp clock tick (TSTickNs) in microseconds.
	tsTickUs = TSTickNs / 1000
)

const (
	recRetx    = 1 << iota // the record's octets were last sent as a retransmission
	recLost                // RACK marked them lost (RFC 8985: xmit_ts = INFINITE_TS)
	recWasLost             // retransmitted after being marked lost
)

const (
	rackValid      = 1 << iota // xmitTs, endSeq and rtt hold a delivered segment's values
	rackReordering             // RACK.reordering_seen
	rackDSACKRound             // dsackRound is set (not "None")
)

// TSEcho is the RFC 7323 timestamp information of an ACK, which RACK's
// ambiguity check for retransmitted segments uses (RFC 8985 section 6.2
// step 2).
type TSEcho struct {
	OK  bool   // the ACK carried a timestamp option with a non-zero TSecr
	Ecr uint32 // its TSecr, in TSClock ticks
	Now uint32 // the sender's TSClock value now
}

// minRTTFilter is a windowed minimum: the minimum of the samples in the
// last window, approximated with a second minimum over the latest
// half-window that takes over when the first one expires.
type minRTTFilter struct {
	v0, t0 uint32 // current minimum and when it was sampled
	v1, t1 uint32 // minimum of the samples since t1s, sampled at t1
	t1s    uint32 // start of the half-window v1 covers
	ok     bool
}

func (f *minRTTFilter) update(now, v uint32) {
	const win = rackMinRTTWindowUs
	if !f.ok {
		*f = minRTTFilter{v0: v, t0: now, v1: v, t1: now, t1s: now, ok: true}
		return
	}
	if now-f.t1s > win/2 {
		f.v1, f.t1, f.t1s = v, now, now
	} else if v <= f.v1 {
		f.v1, f.t1 = v, now
	}
	if now-f.t0 > win {
		f.v0, f.t0 = f.v1, f.t1
		if now-f.t0 > win {
			f.v0, f.t0 = v, now
		}
	}
	if v <= f.v0 {
		f.v0, f.t0 = v, now
	}
}

// RACK is RFC 8985 RACK loss detection for one flow: per-transmission
// timestamps and the RACK.xmit_ts / end_seq / rtt / min_RTT / reo_wnd
// state. It works on a Scoreboard, whose OnTransmit and OnAck it wraps,
// and reports losses with Scoreboard.MarkLost, so NextSeg retransmits them
// (rule 1) and Pipe stops counting them. Times are microseconds on a
// uint32 clock that may wrap (only differences are used; a flight must
// not stay outstanding for 35 minutes).
//
// Use, instead of the Scoreboard's own OnTransmit and OnAck:
//
//	rack.OnTransmit(&sb, seg, nowUs) // every transmission, retransmissions included
//	info := rack.OnAck(&sb, nowUs, ack, blocks, TSEcho{...})
//	lost, timeout := rack.DetectLoss(&sb, nowUs, srttUs)
//	// lost > 0 && sb.ShouldEnterRecovery(): EnterRecovery as usual.
//	// timeout > 0: arm the reordering timer to call DetectLoss again
//	// in timeout µs (RFC 8985 section 6.3); 0: no timer needed.
//
// and rack.OnRTO(&sb) and rack.RetransmissionsLost(&sb) instead of the
// Scoreboard's. It does not allocate.
type RACK struct {
	start [RACKCap]Seq
	ts    [RACKCap]uint32
	fl    [RACKCap]uint8
	n     uint8
	end   Seq // end of the last record

	flags      uint8
	mult       uint8 // RACK.reo_wnd_mult
	persist    uint8 // RACK.reo_wnd_persist
	xmitTs     uint32
	endSeq     Seq
	rtt        uint32
	fack       Seq // RACK.fack
	dsackRound Seq
	minRTT     minRTTFilter
}

// Init resets the state (RFC 8985 section 6.1's initial values) for a
// flow whose snd_una is sndUna.
func (r *RACK) Init(sndUna Seq) {
	*r = RACK{end: sndUna, fack: sndUna, mult: 1, persist: dsackRecoveriesDecay}
}

// XmitTs returns RACK.xmit_ts, RACK.end_seq and RACK.rtt; ok is false
// until a delivered segment set them (and again once nothing is
// outstanding).
func (r *RACK) XmitTs() (xmitTs uint32, endSeq Seq, rtt uint32, ok bool) {
	return r.xmitTs, r.endSeq, r.rtt, r.flags&rackValid != 0
}

// MinRTT returns RACK.min_RTT in µs; ok is false before the first sample.
func (r *RACK) MinRTT() (uint32, bool) { return r.minRTT.v0, r.minRTT.ok }

// ReoWndMult returns RACK.reo_wnd_mult.
func (r *RACK) ReoWndMult() int { return int(r.mult) }

// ReorderingSeen returns RACK.reordering_seen.
func (r *RACK) ReorderingSeen() bool { return r.flags&rackReordering != 0 }

// Records returns the number of transmit-time records in use.
func (r *RACK) Records() int { return int(r.n) }

func (r *RACK) recEnd(k int) Seq {
	if k+1 < int(r.n) {
		return r.start[k+1]
	}
	return r.end
}

// sentAfter is RFC 8985's RACK_sent_after(t1, seq1, t2, seq2).
func sentAfter(t1 uint32, seq1 Seq, t2 uint32, seq2 Seq) bool {
	d := int32(t1 - t2)
	return d > 0 || d == 0 && seq1.GreaterThan(seq2)
}

// OnTransmit records seg's transmission at now (RFC 8985 section 6.1:
// Segment.xmit_ts, and Segment.retransmitted for octets below HighData),
// clears RACK's lost mark of retransmitted octets, and passes seg to
// sb.OnTransmit.
func (r *RACK) OnTransmit(sb *Scoreboard, seg Segment, now uint32) {
	oldHigh := sb.highData
	sb.OnTransmit(seg)
	if seg.Len == 0 {
		return
	}
	s, e := MaxSeq(seg.Start, sb.highACK), seg.End()
	if !s.LessThan(e) {
		return
	}
	if s.LessThan(oldHigh) {
		// Retransmitted octets, record by record so that the ones
		// repairing a RACK loss stay apart (Pipe counts them once).
		re := MinSeq(e, oldHigh)
		for x := s; x.LessThan(re); {
			fl, y := uint8(recRetx), re
			switch {
			case r.n == 0 || !x.LessThan(r.end):
			case x.LessThan(r.start[0]):
				y = MinSeq(re, r.start[0])
			default:
				k := r.find(x)
				y = MinSeq(re, r.recEnd(k))
				if r.fl[k]&recLost != 0 {
					fl |= recWasLost
				}
			}
			r.write(x, y, now, fl)
			x = y
		}
		s = re
	}
	if s.LessThan(e) {
		r.write(s, e, now, 0)
	}
}

// write records that [s, e) was sent at ts with flags fl.
func (r *RACK) write(s, e Seq, ts uint32, fl uint8) {
	if r.n == 0 {
		r.start[0], r.ts[0], r.fl[0], r.n, r.end = s, ts, fl, 1, e
		return
	}
	if s.LessThan(r.start[0]) {
		s = r.start[0] // not covered: never timed, left alone
		if !s.LessThan(e) {
			return
		}
	}
	if s.GreaterThanEq(r.end) {
		// New data. A gap (transmissions RACK did not see) takes this
		// time too, which can only delay its loss detection.
		k := int(r.n) - 1
		if r.ts[k] == ts && r.fl[k] == fl {
			r.end = e
			return
		}
		if r.n == RACKCap {
			r.mergeOne()
			k = int(r.n) - 1
			if r.ts[k] == ts && r.fl[k] == fl {
				r.end = e
				return
			}
		}
		k++
		r.start[k], r.ts[k], r.fl[k] = r.end, ts, fl
		r.n++
		r.end = e
		return
	}
	if e.GreaterThan(r.end) {
		old := r.end
		r.write(s, old, ts, fl)
		r.write(old, e, ts, fl)
		return
	}
	// Overwrite [s, e) inside the records: split at both ends, then
	// collapse the records in between into one.
	a := r.split(s)
	if a < 0 {
		return
	}
	b := r.split(e) // index of the record starting at e, or n
	if b < 0 {
		return
	}
	a = r.find(s) // split(e) may have merged records below
	if r.start[a] != s {
		// A merge swallowed s: the record at a starts below it; the
		// retransmission time then covers that record too, which only
		// delays loss detection of its earlier octets.
		s = r.start[a]
	}
	r.start[a], r.ts[a], r.fl[a] = s, ts, fl
	if d := b - a - 1; d > 0 {
		copy(r.start[a+1:], r.start[b:r.n])
		copy(r.ts[a+1:], r.ts[b:r.n])
		copy(r.fl[a+1:], r.fl[b:r.n])
		r.n -= uint8(d)
	}
	r.coalesce(a)
}

// find returns the index of the record containing seq (which must lie in
// [start[0], end)), or n if seq == end.
func (r *RACK) find(seq Seq) int {
	base := r.start[0]
	o := uint32(seq - base)
	k := 0
	for k+1 < int(r.n) && uint32(r.start[k+1]-base) <= o {
		k++
	}
	if seq == r.end {
		return int(r.n)
	}
	return k
}

// split makes a record start at seq (within [start[0], end]) and returns
// its index (n when seq == end). It merges other records when full; -1
// only if that is impossible (never with RACKCap >= 3).
func (r *RACK) split(seq Seq) int {
	k := r.find(seq)
	if k == int(r.n) || r.start[k] == seq {
		return k
	}
	if r.n == RACKCap {
		if !r.mergeOne() {
			return -1
		}
		k = r.find(seq)
		if r.start[k] == seq {
			return k
		}
	}
	copy(r.start[k+2:r.n+1], r.start[k+1:r.n])
	copy(r.ts[k+2:r.n+1], r.ts[k+1:r.n])
	copy(r.fl[k+2:r.n+1], r.fl[k+1:r.n])
	r.start[k+1], r.ts[k+1], r.fl[k+1] = seq, r.ts[k], r.fl[k]
	r.n++
	return k + 1
}

// remove deletes record k, which its predecessor absorbs.
func (r *RACK) remove(k int) {
	copy(r.start[k:r.n-1], r.start[k+1:r.n])
	copy(r.ts[k:r.n-1], r.ts[k+1:r.n])
	copy(r.fl[k:r.n-1], r.fl[k+1:r.n])
	r.n--
}

// coalesce merges record k with identical neighbours.
func (r *RACK) coalesce(k int) {
	if k+1 < int(r.n) && r.ts[k+1] == r.ts[k] && r.fl[k+1] == r.fl[k] {
		r.remove(k + 1)
	}
	if k > 0 && r.ts[k-1] == r.ts[k] && r.fl[k-1] == r.fl[k] {
		r.remove(k)
	}
}

// mergeOne frees a record: it merges the neighbouring pair with equal lost
// state whose times are closest, keeping the later time (so no octet looks
// sent earlier than it was) and the retransmitted flag of either. If every
// pair differs in lost state, the top pair merges as not lost.
func (r *RACK) mergeOne() bool {
	if r.n < 2 {
		return false
	}
	best, bestCost := -1, uint32(0)
	for k := 1; k < int(r.n); k++ {
		if (r.fl[k]^r.fl[k-1])&recLost != 0 {
			continue
		}
		d := r.ts[k] - r.ts[k-1]
		if int32(d) < 0 {
			d = -d
		}
		if best < 0 || d < bestCost {
			best, bestCost = k, d
		}
	}
	lostKeep := uint8(recLost)
	if best < 0 {
		best, lostKeep = int(r.n)-1, 0
	}
	k := best
	if int32(r.ts[k]-r.ts[k-1]) > 0 {
		r.ts[k-1] = r.ts[k]
	}
	r.fl[k-1] = (r.fl[k-1]|r.fl[k])&recRetx | r.fl[k-1]&r.fl[k]&(lostKeep|recWasLost)
	r.remove(k)
	return true
}

// trim drops the records below snd_una.
func (r *RACK) trim(una Seq) {
	if r.n == 0 {
		r.end = una
		return
	}
	if una.GreaterThanEq(r.end) {
		r.n, r.end = 0, una
		return
	}
	if !una.GreaterThan(r.start[0]) {
		return
	}
	k := r.find(una)
	if k > 0 {
		copy(r.start[:r.n-uint8(k)], r.start[k:r.n])
		copy(r.ts[:r.n-uint8(k)], r.ts[k:r.n])
		copy(r.fl[:r.n-uint8(k)], r.fl[k:r.n])
		r.n -= uint8(k)
	}
	r.start[0] = una
}

// OnAck applies an ACK to sb (Scoreboard.OnAck) and runs RFC 8985 section
// 6.2 steps 1 to 4 for it: for the segments it newly acknowledges,
// cumulatively or selectively, it updates RACK.min_RTT, RACK.rtt,
// RACK.xmit_ts and RACK.end_seq (steps 1 and 2; a retransmitted segment
// counts only if the ACK cannot be for its original: its TSecr is not
// older than the retransmission and the RTT is not below min_RTT), detects
// reordering (step 3: a never-retransmitted segment delivered below
// RACK.fack), and adapts reo_wnd_mult to D-SACKs (step 4). Call
// DetectLoss afterwards (step 5).
func (r *RACK) OnAck(sb *Scoreboard, now uint32, ack Seq, blocks []SACKBlock, ts TSEcho) AckInfo {
	if ack.GreaterThan(sb.highData) {
		return sb.OnAck(ack, blocks)
	}
	oldUna := sb.highACK
	wasRTO := sb.flags&sbRTOHold != 0
	skip := 0
	if isDSACK(ack, blocks) {
		skip = 1 // duplicate data: nothing newly delivered
	}
	var (
		found          bool
		bestTs         uint32
		bestEnd        Seq
		fack           = r.fack
		reordering     bool
		minRTT, haveMn = r.minRTT.v0, r.minRTT.ok
	)
	for k := 0; k < int(r.n); k++ {
		rs, re := r.start[k], r.recEnd(k)
		has, lo, hi := r.newly(sb, rs, re, oldUna, ack, blocks[skip:])
		if !has {
			continue
		}
		retx := r.fl[k]&recRetx != 0
		if !retx && lo.LessThan(r.fack) {
			reordering = true
		}
		if hi.GreaterThan(fack) {
			fack = hi
		}
		t := r.ts[k]
		if retx {
			rtt := now - t
			if ts.OK && ts.Now-ts.Ecr > rtt/tsTickUs+1 {
				continue // the echo predates the retransmission
			}
			if haveMn && rtt < minRTT {
				continue // too fast to be the retransmission's ACK
			}
		}
		if !found || sentAfter(t, hi, bestTs, bestEnd) {
			found, bestTs, bestEnd = true, t, hi
		}
	}
	info := sb.OnAck(ack, blocks)
	if found {
		rtt := now - bestTs
		r.minRTT.update(now, rtt)
		r.rtt = rtt
		if r.flags&rackValid == 0 || sentAfter(bestTs, bestEnd, r.xmitTs, r.endSeq) {
			r.xmitTs, r.endSeq = bestTs, bestEnd
			r.flags |= rackValid
		}
	}
	if reordering {
		r.flags |= rackReordering
	}
	r.fack = MaxSeq(fack, sb.highACK)
	// Step 4: D-SACK driven reordering window adaptation.
	if r.flags&rackDSACKRound != 0 && sb.highACK.GreaterThanEq(r.dsackRound) {
		r.flags &^= rackDSACKRound
	}
	if r.flags&rackDSACKRound == 0 && info.DSACK {
		r.flags |= rackDSACKRound
		r.dsackRound = sb.highData
		if r.mult < rackReoWndMultMax {
			r.mult++
		}
		r.persist = dsackRecoveriesDecay
	} else if info.RecoveryDone || wasRTO && sb.flags&sbRTOHold == 0 {
		if r.persist > 0 {
			r.persist--
		}
		if r.persist == 0 {
			r.mult = 1
		}
	}
	r.trim(sb.highACK)
	if sb.highACK == sb.highData {
		// Nothing outstanding: every later segment is sent after
		// RACK.xmit_ts, so forgetting it changes no decision and keeps
		// the wrapping clock's differences small.
		r.flags &^= rackValid
	}
	return info
}

// newly reports whether record [rs, re) has octets this ACK delivers for
// the first time (in [oldUna, ack) or a SACK block, and not yet SACKed in
// sb), and the lowest and highest ends of such runs.
func (r *RACK) newly(sb *Scoreboard, rs, re, oldUna, ack Seq, blocks []SACKBlock) (has bool, lo, hi Seq) {
	for d := -1; d < len(blocks); d++ {
		var ds, de Seq
		if d < 0 {
			ds, de = oldUna, ack
		} else {
			ds, de = blocks[d].Start, blocks[d].End
			if !ds.LessThan(de) || de.GreaterThan(sb.highData) || de.LessThanEq(oldUna) {
				continue
			}
		}
		a, b := MaxSeq(MaxSeq(ds, rs), oldUna), MinSeq(de, re)
		if !a.LessThan(b) {
			continue
		}
		// Subtract the ranges SACKed before this ACK.
		x := a
		for i := 0; i < int(sb.n) && x.LessThan(b); i++ {
			sr := sb.r[i]
			if sr.End.LessThanEq(x) {
				continue
			}
			if sr.Start.GreaterThanEq(b) {
				break
			}
			if x.LessThan(sr.Start) {
				lo, hi, has = runEnds(has, lo, hi, sr.Start)
			}
			x = MaxSeq(x, sr.End)
		}
		if x.LessThan(b) {
			lo, hi, has = runEnds(has, lo, hi, b)
		}
	}
	return has, lo, hi
}

func runEnds(has bool, lo, hi, end Seq) (Seq, Seq, bool) {
	if !has {
		return end, end, true
	}
	return MinSeq(lo, end), MaxSeq(hi, end), true
}

// ReoWnd returns RACK.reo_wnd (RFC 8985 section 6.2 step 4) in µs:
// min(min_RTT/4 * reo_wnd_mult, SRTT), or 0 when no reordering has been
// seen and the flow is in recovery or has DupThresh segments SACKed.
func (r *RACK) ReoWnd(sb *Scoreboard, srtt uint32) uint32 {
	if r.flags&rackReordering == 0 {
		if sb.flags&(sbRecovery|sbRTOHold) != 0 {
			return 0
		}
		if sb.mss > 0 && (sb.SackedBytes()+sb.mss-1)/sb.mss >= DupThresh {
			return 0
		}
	}
	if !r.minRTT.ok {
		return srtt
	}
	return uint32(min(uint64(r.minRTT.v0)/4*uint64(r.mult), uint64(srtt)))
}

// DetectLoss is RFC 8985 section 6.2 step 5 (RACK_detect_loss), also the
// reordering timer's action (section 6.3): every outstanding, unSACKed
// run sent before RACK.xmit_ts (or at the same time with a lower end) is
// lost once RACK.rtt + reo_wnd has passed since it was sent. srtt is the
// RFC 6298 smoothed RTT in µs. Lost runs are marked in sb (MarkLost);
// lost counts their newly lost unSACKed octets. timeout > 0 is, as in the
// RFC, the largest time in µs that a candidate still has to wait before it
// counts as lost: arm the reordering timer for it and call DetectLoss
// when it fires (section 6.3); 0 means no timer is needed.
func (r *RACK) DetectLoss(sb *Scoreboard, now, srtt uint32) (lost, timeout uint32) {
	if r.flags&rackValid != 0 {
		reo := r.ReoWnd(sb, srtt)
		for k := 0; k < int(r.n); k++ {
			if r.fl[k]&recLost != 0 {
				continue
			}
			t := r.ts[k]
			rs, re := r.start[k], r.recEnd(k)
			d := int32(t - r.xmitTs)
			if d > 0 {
				continue // sent after RACK.xmit_ts
			}
			end := re
			if d == 0 {
				if !r.endSeq.GreaterThan(rs) {
					continue
				}
				end = MinSeq(re, r.endSeq)
			}
			u := sb.unsackedIn(rs, end)
			if u == 0 {
				continue
			}
			remaining := int32(t + r.rtt + reo - now)
			if remaining > 0 {
				timeout = max(timeout, uint32(remaining))
				continue
			}
			if end != re {
				// Only the part below RACK.end_seq is lost. Splitting
				// needs a free record; without one, wait for a later
				// RACK.xmit_ts (or RFC 6675) rather than merge here.
				if r.n == RACKCap {
					continue
				}
				r.split(end)
			}
			r.fl[k] |= recLost
			lost += u
		}
	}
	r.syncMarks(sb)
	return lost, timeout
}

// syncMarks rewrites sb's lost marks from the records.
func (r *RACK) syncMarks(sb *Scoreboard) {
	sb.ClearLost()
	for k := 0; k < int(r.n); k++ {
		b := SACKBlock{MaxSeq(r.start[k], sb.highACK), MinSeq(r.recEnd(k), sb.highData)}
		if !b.Start.LessThan(b.End) {
			continue
		}
		switch {
		case r.fl[k]&recLost != 0:
			sb.lost.add(sb, b)
		case r.fl[k]&recWasLost != 0:
			sb.fixed.add(sb, b)
		}
	}
}

// RetransmissionsLost is Scoreboard.RetransmissionsLost for a RACK flow
// (the probe timeout fired in recovery): every retransmission is presumed
// lost, so RACK marks the unacknowledged retransmitted octets lost and
// NextSeg offers them again.
func (r *RACK) RetransmissionsLost(sb *Scoreboard) {
	if !sb.InRecovery() {
		return
	}
	sb.RetransmissionsLost()
	for k := 0; k < int(r.n); k++ {
		if r.fl[k]&recRetx != 0 {
			r.fl[k] = r.fl[k]&^recWasLost | recLost
		}
	}
	r.syncMarks(sb)
}

// OnRTO handles a retransmission timeout: sb.OnRTO (which discards the
// SACK information and lost marks; the caller goes back to snd_una) and
// RACK's lost marks, which the go-back-N retransmissions supersede. RFC
// 8985 section 6.3's RTO marking is not needed with go-back-N.
func (r *RACK) OnRTO(sb *Scoreboard) {
	sb.OnRTO()
	for k := 0; k < int(r.n); k++ {
		r.fl[k] &^= recLost | recWasLost
	}
}

// unsackedIn returns the number of octets of [a, b) (inside [snd_una,
// HighData)) that are not SACKed.
func (sb *Scoreboard) unsackedIn(a, b Seq) uint32 {
	a = MaxSeq(a, sb.highACK)
	b = MinSeq(b, sb.highData)
	if !a.LessThan(b) {
		return 0
	}
	u := uint32(b - a)
	for i := 0; i < int(sb.n); i++ {
		s, e := MaxSeq(sb.r[i].Start, a), MinSeq(sb.r[i].End, b)
		if s.LessThan(e) {
			u -= uint32(e - s)
		}
	}
	return u
}
