package slowpath

import (
	"gotas/internal/cc"
	"gotas/internal/fastpath"
)

// Congestion control runs here, as in TAS (tas/slow/cc.c): every few RTTs
// each controlled flow's counter deltas go to its cc.Controller, and a new
// rate is written into the flow's counters and announced to the core with
// KtxKick, so the pacer applies it before the flow's next segment.

// ccGranularity is the least time between two passes over the flows
// (TAS's cc_control_granularity, tas/config.c: 50 µs).
const ccGranularity = 50_000

// ccInitRTT is the RTT assumed before the flow has a sample (TAS's
// tcp_rtt_init: 50 µs).
const ccInitRTT = 50_000

// ccState is one controlled flow's loop state.
type ccState struct {
	ctl   cc.Controller
	next  uint64 // ns: the next update
	last  uint64 // ns: the previous update
	acks  uint64 // counter values at the previous update
	acked uint64
	ecn   uint64
	loss  uint64
	rtts  uint32 // RTT samples counted at the previous update
	rate  uint32 // kbit/s in force
	cap   uint32 // window cap in force (cc.Windowed; 0: none)
	idx   int    // position in slow.ccFlows
	// Telemetry (PowerTCP): whether the algorithm uses it, the sequence
	// number of the last records read, and the records widened.
	wantINT bool
	intSeq  uint32
	nHops   int
	hops    [cc.INTMaxHops]cc.Hop
}

// ccName is the algorithm x runs: its own choice or the stack's default.
func (sp *slow) ccName(x *conn) string {
	if n, ok := cc.NameOf(x.ccAlg); ok && n != "" {
		return n
	}
	return sp.s.cfg.CC
}

// ccNew makes the controller of a flow about to enter the fast path, with
// its first rate (and window cap), which the flow starts with, as TAS
// sets a flow's rate when it is created: an empty Sample changes no
// controller's state and returns its initial rate. Reno sets no rate, so
// it gets no controller and no loop: the window stays in charge.
func (sp *slow) ccNew(x *conn) *ccState {
	name := sp.ccName(x)
	if name == "" || name == "reno" {
		return nil
	}
	ctl, err := cc.New(name, sp.s.cfg.CCParams)
	if err != nil {
		return nil // NewStack validated both
	}
	st := &ccState{ctl: ctl, wantINT: cc.WantsINT(name)}
	st.rate = ctl.Update(&cc.Sample{})
	if w, ok := ctl.(cc.Windowed); ok {
		st.cap = w.Window()
	}
	return st
}

// ccStart runs st's loop for x, which has just entered the fast path.
func (sp *slow) ccStart(x *conn, st *ccState) {
	if st == nil {
		return
	}
	now := sp.now()
	st.last, st.idx = now, len(sp.ccFlows)
	st.next = now + sp.ccPeriod(x, st)
	x.cc = st
	sp.ccFlows = append(sp.ccFlows, x)
	sp.armTimer(st.next)
}

// ccStop detaches x's controller (the flow left the fast path).
func (sp *slow) ccStop(x *conn) {
	st := x.cc
	if st == nil {
		return
	}
	last := len(sp.ccFlows) - 1
	moved := sp.ccFlows[last]
	sp.ccFlows[st.idx] = moved
	moved.cc.idx = st.idx
	sp.ccFlows[last] = nil
	sp.ccFlows = sp.ccFlows[:last]
	x.cc = nil
}

// ccPeriod is the time to the flow's next update: its interval in RTTs.
func (sp *slow) ccPeriod(x *conn, st *ccState) uint64 {
	rtt := uint64(sp.s.sh.Flows.Counters[x.id].SRTT.Load()) * 1000
	if rtt == 0 {
		rtt = ccInitRTT
	}
	return max(rtt*uint64(st.ctl.Interval()), ccGranularity)
}

// ccTick updates the flows that are due and returns when the next one is
// (0: none).
func (sp *slow) ccTick(now uint64) uint64 {
	var next uint64
	for _, x := range sp.ccFlows {
		st := x.cc
		if now >= st.next {
			sp.ccUpdate(x, st, now)
		}
		next = minNZ(next, st.next)
	}
	if next != 0 {
		next = max(next, now+ccGranularity)
	}
	return next
}

// ccUpdate runs one control step for x.
func (sp *slow) ccUpdate(x *conn, st *ccState, now uint64) {
	ctr := &sp.s.sh.Flows.Counters[x.id]
	acks, acked, ecn := ctr.Acks.Load(), ctr.AckedBytes.Load(), ctr.ECNBytes.Load()
	loss := ctr.FastRetx.Load() + ctr.RTOs.Load()
	s := cc.Sample{Elapsed: now - st.last, Acks: acks - st.acks, Acked: acked - st.acked,
		ECN: min(ecn-st.ecn, acked-st.acked), Losses: loss - st.loss, SRTT: ctr.SRTT.Load()}
	if n := ctr.RTTSamples.Load(); n != st.rtts {
		s.RTT, st.rtts = ctr.LastRTT.Load(), n // a new sample: RTT-gradient laws need fresh ones
	}
	st.acks, st.acked, st.ecn, st.loss, st.last = acks, acked, ecn, loss, now
	if st.wantINT {
		s.Hops = sp.ccHops(ctr, st)
	}
	rate := st.ctl.Update(&s)
	st.next = now + sp.ccPeriod(x, st)
	if w, ok := st.ctl.(cc.Windowed); ok {
		st.cap = w.Window()
		ctr.CwndCap.Store(st.cap)
	}
	if rate == st.rate {
		return
	}
	st.rate = rate
	ctr.RateKbps.Store(rate)
	sp.st.ccKicks.Add(1)
	sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxKick, ID: x.id, Handle: uint64(x.handle)}, nil)
}

// ccHops returns the telemetry echoed since the previous update, widened
// against the records before it; nil (and counted: the controller falls
// back to the RTT) when none came, e.g. a path or peer that strips it.
func (sp *slow) ccHops(ctr *fastpath.FlowCounters, st *ccState) []cc.Hop {
	var w [cc.INTMaxHops]cc.WireHop
	hops, seq, ok := ctr.ReadINT(&w)
	if !ok || seq == st.intSeq || len(hops) == 0 {
		sp.st.ccNoINT.Add(1)
		return nil
	}
	st.intSeq = seq
	first := len(hops) != st.nHops // the path changed length: nothing to unwrap against
	for i, h := range hops {
		if first {
			st.hops[i] = cc.Widen(nil, h)
		} else {
			st.hops[i] = cc.Widen(&st.hops[i], h)
		}
	}
	st.nHops = len(hops)
	sp.st.ccINT.Add(1)
	return st.hops[:len(hops)]
}
