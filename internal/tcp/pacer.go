package tcp

import "math/bits"

// NoFlow marks "no flow" in the wheel's intrusive lists.
const NoFlow = ^uint32(0)

type wheelNode struct {
	at   uint64 // scheduled time (ns)
	next uint32 // next flow in the slot list (NoFlow at the tail)
	prev uint32 // previous flow (NoFlow at the head)
	slot uint32 // physical slot index, NoFlow when not scheduled
}

// Wheel is a single-level timing wheel for per-flow pacing, in the style of
// Carousel and TAS's queue manager: each scheduled flow sits in exactly one
// slot list; slots are granularity nanoseconds wide and there are a power
// of two of them, so the wheel covers a horizon of slots*granularity ns.
//
// Flows are identified by dense ids below the maxFlows given to NewWheel;
// all storage (one 24-byte node per flow, head/tail per slot and an
// occupancy bitmap) is allocated by NewWheel, and no method allocates.
// Scheduling a flow that is already scheduled moves it, so a flow is in the
// wheel at most once.
//
// Within a slot, flows are kept sorted by their exact time (ties in
// scheduling order), so Poll returns due flows in non-decreasing time
// order, not merely slot order. Inserting walks back from the slot's tail,
// which is O(1) when flows are scheduled in increasing time order.
//
// A time beyond the horizon is parked in the farthest slot; when the wheel
// turns past that slot, the flow is moved on (to its real slot or to the
// new farthest slot), costing one move per horizon of distance. A time in
// the past is placed in the current slot and is due at the next Poll.
//
// Times are caller-defined uint64 nanoseconds; Poll's now must not
// decrease between calls.
type Wheel struct {
	gran  uint64
	mask  uint64
	cur   uint64 // tick of the earliest slot that may hold flows
	count uint32
	heads []uint32
	tails []uint32
	occ   []uint64 // bit per slot: list non-empty
	nodes []wheelNode
}

// NewWheel returns a wheel for flow ids [0, maxFlows) with slots of
// granularityNs (>= 1) each; slots is rounded up to a power of two, at
// least 64. Its clock starts at time start (ns).
func NewWheel(maxFlows uint32, granularityNs uint64, slots int, start uint64) *Wheel {
	if granularityNs == 0 {
		panic("tcp: wheel granularity must be at least 1 ns")
	}
	n := 64
	for n < slots {
		n <<= 1
	}
	w := &Wheel{
		gran:  granularityNs,
		mask:  uint64(n - 1),
		cur:   start / granularityNs,
		heads: make([]uint32, n),
		tails: make([]uint32, n),
		occ:   make([]uint64, n/64),
		nodes: make([]wheelNode, maxFlows),
	}
	for i := range w.heads {
		w.heads[i], w.tails[i] = NoFlow, NoFlow
	}
	for i := range w.nodes {
		w.nodes[i] = wheelNode{next: NoFlow, prev: NoFlow, slot: NoFlow}
	}
	return w
}

// Slots returns the number of slots.
func (w *Wheel) Slots() int { return len(w.heads) }

// Granularity returns the slot width in ns.
func (w *Wheel) Granularity() uint64 { return w.gran }

// Horizon returns the time span the slots cover, in ns.
func (w *Wheel) Horizon() uint64 { return w.gran * uint64(len(w.heads)) }

// Len returns the number of scheduled flows.
func (w *Wheel) Len() int { return int(w.count) }

// MaxFlows returns the number of flow ids the wheel was built for.
func (w *Wheel) MaxFlows() int { return len(w.nodes) }

// Scheduled reports whether flow is in the wheel and, if so, its time.
func (w *Wheel) Scheduled(flow uint32) (at uint64, ok bool) {
	nd := &w.nodes[flow]
	return nd.at, nd.slot != NoFlow
}

// Schedule makes flow due at time at (ns), moving it if it was already
// scheduled. flow must be below MaxFlows.
func (w *Wheel) Schedule(flow uint32, at uint64) {
	if w.nodes[flow].slot != NoFlow {
		w.unlink(flow)
	}
	w.nodes[flow].at = at
	w.place(flow)
}

// Cancel removes flow from the wheel; it reports whether it was scheduled.
func (w *Wheel) Cancel(flow uint32) bool {
	if w.nodes[flow].slot == NoFlow {
		return false
	}
	w.unlink(flow)
	return true
}

// place inserts flow (with nodes[flow].at set) relative to w.cur.
func (w *Wheel) place(flow uint32) {
	nd := &w.nodes[flow]
	at := nd.at
	tk := at / w.gran
	if tk < w.cur {
		tk = w.cur
	} else if tk-w.cur > w.mask {
		tk = w.cur + w.mask // beyond the horizon: farthest slot
	}
	slot := uint32(tk & w.mask)
	// Walk back from the tail to the last flow due no later than at.
	p := w.tails[slot]
	for p != NoFlow && w.nodes[p].at > at {
		p = w.nodes[p].prev
	}
	nd.slot = slot
	nd.prev = p
	if p == NoFlow {
		nd.next = w.heads[slot]
		w.heads[slot] = flow
	} else {
		nd.next = w.nodes[p].next
		w.nodes[p].next = flow
	}
	if nd.next == NoFlow {
		w.tails[slot] = flow
	} else {
		w.nodes[nd.next].prev = flow
	}
	w.occ[slot>>6] |= 1 << (slot & 63)
	w.count++
}

func (w *Wheel) unlink(flow uint32) {
	nd := &w.nodes[flow]
	slot := nd.slot
	if nd.prev == NoFlow {
		w.heads[slot] = nd.next
	} else {
		w.nodes[nd.prev].next = nd.next
	}
	if nd.next == NoFlow {
		w.tails[slot] = nd.prev
	} else {
		w.nodes[nd.next].prev = nd.prev
	}
	if w.heads[slot] == NoFlow {
		w.occ[slot>>6] &^= 1 << (slot & 63)
	}
	nd.next, nd.prev, nd.slot = NoFlow, NoFlow, NoFlow
	w.count--
}

// nextOccupied returns the tick of the first non-empty slot at or after
// w.cur. The wheel must not be empty.
func (w *Wheel) nextOccupied() uint64 {
	p := w.cur & w.mask
	nw := len(w.occ)
	wi := int(p >> 6)
	word := w.occ[wi] &^ (1<<(p&63) - 1) // bits at or after p
	// Up to nw more words; the last is p's word again, whose bits at or
	// after p are known to be clear, so only its bits before p can match.
	for i := 0; i <= nw; i++ {
		if word != 0 {
			phys := uint64(wi)<<6 | uint64(bits.TrailingZeros64(word))
			return w.cur + (phys-p)&w.mask
		}
		wi++
		if wi == nw {
			wi = 0
		}
		word = w.occ[wi]
	}
	panic("tcp: wheel occupancy bitmap out of sync with count")
}

// NextDue returns a lower bound on the time of the earliest scheduled flow
// (the start of its slot, or the current time for past-due flows), and
// false if the wheel is empty. A poller can sleep until then.
func (w *Wheel) NextDue() (uint64, bool) {
	if w.count == 0 {
		return 0, false
	}
	return w.nextOccupied() * w.gran, true
}

// Poll removes the flows due at now (time <= now), writes their ids to out
// in non-decreasing order of scheduled time and returns how many it wrote.
// If out fills up, the remaining due flows stay for the next Poll. A flow
// returned by Poll is no longer scheduled; reschedule it after sending.
func (w *Wheel) Poll(now uint64, out []uint32) int {
	nowTick := now / w.gran
	n := 0
	pending := NoFlow // not-yet-due flows parked beyond the horizon, moved on below
	for n < len(out) && w.count > 0 {
		t := w.nextOccupied()
		if t > nowTick {
			break
		}
		w.cur = t
		slot := uint32(t & w.mask)
		// Pop what is due and belongs to this tick (or before it); flows
		// parked here from beyond the horizon sort after them.
		limit := min(now, (t+1)*w.gran-1)
		for n < len(out) {
			f := w.heads[slot]
			if f == NoFlow || w.nodes[f].at > limit {
				break
			}
			w.unlink(f)
			out[n] = f
			n++
		}
		f := w.heads[slot]
		if f == NoFlow || n == len(out) {
			continue
		}
		if t == nowTick {
			break // the rest of this slot is due later
		}
		// A past slot still holding flows: they were parked here from
		// beyond the horizon. Due ones move to their own (later) slot in
		// this same sweep, so the output stays in time order; the others
		// wait in pending until w.cur is final.
		w.cur = t + 1
		// Take the whole slot first: a poller more than a rotation late
		// places due flows back into this very slot (the farthest from
		// cur), and walking a list while inserting into it visited flows
		// of equal times for ever. Placed here, they wait for the next
		// pass, a rotation on.
		w.heads[slot], w.tails[slot] = NoFlow, NoFlow
		w.occ[slot>>6] &^= 1 << (slot & 63)
		for f != NoFlow {
			next := w.nodes[f].next
			w.nodes[f].next, w.nodes[f].prev, w.nodes[f].slot = NoFlow, NoFlow, NoFlow
			w.count--
			if w.nodes[f].at <= now {
				w.place(f)
			} else {
				w.nodes[f].next = pending
				pending = f
			}
			f = next
		}
	}
	if n < len(out) && w.cur < nowTick {
		w.cur = nowTick // nothing else is due: the wheel has turned to now
	}
	for pending != NoFlow {
		f := pending
		pending = w.nodes[f].next
		w.place(f)
	}
	return n
}

// Pacer turns a rate into per-segment send times for one flow. Each Sent
// advances the flow's next permitted send time by exactly
// bytes*1e9/rate ns, carrying the remainder of the integer division to the
// next call, so the long-run rate is exact: after any number of segments
// sent back to back the total time is floor(total bytes * 1e9 / rate) ns.
//
// Burst is the credit (ns) a flow may bank when it is served late, e.g.
// because the wheel only fires once per slot or the core was busy: the
// next send time is computed from max(next, now-Burst) instead of now, so
// lateness up to Burst is made up later and does not lower the rate. Set it
// to at least the wheel granularity plus the expected polling jitter; it
// also bounds the burst a flow idle for a while may send at line rate. With
// Burst 0 every late service is lost time.
type Pacer struct {
	Burst uint64 // ns of credit a late flow may catch up
	rate  uint64 // bytes per second; 0 = unlimited
	next  uint64 // earliest time the next segment may be sent (ns)
	rem   uint64 // remainder of bytes*1e9/rate carried to the next segment
}

// SetRate sets the rate in bytes per second; 0 means unlimited. The sub-
// nanosecond remainder is dropped when the rate changes.
func (p *Pacer) SetRate(bytesPerSec uint64) {
	if bytesPerSec != p.rate {
		p.rate, p.rem = bytesPerSec, 0
	}
}

// SetRateKbps sets the rate in kbit/s, TAS's unit for flow rates (0 means
// unlimited).
func (p *Pacer) SetRateKbps(kbps uint32) { p.SetRate(uint64(kbps) * 125) }

// Rate returns the rate in bytes per second.
func (p *Pacer) Rate() uint64 { return p.rate }

// Next returns the earliest time (ns) the next segment may be sent.
func (p *Pacer) Next() uint64 { return p.next }

// Sent records that a segment of bytes bytes was sent at now (ns) and
// returns the earliest time the next one may be sent; if that is not after
// now the flow may send again at once. With rate 0 it returns now.
func (p *Pacer) Sent(now uint64, bytes uint32) uint64 {
	if p.rate == 0 {
		p.next = now
		return now
	}
	base := p.next
	if now > base && now-base > p.Burst {
		base = now - p.Burst
	}
	num := uint64(bytes)*1_000_000_000 + p.rem
	p.rem = num % p.rate
	p.next = base + num/p.rate
	return p.next
}
