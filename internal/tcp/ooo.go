package tcp

// OOOCap is the number of disjoint out-of-order intervals an OOO set holds
// (upstream TAS holds one, which stalls recovery as soon as two segments are
// lost in one window).
const OOOCap = 8

// OOOStatus says what Insert did with a range.
type OOOStatus uint8

const (
	// OOOStored: the range is recorded, either as a new interval or merged
	// with the intervals it overlaps or touches. Keep the payload.
	OOOStored OOOStatus = iota
	// OOOStoredEvicted: the range is recorded, but the set was full, so the
	// interval farthest from rcv_nxt (OOOResult.Evicted) was forgotten to
	// make room. The receiver must treat those bytes as never received:
	// stop SACKing them (automatic) and never deliver them (automatic, as
	// Advance only delivers recorded intervals). With payload written in
	// place at its sequence offset, as in TAS, nothing has to be copied:
	// the retransmission simply overwrites the bytes.
	OOOStoredEvicted
	// OOODuplicate: the whole range lies below rcv_nxt (already delivered).
	// Drop the payload; the ACK for it is a plain duplicate ACK.
	OOODuplicate
	// OOORejected: the set is full and the range lies beyond every interval
	// (and touches none of them). Nothing was recorded: drop the payload and
	// do not SACK it.
	OOORejected
	// OOOInvalid: End is serially before Start (the range would be 2^31
	// bytes or longer). The caller must trim segments to the receive window
	// first, so this only signals a bug. (An End 2^31 or more bytes beyond
	// rcv_nxt is serially before it and reported as OOODuplicate.)
	OOOInvalid
)

// OOOResult is the outcome of OOO.Insert.
type OOOResult struct {
	Status  OOOStatus
	Evicted SACKBlock // the forgotten interval when Status == OOOStoredEvicted
}

type oooInterval struct {
	start, end Seq
	stamp      uint32 // value of OOO.clock when last touched by Insert
}

// OOO is a receiver's set of out-of-order byte ranges above rcv_nxt: at
// most OOOCap disjoint, non-adjacent [start, end) intervals, sorted by
// distance from rcv_nxt. It only does the bookkeeping; the payload lives in
// the flow's receive buffer at its sequence offset.
//
// Typical receive path, for a segment [s, e) already trimmed to the window:
//
//	if s == rcvNxt {
//		copy payload; rcvNxt = e
//		rcvNxt = rcvNxt.Add(ooo.Advance(rcvNxt)) // pulls in a queued interval
//	} else if r := ooo.Insert(s, e); r.Status <= OOOStoredEvicted {
//		copy payload at its offset
//	} // else drop it
//	// ACK rcvNxt with ooo.SACKBlocks(blocks[:0], 3)
//
// When the set is full, a new disjoint range that is nearer to rcv_nxt than
// the farthest interval evicts that farthest interval; a range farther than
// all of them is rejected. This keeps the data that unblocks delivery soonest
// (senders retransmit the lowest hole first, RFC 6675) and never refuses a
// range starting at rcv_nxt. Evicting SACKed-but-not-ACKed data is receiver
// "reneging", which RFC 2018 section 8 permits: only the cumulative ACK is a
// commitment, so no acknowledged data is ever lost.
//
// The zero value tracks rcv_nxt = 0; use Reset to start at another number.
type OOO struct {
	rcvNxt Seq
	clock  uint32
	n      uint8
	iv     [OOOCap]oooInterval
}

// Reset empties the set and sets rcv_nxt.
func (o *OOO) Reset(rcvNxt Seq) {
	*o = OOO{rcvNxt: rcvNxt}
}

// RcvNxt returns the set's notion of rcv_nxt (updated by Advance).
func (o *OOO) RcvNxt() Seq { return o.rcvNxt }

// Len returns the number of intervals held.
func (o *OOO) Len() int { return int(o.n) }

// Empty reports whether no out-of-order data is held (TAS only accepts a
// FIN when this is true).
func (o *OOO) Empty() bool { return o.n == 0 }

// At returns interval i, in increasing sequence order (0 is the nearest to
// rcv_nxt). It panics if i is out of range.
func (o *OOO) At(i int) SACKBlock {
	iv := &o.iv[:o.n][i]
	return SACKBlock{iv.start, iv.end}
}

// Bytes returns the number of out-of-order bytes held.
func (o *OOO) Bytes() uint32 {
	var t uint32
	for i := 0; i < int(o.n); i++ {
		t += uint32(o.iv[i].end - o.iv[i].start)
	}
	return t
}

// off returns the distance of x from rcv_nxt.
func (o *OOO) off(x Seq) uint32 { return uint32(x - o.rcvNxt) }

// Insert records that the bytes [start, end) have been received. Bytes
// below rcv_nxt are ignored; the rest is merged with every interval it
// overlaps or touches. An empty range (start == end) is a no-op reported as
// OOODuplicate. A range starting at rcv_nxt is accepted (and then returned by
// the next Advance), though callers normally deliver in-order data directly.
func (o *OOO) Insert(start, end Seq) OOOResult {
	s, e := o.off(start), o.off(end)
	if int32(end-start) < 0 {
		return OOOResult{Status: OOOInvalid}
	}
	if int32(e) <= 0 || start == end { // end <= rcv_nxt, or empty: nothing new
		return OOOResult{Status: OOODuplicate}
	}
	if int32(s) < 0 { // starts below rcv_nxt: trim
		s = 0
	}
	n := int(o.n)
	// i: first interval that ends at or after s (overlaps, touches or lies
	// after the new range).
	i := 0
	for i < n && o.off(o.iv[i].end) < s {
		i++
	}
	// j: first interval at or after i that starts strictly after e.
	j := i
	for j < n && o.off(o.iv[j].start) <= e {
		j++
	}
	o.clock++
	if j > i { // merge [s,e) with intervals i..j-1 into slot i
		if st := o.off(o.iv[i].start); st < s {
			s = st
		}
		if en := o.off(o.iv[j-1].end); en > e {
			e = en
		}
		o.iv[i] = oooInterval{o.rcvNxt.Add(s), o.rcvNxt.Add(e), o.clock}
		if d := j - i - 1; d > 0 {
			copy(o.iv[i+1:n-d], o.iv[j:n])
			o.n -= uint8(d)
		}
		return OOOResult{Status: OOOStored}
	}
	r := OOOResult{Status: OOOStored}
	if n == OOOCap {
		if i == n {
			o.clock-- // nothing touched
			return OOOResult{Status: OOORejected}
		}
		last := o.iv[n-1]
		r = OOOResult{Status: OOOStoredEvicted, Evicted: SACKBlock{last.start, last.end}}
		n--
	}
	copy(o.iv[i+1:n+1], o.iv[i:n])
	o.iv[i] = oooInterval{o.rcvNxt.Add(s), o.rcvNxt.Add(e), o.clock}
	o.n = uint8(n + 1)
	return r
}

// Advance moves rcv_nxt forward to rcvNxt (the caller has just delivered the
// in-order bytes up to it), drops intervals it covers and trims one it cuts.
// If an interval then starts exactly at rcvNxt, that interval is removed
// and its length returned: those bytes, already in the buffer, are now in
// order too, and the caller's rcv_nxt becomes rcvNxt.Add(returned value),
// which RcvNxt also reports. Otherwise it returns 0. Intervals are never
// adjacent, so at most one interval can become in order per call. A rcvNxt
// serially before the current one is ignored.
func (o *OOO) Advance(rcvNxt Seq) uint32 {
	d := uint32(rcvNxt - o.rcvNxt)
	if int32(d) < 0 {
		return 0
	}
	n := int(o.n)
	k := 0 // intervals entirely covered
	for k < n && o.off(o.iv[k].end) <= d {
		k++
	}
	if k > 0 {
		copy(o.iv[:n-k], o.iv[k:n])
		n -= k
		o.n = uint8(n)
	}
	o.rcvNxt = rcvNxt
	if n == 0 || int32(o.iv[0].start-rcvNxt) > 0 {
		return 0
	}
	got := uint32(o.iv[0].end - rcvNxt)
	o.rcvNxt = o.iv[0].end
	copy(o.iv[:n-1], o.iv[1:n])
	o.n--
	return got
}

// SACKBlocks appends up to limit blocks to dst, most recently updated interval
// first, and returns the extended slice. This is the RFC 2018 order: the
// first block holds the segment that triggered this ACK (the last Insert
// that stored something), followed by the other intervals from the most
// recently to the least recently changed, so that the sender learns every
// interval over successive ACKs even when only 3 or 4 fit in the option. It
// does not allocate when cap(dst)-len(dst) >= min(limit, Len()).
func (o *OOO) SACKBlocks(dst []SACKBlock, limit int) []SACKBlock {
	n := int(o.n)
	limit = min(limit, n)
	var used uint8 // bitmask of intervals already emitted
	for k := 0; k < limit; k++ {
		best := -1
		var bestAge uint32
		for i := 0; i < n; i++ {
			if used&(1<<i) != 0 {
				continue
			}
			// Age relative to the clock stays correct across wraparound.
			if age := o.clock - o.iv[i].stamp; best < 0 || age < bestAge {
				best, bestAge = i, age
			}
		}
		used |= 1 << best
		dst = append(dst, SACKBlock{o.iv[best].start, o.iv[best].end})
	}
	return dst
}
