package sim

import "gotas/internal/cc"

// stamp returns f with the bottleneck's hop record appended to its
// telemetry option (cc.StampINT), or f itself: the state the frame finds
// on arrival, the bytes queued ahead of it, the bytes the port has sent
// (enqueued less queued, so the sender's Δqlen + Δtx is exactly the
// arrival rate, the "current" λ of PowerTCP), the time and the port rate.
// The returned slice may be n.scratch, valid until the next stamp.
func (n *Net) stamp(f []byte, qlen int) []byte {
	if n.cfg.NoINT {
		return f
	}
	hop := cc.MakeWireHop(uint64(qlen), n.enqBytes-uint64(qlen), n.now(), n.cfg.BottleneckBps)
	out, _ := cc.StampINT(n.scratch[:], f, hop)
	return out
}
