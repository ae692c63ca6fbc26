package tcp

// DupThresh is RFC 6675's duplicate-ACK threshold.
const DupThresh = 3

// ScoreboardCap is the number of disjoint SACKed ranges a Scoreboard keeps.
const ScoreboardCap = 16

// LostCap is the number of disjoint lost-marked ranges (MarkLost, fed by
// RACK) a Scoreboard keeps. Marks may span SACKed data, so only unSACKed
// data that is not lost separates two of them; when they do not fit, the
// highest are forgotten (RACK.DetectLoss writes them again on its next
// call).
const LostCap = 8

// SegKind says why Scoreboard.NextSeg chose a segment (the RFC 6675 NextSeg
// rule) and tells OnTransmit how to account for it.
type SegKind uint8

const (
	// SegNone: nothing may be sent now.
	SegNone SegKind = iota
	// SegFastRetransmit: the first retransmission on entering loss
	// recovery (RFC 6675 section 5 step 4.3), returned by EnterRecovery.
	SegFastRetransmit
	// SegLost: NextSeg rule 1, an unSACKed range that IsLost.
	SegLost
	// SegNew: NextSeg rule 2, previously unsent data starting at HighData.
	// Also the kind to use for ordinary transmissions of new data.
	SegNew
	// SegUnsacked: NextSeg rule 3, an unSACKed range not (yet) deemed lost.
	SegUnsacked
	// SegRescue: NextSeg rule 4, the one rescue retransmission per
	// recovery, which includes the highest outstanding unSACKed octet.
	SegRescue
	// SegRetransmit: a retransmission decided outside NextSeg (for
	// example go-back-N after an RTO); it only advances HighRxt.
	SegRetransmit
)

// Segment is a sequence range to send, and why.
type Segment struct {
	Start Seq
	Len   uint32
	Kind  SegKind
}

// End returns the sequence number after the segment's last byte.
func (s Segment) End() Seq { return s.Start.Add(s.Len) }

// AckInfo describes what one ACK did to the scoreboard.
type AckInfo struct {
	Acked  uint32 // bytes newly cumulatively acknowledged (snd_una advance)
	Sacked uint32 // bytes SACKed for the first time by this ACK
	// DupAck: the ACK carried new SACK information (RFC 6675 section 2
	// definition, which, unlike RFC 5681's, holds even if the ACK also
	// advanced snd_una or carried data).
	DupAck bool
	// RecoveryDone: the cumulative ACK reached RecoveryPoint, ending the
	// loss-recovery phase.
	RecoveryDone bool
	// Ignored: the ACK acknowledged data never sent (beyond HighData) and
	// was ignored entirely.
	Ignored bool
	// DSACK: the ACK's first SACK block is a D-SACK (RFC 2883 section 4):
	// it lies below the ACK's cumulative acknowledgment, or inside its
	// second SACK block. It reports data the receiver got twice; it is
	// never counted as SACK information (Sacked, DupAck).
	DSACK bool
	// DSACKBlock is that first block when DSACK is set.
	DSACKBlock SACKBlock
	// Spurious: with this ACK's D-SACK, every retransmission of the
	// current recovery episode (since EnterRecovery or OnRTO) has been
	// reported duplicate, so the episode was spurious (RFC 3708 section
	// 3, the Linux-style "undo"): restore the cwnd and ssthresh saved
	// before it. Reported once per episode; see RecoverySpurious.
	Spurious bool
}

const (
	sbRecovery  = 1 << iota // in RFC 6675 loss recovery
	sbRescueSet             // rescueRxt is defined
	sbRTOHold               // after an RTO: no new recovery until snd_una >= recoveryPoint
	sbUndo                  // a recovery episode's undo accounting is active
	sbUndone                // AckInfo.Spurious was reported for the episode
)

// Scoreboard is the sender's RFC 6675 SACK scoreboard and loss-recovery
// state for one connection: the SACKed ranges between snd_una (HighACK) and
// snd_max (HighData), HighRxt, RescueRxt, RecoveryPoint and DupAcks. It
// tracks sequence space only; congestion control (cwnd, ssthresh, or the
// rate that TAS's slow path sets) stays with the caller, which compares
// Pipe() with its budget before each NextSeg().
//
// Use per ACK:
//
//	info := sb.OnAck(ack, sackBlocks)
//	if info.DupAck && sb.ShouldEnterRecovery() {
//		seg := sb.EnterRecovery() // also: cut cwnd / rate
//		send(seg); sb.OnTransmit(seg)
//	}
//	for sb.InRecovery() && sb.Pipe()+mss <= cwnd {
//		seg := sb.NextSeg(sendableNewBytes)
//		if seg.Kind == SegNone { break }
//		send(seg); sb.OnTransmit(seg)
//	}
//
// and on every ordinary transmission OnTransmit(Segment{snd_nxt, n, SegNew}).
//
// HighData, HighRxt, RescueRxt and RecoveryPoint are stored as exclusive
// ends (one past the RFC's inclusive "highest octet").
//
// Beyond RFC 6675 the scoreboard takes loss marks from RACK (MarkLost,
// see RACK), reports D-SACKs (AckInfo.DSACK) and counts, per recovery
// episode, retransmitted octets against D-SACKed ones to tell a spurious
// recovery (AckInfo.Spurious, RecoverySpurious).
//
// Capacity: when an ACK reports a new range disjoint from ScoreboardCap
// recorded ones, the scoreboard keeps the ScoreboardCap lowest ranges and
// forgets the highest. Forgetting SACK information is always safe (the
// data is at worst retransmitted needlessly); recording a hole as SACKed
// would not be, so ranges are never merged across a hole.
type Scoreboard struct {
	highACK       Seq // snd_una
	highData      Seq // one past the highest octet sent
	highRxt       Seq // one past the highest octet retransmitted
	rescueRxt     Seq
	recoveryPoint Seq
	mss           uint32
	n             uint8
	dupAcks       uint8
	flags         uint8
	r             [ScoreboardCap]SACKBlock
	lost          markSet // lost-marked ranges (MarkLost)
	fixed         markSet // lost-marked ranges since retransmitted, disjoint from lost

	// Undo accounting for the current recovery episode (RFC 3708).
	undoMarker Seq    // snd_una when the episode started
	undoEnd    Seq    // one past the highest octet retransmitted in it
	undoRetx   uint32 // octets retransmitted in the episode
	undoDSACK  uint32 // octets of those reported by D-SACKs
}

// Init resets the scoreboard for a connection whose snd_una (= snd_nxt) is
// sndUna and whose sender MSS is mss.
func (sb *Scoreboard) Init(sndUna Seq, mss uint32) {
	*sb = Scoreboard{highACK: sndUna, highData: sndUna, highRxt: sndUna,
		rescueRxt: sndUna, recoveryPoint: sndUna, mss: mss}
}

// SetMSS changes the SMSS used by IsLost and to size segments.
func (sb *Scoreboard) SetMSS(mss uint32) { sb.mss = mss }

// SndUna returns HighACK: the first unacknowledged sequence number.
func (sb *Scoreboard) SndUna() Seq { return sb.highACK }

// HighData returns one past the highest sequence number sent.
func (sb *Scoreboard) HighData() Seq { return sb.highData }

// HighRxt returns one past the highest sequence number retransmitted in
// this recovery phase (snd_una or less when none).
func (sb *Scoreboard) HighRxt() Seq { return sb.highRxt }

// RecoveryPoint returns the HighData recorded when recovery was entered (or
// at the last RTO).
func (sb *Scoreboard) RecoveryPoint() Seq { return sb.recoveryPoint }

// InRecovery reports whether the RFC 6675 loss-recovery phase is active.
func (sb *Scoreboard) InRecovery() bool { return sb.flags&sbRecovery != 0 }

// DupAcks returns the RFC 6675 duplicate-ACK counter (saturates at 255).
func (sb *Scoreboard) DupAcks() int { return int(sb.dupAcks) }

// Len returns the number of SACKed ranges recorded.
func (sb *Scoreboard) Len() int { return int(sb.n) }

// At returns SACKed range i in increasing sequence order.
func (sb *Scoreboard) At(i int) SACKBlock { return sb.r[:sb.n][i] }

// SackedBytes returns the number of bytes above snd_una currently SACKed.
func (sb *Scoreboard) SackedBytes() uint32 {
	var t uint32
	for i := 0; i < int(sb.n); i++ {
		t += sb.r[i].Len()
	}
	return t
}

// HighSACK returns one past the highest SACKed octet, or snd_una when
// nothing is SACKed.
func (sb *Scoreboard) HighSACK() Seq {
	if sb.n == 0 {
		return sb.highACK
	}
	return sb.r[sb.n-1].End
}

// lostThresholdBytes: IsLost's byte rule is "more than (DupThresh-1)*SMSS".
func (sb *Scoreboard) lostThresholdBytes() uint32 { return (DupThresh - 1) * sb.mss }

// OnTransmit records that seg was sent (RFC 6675 steps C.2 and C.3, and 4.3
// for SegFastRetransmit). Call it for every transmission, including
// ordinary new data (SegNew).
func (sb *Scoreboard) OnTransmit(seg Segment) {
	end := seg.End()
	retx := seg.Start.LessThan(sb.highData)
	if retx {
		rend := MinSeq(end, sb.highData)
		if sb.lost.n > 0 {
			// The lost-marked octets sent again: one copy in flight.
			for k := 0; k < int(sb.lost.n); k++ {
				a, b := MaxSeq(seg.Start, sb.lost.r[k].Start), MinSeq(rend, sb.lost.r[k].End)
				if a.LessThan(b) {
					sb.fixed.add(sb, SACKBlock{a, b})
				}
			}
			sb.lost.remove(seg.Start, rend)
		}
		if sb.flags&sbUndo != 0 && sb.flags&(sbRecovery|sbRTOHold) != 0 {
			if s := MaxSeq(seg.Start, sb.highACK); s.LessThan(rend) {
				sb.undoRetx += uint32(rend - s)
				sb.undoEnd = MaxSeq(sb.undoEnd, rend)
			}
		}
	}
	if end.GreaterThan(sb.highData) {
		sb.highData = end
	}
	if !retx {
		return
	}
	switch seg.Kind {
	case SegRescue:
		// Rule 4: RescueRxt = RecoveryPoint, HighRxt MUST NOT be updated.
		sb.rescueRxt = sb.recoveryPoint
		sb.flags |= sbRescueSet
	case SegFastRetransmit:
		// Step 4.3: set both HighRxt and RescueRxt to the segment's end.
		sb.highRxt = MaxSeq(sb.highRxt, end)
		sb.rescueRxt = end
		sb.flags |= sbRescueSet
	default:
		sb.highRxt = MaxSeq(sb.highRxt, end)
	}
}

// OnAck applies an incoming ACK: the cumulative acknowledgment ack and the
// ACK's SACK blocks (RFC 6675 Update()). Blocks that are empty, reversed,
// reach beyond HighData, or lie entirely below snd_una (D-SACK) are
// ignored; blocks straddling snd_una are trimmed. An ack below snd_una only
// contributes its SACK blocks. An ack beyond HighData is ignored entirely.
//
// A D-SACK first block (RFC 2883) is reported in AckInfo.DSACK and counts
// towards the undo of the current recovery episode (AckInfo.Spurious).
func (sb *Scoreboard) OnAck(ack Seq, blocks []SACKBlock) AckInfo {
	var info AckInfo
	if ack.GreaterThan(sb.highData) {
		info.Ignored = true
		return info
	}
	if isDSACK(ack, blocks) {
		b := blocks[0]
		info.DSACK, info.DSACKBlock = true, b
		if sb.flags&(sbUndo|sbUndone) == sbUndo && b.End.LessThanEq(sb.highData) {
			// Only octets retransmitted in the episode can be its
			// spurious retransmissions.
			s, e := MaxSeq(b.Start, sb.undoMarker), MinSeq(b.End, sb.undoEnd)
			if s.LessThan(e) {
				sb.undoDSACK += uint32(e - s)
			}
			if sb.undoRetx > 0 && sb.undoDSACK >= sb.undoRetx {
				info.Spurious = true
				sb.flags |= sbUndone
			}
		}
	}
	if ack.GreaterThan(sb.highACK) {
		info.Acked = uint32(ack - sb.highACK)
		sb.highACK = ack
		sb.dropBelow(ack)
		sb.lost.trim(ack)
		sb.fixed.trim(ack)
		sb.dupAcks = 0 // "If the incoming ACK is a cumulative acknowledgment"
		if sb.highRxt.LessThan(ack) {
			sb.highRxt = ack
		}
		if ack.GreaterThanEq(sb.recoveryPoint) {
			if sb.flags&sbRecovery != 0 {
				info.RecoveryDone = true
			}
			sb.flags &^= sbRecovery | sbRTOHold
		}
	}
	for _, b := range blocks {
		if !b.Start.LessThan(b.End) || b.End.GreaterThan(sb.highData) || b.End.LessThanEq(sb.highACK) {
			continue
		}
		if b.Start.LessThan(sb.highACK) {
			b.Start = sb.highACK
		}
		info.Sacked += sb.insert(b)
	}
	if info.Sacked > 0 {
		info.DupAck = true
		if sb.flags&sbRecovery == 0 && sb.dupAcks < 255 {
			sb.dupAcks++
		}
	}
	return info
}

// isDSACK reports whether the first of an ACK's SACK blocks is a D-SACK
// (RFC 2883 section 4): a valid block that the ACK's cumulative
// acknowledgment covers, or that lies inside the second block. (Linux also
// takes a first block that straddles the cumulative acknowledgment; no
// RFC 2883 receiver sends one, and this scoreboard uses its part above
// the acknowledgment as ordinary SACK information.)
func isDSACK(ack Seq, blocks []SACKBlock) bool {
	if len(blocks) == 0 {
		return false
	}
	b := blocks[0]
	if !b.Start.LessThan(b.End) {
		return false
	}
	if b.End.LessThanEq(ack) {
		return true
	}
	if len(blocks) > 1 {
		c := blocks[1]
		return c.Start.LessThan(c.End) && c.Start.LessThanEq(b.Start) && b.End.LessThanEq(c.End)
	}
	return false
}

// RecoverySpurious reports whether every retransmission of the current
// recovery episode (started by EnterRecovery or OnRTO, and lasting until
// the next one or ForgetUndo) has been reported duplicate by D-SACKs, i.e.
// the episode's retransmissions, and so its congestion response, were
// unnecessary (RFC 3708 section 3; the caller may restore the congestion
// state it saved when the episode began, as Linux's DSACK undo does).
// It is false when the episode retransmitted nothing.
func (sb *Scoreboard) RecoverySpurious() bool {
	return sb.flags&sbUndo != 0 && sb.undoRetx > 0 && sb.undoDSACK >= sb.undoRetx
}

// ForgetUndo ends the undo accounting of the current recovery episode (for
// example once the caller has restored its congestion state, or decided
// the episode is too old to undo). Later D-SACKs report nothing.
func (sb *Scoreboard) ForgetUndo() { sb.flags &^= sbUndo | sbUndone }

// startUndo begins the undo accounting of a new recovery episode.
func (sb *Scoreboard) startUndo() {
	sb.flags = sb.flags&^sbUndone | sbUndo
	sb.undoMarker, sb.undoEnd = sb.highACK, sb.highACK
	sb.undoRetx, sb.undoDSACK = 0, 0
}

// MarkLost records that the unSACKed octets of b are lost (for example by
// RACK, RFC 8985): IsLost reports them, NextSeg offers them under rule 1
// (even below HighRxt: a lost retransmission is sent again) and Pipe stops
// counting them, until they are retransmitted (OnTransmit), acknowledged,
// or ClearLost / OnRTO runs. Marks are kept merged; b may cover SACKed
// octets. Octets outside [snd_una, HighData) are ignored. It reports
// false when the mark did not fit (LostCap) and was dropped.
func (sb *Scoreboard) MarkLost(b SACKBlock) bool {
	if b.Start.LessThan(sb.highACK) {
		b.Start = sb.highACK
	}
	if b.End.GreaterThan(sb.highData) {
		b.End = sb.highData
	}
	if !b.Start.LessThan(b.End) {
		return true
	}
	sb.fixed.remove(b.Start, b.End)
	return sb.lost.add(sb, b)
}

// ClearLost removes every lost mark (and the record of which
// retransmissions repair lost-marked octets).
func (sb *Scoreboard) ClearLost() { sb.lost.n, sb.fixed.n = 0, 0 }

// LostMarks returns the number of lost-marked ranges.
func (sb *Scoreboard) LostMarks() int { return int(sb.lost.n) }

// LostMark returns lost-marked range i in increasing sequence order. It
// may include SACKed octets, which are not lost.
func (sb *Scoreboard) LostMark(i int) SACKBlock { return sb.lost.r[:sb.lost.n][i] }

// sackedSpan reports whether [a, b) (a <= b) lies inside one SACKed range.
func (sb *Scoreboard) sackedSpan(a, b Seq) bool {
	if a == b {
		return true
	}
	for i := 0; i < int(sb.n); i++ {
		r := sb.r[i]
		if r.End.GreaterThanEq(b) {
			return r.Start.LessThanEq(a) && a.LessThan(b)
		}
	}
	return false
}

// markSet is a set of at most LostCap disjoint, ascending ranges above
// snd_una.
type markSet struct {
	n uint8
	r [LostCap]SACKBlock
}

// add merges b (inside [snd_una, HighData)) into the set; ranges
// overlapping, touching, or separated from b only by SACKed data merge
// with it. When full, the highest range is forgotten; false if that is b.
func (m *markSet) add(sb *Scoreboard, b SACKBlock) bool {
	base := sb.highACK
	s, e := uint32(b.Start-base), uint32(b.End-base)
	n := int(m.n)
	i := 0
	for i < n && uint32(m.r[i].End-base) < s && !sb.sackedSpan(m.r[i].End, b.Start) {
		i++
	}
	j := i
	for j < n && (uint32(m.r[j].Start-base) <= e || sb.sackedSpan(b.End, m.r[j].Start)) {
		j++
	}
	if j > i {
		s = min(s, uint32(m.r[i].Start-base))
		e = max(e, uint32(m.r[j-1].End-base))
		m.r[i] = SACKBlock{base.Add(s), base.Add(e)}
		if d := j - i - 1; d > 0 {
			copy(m.r[i+1:n-d], m.r[j:n])
			m.n -= uint8(d)
		}
		return true
	}
	if n == LostCap {
		if i == n {
			return false
		}
		n--
	}
	copy(m.r[i+1:n+1], m.r[i:n])
	m.r[i] = b
	m.n = uint8(n + 1)
	return true
}

// remove removes [s, e) from the set.
func (m *markSet) remove(s, e Seq) {
	if !s.LessThan(e) {
		return
	}
	for i := 0; i < int(m.n); i++ {
		r := m.r[i]
		if r.End.LessThanEq(s) || e.LessThanEq(r.Start) {
			continue
		}
		left, right := r.Start.LessThan(s), e.LessThan(r.End)
		switch {
		case left && right:
			m.r[i].End = s
			if m.n < LostCap {
				copy(m.r[i+2:m.n+1], m.r[i+1:m.n])
				m.n++
			} else if i+1 < LostCap {
				copy(m.r[i+2:], m.r[i+1:LostCap-1]) // forget the highest
			} else {
				return
			}
			m.r[i+1] = SACKBlock{e, r.End}
			return
		case left:
			m.r[i].End = s
		case right:
			m.r[i].Start = e
		default:
			copy(m.r[i:m.n-1], m.r[i+1:m.n])
			m.n--
			i--
		}
	}
}

// trim drops everything below una.
func (m *markSet) trim(una Seq) {
	k := 0
	for k < int(m.n) && m.r[k].End.LessThanEq(una) {
		k++
	}
	if k > 0 {
		copy(m.r[:int(m.n)-k], m.r[k:m.n])
		m.n -= uint8(k)
	}
	if m.n > 0 && m.r[0].Start.LessThan(una) {
		m.r[0].Start = una
	}
}

// contains reports whether seq lies in the set.
func (m *markSet) contains(seq Seq) bool {
	for i := 0; i < int(m.n); i++ {
		if seq.InRange(m.r[i].Start, m.r[i].End) {
			return true
		}
	}
	return false
}

// adjustPipe corrects the RFC 6675 count of the hole [lo, hi) (whose
// octets IsLost-by-RFC-6675 when lost, retransmitted below rxt) for the
// marks: lost-marked octets count zero, octets whose lost-marked copy was
// retransmitted (fixed) count one, the retransmission.
func (sb *Scoreboard) adjustPipe(pipe uint32, lo, hi, rxt Seq, lost bool) uint32 {
	for pass := 0; pass < 2; pass++ {
		m := &sb.lost
		if pass == 1 {
			m = &sb.fixed
		}
		for k := 0; k < int(m.n); k++ {
			a, b := MaxSeq(lo, m.r[k].Start), MinSeq(hi, m.r[k].End)
			if !a.LessThan(b) {
				continue
			}
			if !lost {
				pipe -= uint32(b - a)
			}
			if a.LessThan(rxt) {
				pipe -= uint32(MinSeq(b, rxt) - a)
			}
			if pass == 1 {
				pipe += uint32(b - a)
			}
		}
	}
	return pipe
}

// firstMarked returns the lowest lost-marked unSACKed segment (at most one
// SMSS, not spanning SACKed data or a mark's end), ok false when none.
func (sb *Scoreboard) firstMarked() (Segment, bool) {
	n := int(sb.n)
	for k := 0; k < int(sb.lost.n); k++ {
		m := sb.lost.r[k]
		x := MaxSeq(m.Start, sb.highACK)
		hi := sb.highData
		for i := 0; i < n; i++ {
			r := sb.r[i]
			if r.End.LessThanEq(x) {
				continue
			}
			if r.Start.LessThanEq(x) {
				x = r.End
				continue
			}
			hi = r.Start
			break
		}
		end := MinSeq(MinSeq(m.End, hi), sb.highData)
		if x.LessThan(end) {
			return Segment{Start: x, Len: min(sb.mss, uint32(end-x))}, true
		}
	}
	return Segment{}, false
}

// dropBelow removes SACK information at or below the new snd_una.
func (sb *Scoreboard) dropBelow(una Seq) {
	n := int(sb.n)
	k := 0
	for k < n && sb.r[k].End.LessThanEq(una) {
		k++
	}
	if k > 0 {
		copy(sb.r[:n-k], sb.r[k:n])
		n -= k
		sb.n = uint8(n)
	}
	if n > 0 && sb.r[0].Start.LessThan(una) {
		sb.r[0].Start = una
	}
}

// insert merges b (already validated, above snd_una) into the ranges and
// returns the number of octets it SACKs for the first time.
func (sb *Scoreboard) insert(b SACKBlock) uint32 {
	base := sb.highACK
	s, e := uint32(b.Start-base), uint32(b.End-base)
	n := int(sb.n)
	i := 0
	for i < n && uint32(sb.r[i].End-base) < s {
		i++
	}
	j := i
	for j < n && uint32(sb.r[j].Start-base) <= e {
		j++
	}
	if j > i {
		// Octets already SACKed inside [s, e).
		var old uint32
		for k := i; k < j; k++ {
			rs, re := uint32(sb.r[k].Start-base), uint32(sb.r[k].End-base)
			old += min(re, e) - min(max(rs, s), min(re, e))
		}
		s = min(s, uint32(sb.r[i].Start-base))
		e = max(e, uint32(sb.r[j-1].End-base))
		sb.r[i] = SACKBlock{base.Add(s), base.Add(e)}
		if d := j - i - 1; d > 0 {
			copy(sb.r[i+1:n-d], sb.r[j:n])
			sb.n -= uint8(d)
		}
		return uint32(b.End-b.Start) - old
	}
	if n == ScoreboardCap {
		if i == n {
			return b.Len() // new information, but above every kept range: forgotten
		}
		n-- // forget the highest range
	}
	copy(sb.r[i+1:n+1], sb.r[i:n])
	sb.r[i] = b
	sb.n = uint8(n + 1)
	return b.Len()
}

// IsLost reports RFC 6675 IsLost(seq): seq is unacknowledged, not SACKed,
// and either DupThresh discontiguous SACKed ranges lie above it or more than
// (DupThresh-1)*SMSS SACKed bytes lie above it. ("Discontiguous SACKed
// sequences" is taken to mean distinct SACKed ranges; the byte rule covers
// segments SACKed contiguously.) Note RFC 6675's byte rule is "more than
// (DupThresh-1)*SMSS bytes", i.e. at least DupThresh full segments.
//
// Octets marked by MarkLost (RACK) are lost too.
func (sb *Scoreboard) IsLost(seq Seq) bool {
	if !seq.InRange(sb.highACK, sb.highData) {
		return false
	}
	if sb.lost.n > 0 && sb.lost.contains(seq) {
		for i := 0; i < int(sb.n); i++ {
			if seq.InRange(sb.r[i].Start, sb.r[i].End) {
				return false
			}
		}
		return true
	}
	var blocks, bytes uint32
	for i := int(sb.n) - 1; i >= 0; i-- {
		r := sb.r[i]
		if r.Start.LessThanEq(seq) {
			if seq.LessThan(r.End) {
				return false // SACKed
			}
			break
		}
		blocks++
		bytes += r.Len()
	}
	return blocks >= DupThresh || bytes > sb.lostThresholdBytes()
}

// holeLost reports, for the hole just below range i, whether IsLost holds
// for its octets, given the suffix counts above it. IsLost is constant over
// a hole because the SACKed data above every octet of a hole is the same.
func (sb *Scoreboard) holeLost(blocksAbove, bytesAbove uint32) bool {
	return blocksAbove >= DupThresh || bytesAbove > sb.lostThresholdBytes()
}

// Pipe returns RFC 6675 SetPipe(): the octets between snd_una and HighData
// that are not SACKed and either not lost (still in flight) or
// retransmitted (below HighRxt; counted again if also not lost). It is the
// in-flight estimate for loss recovery; outside recovery use snd_nxt-snd_una.
// Lost-marked octets (MarkLost) count zero: their latest transmission is
// lost, whether it was the original or a retransmission; once such octets
// are retransmitted they count one, the retransmission (RFC 8985's
// in-flight rule, where RFC 6675 would count the original too unless
// IsLost).
func (sb *Scoreboard) Pipe() uint32 {
	n := int(sb.n)
	var pipe, blocks, bytes uint32
	rxt := sb.highRxt
	if rxt.LessThan(sb.highACK) {
		rxt = sb.highACK
	}
	// Holes from the top down so the suffix counts accumulate.
	hi := sb.highData
	for i := n; i >= 0; i-- {
		lo := sb.highACK
		if i > 0 {
			lo = sb.r[i-1].End
		}
		if i < n {
			blocks++
			bytes += sb.r[i].Len()
		}
		if lo.LessThan(hi) {
			lost := i < n && sb.holeLost(blocks, bytes)
			if !lost {
				pipe += uint32(hi - lo)
			}
			if lo.LessThan(rxt) { // retransmitted part of the hole
				pipe += uint32(MinSeq(hi, rxt) - lo)
			}
			if sb.lost.n|sb.fixed.n != 0 {
				pipe = sb.adjustPipe(pipe, lo, hi, rxt, lost)
			}
		}
		if i > 0 {
			hi = sb.r[i-1].Start
		}
	}
	return pipe
}

// ShouldEnterRecovery reports whether loss recovery should start now (RFC
// 6675 section 5 steps 1 and 2): not already in recovery, not held off by a
// previous RTO, data outstanding, and either DupAcks >= DupThresh or
// IsLost(snd_una), or some unSACKed octet is lost-marked (RACK). Call it
// after an ACK with AckInfo.DupAck set, and after RACK.DetectLoss marked
// octets lost.
func (sb *Scoreboard) ShouldEnterRecovery() bool {
	if sb.flags&(sbRecovery|sbRTOHold) != 0 || sb.highACK == sb.highData {
		return false
	}
	if sb.dupAcks >= DupThresh || sb.IsLost(sb.highACK) {
		return true
	}
	_, ok := sb.firstMarked()
	return ok
}

// EnterRecovery starts loss recovery (RFC 6675 section 5 step 4):
// RecoveryPoint = HighData, and it returns the fast retransmission, the
// first segment at snd_una. Send it and pass it to OnTransmit, which sets
// HighRxt and RescueRxt (step 4.3). The caller adjusts its congestion
// control state (step 4.2).
//
// It also starts the episode's undo accounting (RecoverySpurious). When
// snd_una is not lost but RACK marked other octets lost, the fast
// retransmission is the lowest lost-marked segment instead.
func (sb *Scoreboard) EnterRecovery() Segment {
	sb.flags = sb.flags&^(sbRescueSet|sbRTOHold) | sbRecovery
	sb.recoveryPoint = sb.highData
	sb.highRxt = sb.highACK
	sb.startUndo()
	if sb.lost.n > 0 && !sb.IsLost(sb.highACK) {
		if seg, ok := sb.firstMarked(); ok {
			seg.Kind = SegFastRetransmit
			return seg
		}
	}
	end := sb.highData
	if sb.n > 0 && sb.r[0].Start.GreaterThan(sb.highACK) {
		end = sb.r[0].Start
	}
	return Segment{Start: sb.highACK, Len: min(sb.mss, uint32(end-sb.highACK)), Kind: SegFastRetransmit}
}

// NextSeg returns the next segment to send during loss recovery (RFC 6675
// NextSeg()), at most one SMSS long and never spanning SACKed data:
//
//  1. the lowest unSACKed range at or above HighRxt, below the highest SACKed
//     octet, that IsLost, or the lowest lost-marked (MarkLost) unSACKed
//     range anywhere above snd_una, whichever comes first (SegLost);
//  2. else, if newData > 0 (unsent bytes the peer's window allows), new data
//     at HighData (SegNew);
//  3. else the lowest unSACKed range at or above HighRxt below the highest
//     SACKed octet (SegUnsacked);
//  4. else, once per recovery and only once snd_una has passed RescueRxt,
//     the segment ending with the highest outstanding unSACKed octet
//     (SegRescue).
//
// Outside recovery only rule 2 applies (new data, e.g. Limited Transmit).
// It returns Kind SegNone when nothing should be sent. NextSeg does not
// change state; pass what is actually sent to OnTransmit.
func (sb *Scoreboard) NextSeg(newData uint32) Segment {
	if sb.flags&sbRecovery == 0 {
		if newData > 0 {
			return Segment{Start: sb.highData, Len: min(sb.mss, newData), Kind: SegNew}
		}
		return Segment{}
	}
	n := int(sb.n)
	from := MaxSeq(sb.highRxt, sb.highACK)
	// Rule 1 also covers lost-marked octets anywhere above snd_una; the
	// lowest of those and of the RFC 6675 candidate goes first.
	mark, marked := sb.firstMarked()
	if marked {
		mark.Kind = SegLost
		if mark.Start.LessThanEq(from) {
			return mark
		}
	}
	var total uint32 // all SACKed bytes, to derive suffix sums going up
	for i := 0; i < n; i++ {
		total += sb.r[i].Len()
	}
	rule3 := Segment{}
	var below uint32 // SACKed bytes in ranges below the current hole
	for i := 0; i < n; i++ {
		lo := sb.highACK
		if i > 0 {
			lo = sb.r[i-1].End
			below += sb.r[i-1].Len()
		}
		hi := sb.r[i].Start
		if hi.LessThanEq(from) {
			continue
		}
		lo = MaxSeq(lo, from)
		if !lo.LessThan(hi) {
			continue
		}
		seg := Segment{Start: lo, Len: min(sb.mss, uint32(hi-lo))}
		if marked && mark.Start.LessThan(seg.End()) {
			return mark // at or below this hole's first octet (holes ascend)
		}
		if sb.holeLost(uint32(n-i), total-below) {
			seg.Kind = SegLost
			return seg
		}
		if rule3.Kind == SegNone {
			seg.Kind = SegUnsacked
			rule3 = seg
		}
	}
	if marked {
		return mark
	}
	if newData > 0 {
		return Segment{Start: sb.highData, Len: min(sb.mss, newData), Kind: SegNew}
	}
	if rule3.Kind != SegNone {
		return rule3
	}
	if sb.flags&sbRescueSet == 0 || sb.highACK.GreaterThan(sb.rescueRxt) {
		// The highest outstanding unSACKed octet ends the topmost
		// non-empty hole.
		hi := sb.highData
		for i := n; i >= 0; i-- {
			lo := sb.highACK
			if i > 0 {
				lo = sb.r[i-1].End
			}
			if lo.LessThan(hi) {
				l := min(sb.mss, uint32(hi-lo))
				return Segment{Start: hi.Sub(l), Len: l, Kind: SegRescue}
			}
			if i > 0 {
				hi = sb.r[i-1].Start
			}
		}
	}
	return Segment{}
}

// OnRTO handles a retransmission timeout (RFC 6675 section 5.1): loss
// recovery is terminated, RecoveryPoint = HighData, and no new recovery
// phase starts until snd_una reaches it. The SACK information is discarded
// as RFC 2018 section 8 recommends (the receiver may have reneged), DupAcks
// is reset and HighRxt returns to snd_una. The caller retransmits from
// snd_una (slow start / go-back-N), reporting each retransmission with
// SegRetransmit.
//
// It also clears the lost marks and starts a new undo episode: if every
// go-back-N retransmission is D-SACKed, the timeout was spurious.
func (sb *Scoreboard) OnRTO() {
	sb.n = 0
	sb.ClearLost()
	sb.dupAcks = 0
	sb.recoveryPoint = sb.highData
	sb.highRxt = sb.highACK
	sb.flags &^= sbRecovery | sbRescueSet | sbRTOHold
	if sb.highACK != sb.highData {
		sb.flags |= sbRTOHold
	}
	sb.startUndo()
}

// EarlyRetransmit reports whether RFC 5827 early retransmit (the SACK
// variant of section 3.2) should start loss recovery: with fewer than four
// segments outstanding a hole can never collect DupThresh SACKs, so the
// threshold drops to one less than the outstanding segment count: loss
// recovery starts once oseg-1 segments above snd_una are SACKed. The
// caller must also check RFC 5827's other condition, that it has no
// unsent data the peer's window lets it send (new data would earn the
// duplicate ACKs that make early retransmission unnecessary).
func (sb *Scoreboard) EarlyRetransmit() bool {
	if sb.flags&(sbRecovery|sbRTOHold) != 0 || sb.n == 0 || sb.mss == 0 ||
		sb.r[0].Start == sb.highACK {
		return false
	}
	oseg := (uint32(sb.highData-sb.highACK) + sb.mss - 1) / sb.mss
	sacked := (sb.SackedBytes() + sb.mss - 1) / sb.mss
	return oseg >= 2 && oseg < 4 && sacked >= oseg-1
}

// RetransmissionsLost tells the scoreboard that the retransmissions of the
// current recovery phase are presumed lost (the caller's probe timeout
// fired with no progress): HighRxt returns to snd_una, so Pipe stops
// counting them and NextSeg offers the lost holes again. Outside
// recovery it does nothing.
func (sb *Scoreboard) RetransmissionsLost() {
	if sb.flags&sbRecovery != 0 {
		sb.highRxt = sb.highACK
		sb.fixed.n = 0
	}
}
