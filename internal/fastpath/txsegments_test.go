package fastpath

import (
	"testing"

	"gotas/internal/appif"
	"gotas/internal/nic/pkttx"
	"gotas/internal/wire"
)

// largeOpts is a flow with timestamps over a queue that cuts 64 KB
// frames, with a peer window (64 KiB << 4) that never limits.
func largeOpts() segOpts {
	return segOpts{TS: true, LargeFrame: pkttx.MaxFrame, SndShift: 4, TxSize: 1 << 20}
}

// With segmentation offload, new data leaves in one frame as large as
// the congestion window allows, the MSS as its segment size, the
// pseudo-header sum in its checksum field, and the headers a single
// segment would have.
func TestLargeFrameCarriesTheWindow(t *testing.T) {
	h := newSegHarness(t, largeOpts())
	mss := int(h.mss())
	data := segPayload(100_000, 3)
	out := h.appWrite(data)
	s := onlyOne(t, "first flight", out)
	// parseSeg checked the checksum field and the IPv4 header.
	h.wantSeg("first flight", s, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 10*mss) // the initial window
	if s.Seg != uint16(mss) {
		t.Errorf("segment size %d, want the MSS %d", s.Seg, mss)
	}
	if !s.Opts.Has(wire.OptTimestamps) {
		t.Error("no timestamps on the frame: its segments would lack them")
	}
	if string(s.Payload) != string(data[:10*mss]) {
		t.Error("payload differs")
	}
	// Slow start: the ACK of the first flight doubles the window, and
	// the next frame carries all of it.
	out = h.send(segSpec{Flags: wire.TCPFlagACK, Ack: uint32(10 * mss), Window: 0xffff})
	s = onlyOne(t, "second flight", out)
	h.wantSeg("second flight", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(10*mss), 0, 20*mss)
}

// A frame never holds more than an IPv4 packet can: the rest of a large
// window goes in the next frames, each a whole number of segments.
func TestLargeFramesFitIPv4(t *testing.T) {
	h := newSegHarness(t, largeOpts())
	mss := int(h.mss())
	h.f().cwnd, h.f().sndWnd = 1<<20, 1<<20
	data := segPayload(200_000, 5)
	out := h.appWrite(data)
	for range 8 { // one 64 KB frame spends a turn's budget (txBudget)
		out = append(out, h.poll()...)
	}
	if len(out) < 3 {
		t.Fatalf("%d frames for 200 KB, want at least 3 of at most 64 KB", len(out))
	}
	off := 0
	for i, s := range out {
		n := len(s.Payload)
		if s.Len-wire.EthernetHeaderLen > 0xffff {
			t.Fatalf("frame %d: IPv4 packet of %d bytes", i, s.Len-wire.EthernetHeaderLen)
		}
		if i < len(out)-1 && n%mss != 0 {
			t.Errorf("frame %d: %d bytes, not a whole number of %d-byte segments", i, n, mss)
		}
		h.wantSeg("frame", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(off), 0, n)
		off += n
	}
	if off != len(data) {
		t.Errorf("%d bytes sent, want all %d (the window and the ring allow it)", off, len(data))
	}
}

// With Nagle, a frame's runt tail waits as a runt would on its own; the
// full segments before it go at once.
func TestLargeFrameRuntTailWaitsForNagle(t *testing.T) {
	h := newSegHarness(t, largeOpts())
	mss := int(h.mss())
	h.ringPut(segPayload(3*mss+100, 1))
	out := h.post(appif.Cmd{Conn: h.handle, TxBump: uint32(3*mss + 100), Flags: appif.CmdNagle})
	s := onlyOne(t, "write", out)
	h.wantSeg("write", s, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 3*mss)
	out = h.send(segSpec{Flags: wire.TCPFlagACK, Ack: uint32(3 * mss), Window: 0xffff})
	s = onlyOne(t, "after the ACK", out)
	h.wantSeg("after the ACK", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(3*mss), 0, 100)
	if s.Seg != 0 {
		t.Errorf("a %d-byte segment went out to be cut (segment size %d)", len(s.Payload), s.Seg)
	}
}

// A paced flow's frames hold at most a millisecond of its rate.
func TestLargeFramePacedToAMillisecond(t *testing.T) {
	h := newSegHarness(t, largeOpts())
	mss := int(h.mss())
	h.f().cwnd, h.f().sndWnd = 1<<20, 1<<20
	const kbps = 80_000 // 10 MB/s: 10 000 bytes a millisecond
	h.sh.Flows.Counters[segFlowID].RateKbps.Store(kbps)
	out := h.appWrite(segPayload(100_000, 2))
	if len(out) == 0 {
		t.Fatal("nothing sent")
	}
	if want := 10_000 / mss * mss; len(out[0].Payload) != want {
		t.Errorf("first frame of %d bytes, want %d (a millisecond at %d kbit/s, whole segments)", len(out[0].Payload), want, kbps)
	}
}

// Retransmissions stay single segments: a lost segment of a large frame
// is repaired alone, not with the frame's other segments.
func TestLargeFrameLossRepairedBySegment(t *testing.T) {
	o := largeOpts()
	o.SACK = true
	h := newSegHarness(t, o)
	mss := int(h.mss())
	s := onlyOne(t, "flight", h.appWrite(segPayload(10*mss, 4)))
	if len(s.Payload) != 10*mss {
		t.Fatalf("flight of %d bytes, want %d", len(s.Payload), 10*mss)
	}
	// The peer got all but the first segment: SACKs of growing ranges
	// above the hole.
	var out []segOut
	for k := 2; k <= 10; k++ {
		out = append(out, h.send(segSpec{Flags: wire.TCPFlagACK, Ack: 0, Window: 0xffff,
			SACK: []wire.SACKBlock{{Start: uint32(mss), End: uint32(k * mss)}}})...)
	}
	var retx *segOut
	for i := range out {
		if h.relSeq(out[i]) == 0 && len(out[i].Payload) > 0 {
			retx = &out[i]
		}
	}
	if retx == nil {
		t.Fatalf("no retransmission of the hole after nine SACKs: %+v", out)
	}
	if len(retx.Payload) != mss || retx.Seg != 0 {
		t.Errorf("retransmission of %d bytes (segment size %d), want one %d-byte segment", len(retx.Payload), retx.Seg, mss)
	}
}

// Window growth counts the bytes an ACK covers, so a receiver that ACKs
// a 64 KB unit at once grows the window as one that ACKs every segment;
// after an RTO an ACK adds one MSS at most (RFC 3465 3.2).
func TestGrowCwndCountsBytes(t *testing.T) {
	const mss = 1000
	for _, tc := range []struct {
		name            string
		cwnd, ssthresh  uint32
		acked           uint32
		paced, afterRTO bool
		want            uint32
	}{
		{"slow-start-stretch-ack", 10_000, 1 << 30, 44_000, false, false, 54_000},
		{"slow-start-stops-at-ssthresh", 10_000, 30_000, 44_000, false, false, 30_000},
		{"avoidance-stretch-ack", 100_000, 50_000, 50_000, false, false, 100_500}, // half a window: half an MSS
		{"avoidance-one-segment", 100_000, 50_000, 1_000, false, false, 100_010},
		{"avoidance-tiny-ack", 100_000, 50_000, 1, false, false, 100_001},
		{"after-rto", 1_000, 50_000, 40_000, false, true, 2_000},
		{"paced", 10_000, 5_000, 44_000, true, false, 54_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flow{mss: mss, cwnd: tc.cwnd, ssthresh: tc.ssthresh}
			f.growCwnd(tc.acked, tc.paced, tc.afterRTO)
			if f.cwnd != tc.want {
				t.Errorf("cwnd %d after %d bytes acked, want %d", f.cwnd, tc.acked, tc.want)
			}
		})
	}
}

// A paced ECN flow's segments all carry CWR, which segmentation would keep
// on a frame's first segment only: its frames stay single segments.
func TestLargeFramesNotForPacedECN(t *testing.T) {
	o := largeOpts()
	o.ECN = true
	h := newSegHarness(t, o)
	mss := int(h.mss())
	h.f().cwnd, h.f().sndWnd = 1<<20, 1<<20
	h.sh.Flows.Counters[segFlowID].RateKbps.Store(8_000_000)
	for i, s := range h.appWrite(segPayload(20*mss, 6)) {
		if len(s.Payload) > mss || s.Seg != 0 {
			t.Fatalf("frame %d: %d bytes (segment size %d), want single segments", i, len(s.Payload), s.Seg)
		}
	}
}

// A peer's tiny MSS does not make frames of more than maxFrameSegments
// segments.
func TestLargeFrameSegmentsBounded(t *testing.T) {
	o := largeOpts()
	o.MSS = 48
	h := newSegHarness(t, o)
	mss := int(h.mss())
	h.f().cwnd, h.f().sndWnd = 1<<20, 1<<20
	out := h.appWrite(segPayload(10_000, 7))
	if len(out) == 0 {
		t.Fatal("nothing sent")
	}
	if got := len(out[0].Payload); got != maxFrameSegments*mss {
		t.Errorf("frame of %d bytes at MSS %d, want %d segments' worth", got, mss, maxFrameSegments)
	}
}
