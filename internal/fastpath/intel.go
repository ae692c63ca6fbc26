package fastpath

import (
	"gotas/internal/cc"
	"gotas/internal/wire"
)

// In-band telemetry for PowerTCP (internal/cc, intopt.go): a flow whose
// congestion control wants it asks switches for hop records on its data
// segments; a receiver echoes the latest records on its ACKs; the sender
// hands echoed records to the slow path through its FlowCounters. Both
// directions take option data from the network, so records are validated
// before they are kept; a bad one is counted and ignored, the segment is
// processed as usual.

// intWords is the size of FlowCounters.INT: each hop record fits two
// 64-bit words.
const intWords = 2 * cc.INTMaxHops

// intOption handles the telemetry option of an acceptable segment.
func (e *Engine) intOption(id uint32, c *flowCold, dataSeg bool) {
	if !e.opts.Has(wire.OptExp) {
		return
	}
	var hops [cc.INTMaxHops]cc.WireHop
	data := e.opts.Exp()
	switch e.opts.ExpID {
	case cc.INTExIDCollect:
		if !dataSeg {
			return
		}
		if len(data) == 0 {
			return // no switch on the path added a record
		}
		if _, err := cc.ParseHops(data, &hops); err != nil {
			e.stats.rxBadINT.Add(1)
			return
		}
		c.intEchoLen = uint8(copy(c.intEcho[:], data))
	case cc.INTExIDEcho:
		h, err := cc.ParseHops(data, &hops)
		if err != nil || len(h) == 0 || !c.intOn {
			e.stats.rxBadINT.Add(1)
			return
		}
		e.fs.Counters[id].publishINT(h)
	}
}

// publishINT stores echoed records for the slow path under a sequence
// lock: odd while writing, so a reader that sees it change retries.
func (ctr *FlowCounters) publishINT(h []cc.WireHop) {
	ctr.INTSeq.Add(1)
	for i, w := range h {
		ctr.INT[2*i].Store(uint64(w.QLen64)<<48 | uint64(w.Tx)<<16 | uint64(w.Rate10M))
		ctr.INT[2*i+1].Store(uint64(w.TS))
	}
	ctr.INTHops.Store(uint32(len(h)))
	ctr.INTSeq.Add(1)
}

// ReadINT copies the latest echoed records into out and returns them with
// the sequence number they were published under; ok is false while the
// core is writing or when none arrived.
func (ctr *FlowCounters) ReadINT(out *[cc.INTMaxHops]cc.WireHop) (hops []cc.WireHop, seq uint32, ok bool) {
	seq = ctr.INTSeq.Load()
	if seq == 0 || seq&1 != 0 {
		return nil, seq, false
	}
	n := min(int(ctr.INTHops.Load()), cc.INTMaxHops)
	for i := range n {
		a, b := ctr.INT[2*i].Load(), ctr.INT[2*i+1].Load()
		out[i] = cc.WireHop{QLen64: uint16(a >> 48), Tx: uint32(a >> 16), Rate10M: uint16(a), TS: uint32(b)}
	}
	if ctr.INTSeq.Load() != seq {
		return nil, seq, false
	}
	return out[:n], seq, true
}

// intTx sets the telemetry option of an outgoing segment with n payload
// bytes: collect on a telemetry flow's data, otherwise the echo of what
// the peer collected. Only where the MSS leaves room for the option at
// its largest (segPayload keeps that room on new data; a larger probe or
// retransmission goes without), so no frame outgrows the MTU.
func (e *Engine) intTx(f *flow, c *flowCold, n uint32) {
	if n+cc.INTReserve > uint32(f.mss) {
		return
	}
	switch {
	case c.intOn && n > 0:
		e.txo.SetExp(cc.INTExIDCollect, nil)
	case c.intEchoLen > 0:
		e.txo.SetExp(cc.INTExIDEcho, c.intEcho[:c.intEchoLen])
	}
}
