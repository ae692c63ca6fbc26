package fastpath

import (
	"bytes"
	"testing"

	"gotas/internal/wire"
)

// sendBatch delivers several peer segments in one engine iteration, as
// one NIC batch would, and returns what the engine sent.
func (h *segHarness) sendBatch(segs ...segSpec) []segOut {
	h.t.Helper()
	h.eng.Begin()
	for i := range segs {
		h.eng.HandleFrame(h.frame(&segs[i]), h.batch)
	}
	return h.finish()
}

// A GRO-sized segment (AF_XDP multi-buffer: a Linux peer's GSO packet of
// several MSS) is acknowledged on its own, as Linux acknowledges a GRO
// packet, while MSS-sized segments keep the every-second-segment rule
// (RFC 9293 3.8.6.3): two big units in one batch get two ACKs, two full
// segments one.
func TestGROSizedSegmentsAckedEach(t *testing.T) {
	h := newSegHarness(t, segOpts{RxSize: 1 << 18, AdvWindow: 0xffff})
	mss := int(h.mss())
	unit := bytes.Repeat([]byte{'g'}, 3*mss)
	full := func(seq uint32, p []byte) segSpec {
		return segSpec{Flags: wire.TCPFlagACK, Seq: seq, Window: 0xffff, Payload: p}
	}
	out := h.sendBatch(full(0, unit), full(uint32(len(unit)), unit))
	if len(out) != 2 || h.relAck(out[0]) != uint32(len(unit)) || h.relAck(out[1]) != uint32(2*len(unit)) {
		t.Fatalf("two %d-byte units in one batch: %d ACKs %+v, want one per unit", len(unit), len(out), out)
	}
	base := uint32(2 * len(unit))
	seg := unit[:mss]
	out = h.sendBatch(full(base, seg), full(base+uint32(mss), seg))
	if len(out) != 1 || h.relAck(out[0]) != base+uint32(2*mss) {
		t.Fatalf("two full segments in one batch: %d ACKs %+v, want one for both", len(out), out)
	}
}
