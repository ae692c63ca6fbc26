package tcp

import (
	"fmt"
	"testing"
)

// rackEnv drives a RACK and its Scoreboard with sequence offsets from base
// and times (µs) from clock, so every scenario also runs across the
// sequence and clock wraps.
type rackEnv struct {
	t     *testing.T
	base  Seq
	clock uint32
	now   uint32 // relative to clock
	sb    Scoreboard
	r     RACK
}

var rackClocks = []uint32{0, 0xffffff00, 0x7ffffff0}

func newRACKEnv(t *testing.T, base Seq, clock uint32) *rackEnv {
	e := &rackEnv{t: t, base: base, clock: clock}
	e.sb.Init(base, 1000)
	e.r.Init(base)
	return e
}

func (e *rackEnv) seq(off uint32) Seq { return e.base.Add(off) }
func (e *rackEnv) at(us uint32)       { e.now = us }
func (e *rackEnv) abs() uint32        { return e.clock + e.now }

// send transmits [from, to) in 1000-byte segments at the current time.
func (e *rackEnv) send(from, to uint32) {
	for o := from; o < to; o += 1000 {
		e.r.OnTransmit(&e.sb, Segment{Start: e.seq(o), Len: min(1000, to-o), Kind: SegNew}, e.abs())
	}
}

func (e *rackEnv) xmit(seg Segment) { e.r.OnTransmit(&e.sb, seg, e.abs()) }

func (e *rackEnv) ack(ack uint32, blocks ...uint32) AckInfo {
	return e.ackTS(TSEcho{}, ack, blocks...)
}

func (e *rackEnv) ackTS(ts TSEcho, ack uint32, blocks ...uint32) AckInfo {
	var bs [4]SACKBlock
	n := 0
	for i := 0; i+1 < len(blocks); i += 2 {
		bs[n] = SACKBlock{e.seq(blocks[i]), e.seq(blocks[i+1])}
		n++
	}
	return e.r.OnAck(&e.sb, e.abs(), e.seq(ack), bs[:n], ts)
}

func (e *rackEnv) detect(srtt uint32) (uint32, uint32) {
	return e.r.DetectLoss(&e.sb, e.abs(), srtt)
}

// marks returns the lost marks as offset pairs.
func (e *rackEnv) marks() string {
	var s []uint32
	for i := 0; i < e.sb.LostMarks(); i++ {
		m := e.sb.LostMark(i)
		s = append(s, uint32(m.Start-e.base), uint32(m.End-e.base))
	}
	return fmt.Sprint(s)
}

func (e *rackEnv) check() {
	e.t.Helper()
	if err := rackInvariants(&e.r, &e.sb); err != nil {
		e.t.Fatal(err)
	}
}

// rackInvariants checks the structural invariants FuzzRACK relies on.
func rackInvariants(r *RACK, sb *Scoreboard) error {
	una, hd := sb.SndUna(), sb.HighData()
	if r.n > RACKCap {
		return fmt.Errorf("records %d > cap", r.n)
	}
	if r.n > 0 {
		if r.start[0] != una {
			return fmt.Errorf("first record at %#x, snd_una %#x", r.start[0], una)
		}
		if !r.end.InRange(una, hd.Add(1)) {
			return fmt.Errorf("records end %#x outside [%#x, %#x]", r.end, una, hd)
		}
		for k := 0; k < int(r.n); k++ {
			if !r.start[k].LessThan(r.recEnd(k)) {
				return fmt.Errorf("record %d empty or reversed: %#x..%#x", k, r.start[k], r.recEnd(k))
			}
		}
	}
	for i := 0; i < sb.LostMarks(); i++ {
		m := sb.LostMark(i)
		if !m.Start.LessThan(m.End) || !m.Start.InRange(una, hd) || !m.End.Sub(1).InRange(una, hd) {
			return fmt.Errorf("mark %d %#x..%#x outside [%#x, %#x)", i, m.Start, m.End, una, hd)
		}
		if i > 0 && !sb.LostMark(i-1).End.LessThan(m.Start) {
			return fmt.Errorf("marks %d, %d overlap or touch", i-1, i)
		}
	}
	if p := sb.Pipe(); uint64(p) > 2*uint64(uint32(hd-una)) {
		return fmt.Errorf("pipe %d > 2 * outstanding %d", p, uint32(hd-una))
	}
	if sb.InRecovery() {
		seg := sb.NextSeg(0)
		if seg.Kind == SegLost || seg.Kind == SegUnsacked || seg.Kind == SegRescue {
			if seg.Len == 0 || !seg.Start.InRange(una, hd) || !seg.End().Sub(1).InRange(una, hd) {
				return fmt.Errorf("NextSeg %+v outside [%#x, %#x)", seg, una, hd)
			}
		}
	}
	return nil
}

// warmUp gives RACK a min_RTT of rtt µs: one segment [0,1000) sent at 0
// and acknowledged at rtt.
func (e *rackEnv) warmUp(rtt uint32) {
	e.at(0)
	e.send(0, 1000)
	e.at(rtt)
	e.ack(1000)
	if m, ok := e.r.MinRTT(); !ok || m != rtt {
		e.t.Fatalf("min_RTT %d %v, want %d", m, ok, rtt)
	}
}

// TestRACKReorderingWindow: RFC 8985 section 6.2 step 5. The first of
// four segments sent 10 µs apart is missing when the second is SACKed; it
// becomes lost exactly RACK.rtt + reo_wnd after it was sent, not before,
// and DetectLoss returns the remaining wait for the reordering timer
// (section 6.3). Later-sent segments are never candidates.
func TestRACKReorderingWindow(t *testing.T) {
	for _, base := range sbBases {
		for _, clock := range rackClocks {
			e := newRACKEnv(t, base, clock)
			e.warmUp(1000)
			for i := uint32(0); i < 4; i++ { // [1000,5000) at 10000, 10010, ...
				e.at(10000 + 10*i)
				e.send(1000+1000*i, 2000+1000*i)
			}
			e.at(11030)
			if info := e.ack(1000, 2000, 3000); info.Sacked != 1000 {
				t.Fatalf("ack: %+v", info)
			}
			if xt, es, rtt, ok := e.r.XmitTs(); !ok || xt != clock+10010 || es != e.seq(3000) || rtt != 1020 {
				t.Fatalf("RACK state %d %#x %d %v", xt-clock, es, rtt, ok)
			}
			// reo_wnd = min(min_RTT/4 * 1, SRTT) = 250; lost at
			// 10000 + 1020 + 250 = 11270.
			if w := e.r.ReoWnd(&e.sb, 1000); w != 250 {
				t.Fatalf("reo_wnd %d", w)
			}
			steps := []struct {
				now, lost, timeout uint32
				marks              string
			}{
				{11030, 0, 240, "[]"},
				{11269, 0, 1, "[]"},
				{11270, 1000, 0, "[1000 2000]"},
				{11300, 0, 0, "[1000 2000]"}, // already lost: not again
			}
			for _, st := range steps {
				e.at(st.now)
				lost, tmo := e.detect(1000)
				if lost != st.lost || tmo != st.timeout || e.marks() != st.marks {
					t.Fatalf("at %d: lost %d timeout %d marks %s, want %d %d %s", st.now, lost, tmo, e.marks(), st.lost, st.timeout, st.marks)
				}
				e.check()
			}
			if !e.sb.IsLost(e.seq(1000)) || e.sb.IsLost(e.seq(3000)) || !e.sb.ShouldEnterRecovery() {
				t.Fatalf("IsLost / ShouldEnterRecovery")
			}
			// Pipe: [1000,2000) lost, [3000,5000) in flight.
			if p := e.sb.Pipe(); p != 2000 {
				t.Fatalf("pipe %d", p)
			}
			fr := e.sb.EnterRecovery()
			if fr.Start != e.seq(1000) || fr.Len != 1000 {
				t.Fatalf("fast retransmit %+v", fr)
			}
			e.xmit(fr)
			// The retransmission counts once (its original is lost),
			// although the hole is not RFC 6675 IsLost.
			if e.marks() != "[]" || e.sb.Pipe() != 3000 {
				t.Fatalf("after retransmission: marks %s pipe %d", e.marks(), e.sb.Pipe())
			}
			e.check()
		}
	}
}

// TestRACKReorderedArrival: a segment that arrives late, but within the
// reordering window, is never marked lost, and its delivery below
// RACK.fack sets RACK.reordering_seen (RFC 8985 section 6.2 step 3).
func TestRACKReorderedArrival(t *testing.T) {
	for _, base := range sbBases {
		for _, clock := range rackClocks {
			e := newRACKEnv(t, base, clock)
			e.warmUp(1000)
			for i := uint32(0); i < 4; i++ {
				e.at(10000 + 10*i)
				e.send(1000+1000*i, 2000+1000*i)
			}
			e.at(11030)
			e.ack(1000, 2000, 3000)
			if _, tmo := e.detect(1000); tmo != 240 || e.r.ReorderingSeen() {
				t.Fatalf("timeout %d reordering %v", tmo, e.r.ReorderingSeen())
			}
			e.at(11100)
			e.ack(3000) // the first segment arrives after all
			if lost, tmo := e.detect(1000); lost != 0 || tmo != 0 || e.marks() != "[]" {
				t.Fatalf("lost %d timeout %d marks %s", lost, tmo, e.marks())
			}
			if !e.r.ReorderingSeen() {
				t.Fatal("reordering not seen")
			}
			e.at(20000)
			if lost, _ := e.detect(1000); lost != 0 {
				t.Fatal("lost after arrival")
			}
			// With reordering seen, reo_wnd stays min_RTT/4 even in
			// recovery.
			e.sb.EnterRecovery()
			if w := e.r.ReoWnd(&e.sb, 1000); w != 250 {
				t.Fatalf("reo_wnd in recovery %d", w)
			}
			e.check()
		}
	}
}

// TestRACKSameTimeTieBreak: segments of one burst share a transmit time;
// RACK_sent_after then orders them by end sequence (RFC 8985 section 6.2),
// so only the unSACKed octets below RACK.end_seq can be lost.
func TestRACKSameTimeTieBreak(t *testing.T) {
	for _, base := range sbBases {
		e := newRACKEnv(t, base, 0xfffffc00)
		e.warmUp(1000)
		e.at(5000)
		e.send(1000, 6000) // one record
		if e.r.Records() != 1 {
			t.Fatalf("records %d", e.r.Records())
		}
		e.at(6000)
		e.ack(1000, 3000, 4000)
		// rtt 1000, reo_wnd 250: lost at 6250.
		if lost, tmo := e.detect(1000); lost != 0 || tmo != 250 {
			t.Fatalf("lost %d timeout %d", lost, tmo)
		}
		e.at(6250)
		// RACK.end_seq is 4000: [1000,3000) is lost; the mark may
		// include the SACKed [3000,4000), which is never resent.
		if lost, tmo := e.detect(1000); lost != 2000 || tmo != 0 || e.marks() != "[1000 4000]" {
			t.Fatalf("lost %d timeout %d marks %s", lost, tmo, e.marks())
		}
		if e.sb.IsLost(e.seq(4000)) || !e.sb.IsLost(e.seq(2999)) {
			t.Fatal("IsLost around RACK.end_seq")
		}
		e.check()
	}
}

// TestRACKLostRetransmission: RACK detects a lost retransmission, which
// RFC 6675 cannot see, once a segment sent after it is delivered; NextSeg
// offers it again under rule 1 although it lies below HighRxt, and Pipe
// stops counting it.
func TestRACKLostRetransmission(t *testing.T) {
	for _, base := range sbBases {
		e := newRACKEnv(t, base, 100)
		e.warmUp(1000)
		for i := uint32(0); i < 4; i++ { // [1000,5000)
			e.at(10000 + 10*i)
			e.send(1000+1000*i, 2000+1000*i)
		}
		e.at(11050)
		e.ack(1000, 2000, 5000)
		// Three segments SACKed and no reordering seen: reo_wnd 0.
		if w := e.r.ReoWnd(&e.sb, 1000); w != 0 {
			t.Fatalf("reo_wnd %d", w)
		}
		if lost, _ := e.detect(1000); lost != 1000 || !e.sb.ShouldEnterRecovery() {
			t.Fatalf("lost %d", lost)
		}
		e.xmit(e.sb.EnterRecovery()) // at 11050
		e.at(11060)
		e.xmit(e.sb.NextSeg(1000)) // new data [5000,6000)
		e.at(12100)
		e.ack(1000, 2000, 6000)
		if lost, tmo := e.detect(1000); lost != 1000 || tmo != 0 || e.marks() != "[1000 2000]" {
			t.Fatalf("lost retransmission: lost %d timeout %d marks %s", lost, tmo, e.marks())
		}
		if e.sb.HighRxt() != e.seq(2000) {
			t.Fatalf("HighRxt %#x", e.sb.HighRxt())
		}
		if p := e.sb.Pipe(); p != 0 {
			t.Fatalf("pipe %d, want 0", p)
		}
		seg := e.sb.NextSeg(1000)
		if seg != (Segment{e.seq(1000), 1000, SegLost}) {
			t.Fatalf("NextSeg %+v", seg)
		}
		e.xmit(seg)
		if p := e.sb.Pipe(); p != 1000 || e.marks() != "[]" {
			t.Fatalf("after the second retransmission: pipe %d marks %s", p, e.marks())
		}
		e.detect(1000)
		if p := e.sb.Pipe(); p != 1000 || e.marks() != "[]" {
			t.Fatalf("after DetectLoss: pipe %d marks %s", p, e.marks())
		}
		// The probe timeout presumes the retransmission lost too.
		e.r.RetransmissionsLost(&e.sb)
		if p := e.sb.Pipe(); p != 0 || e.marks() != "[1000 2000]" || e.sb.NextSeg(0).Kind != SegLost {
			t.Fatalf("after RetransmissionsLost: pipe %d marks %s", p, e.marks())
		}
		e.check()
	}
}

// TestRACKRetransmitAmbiguity: RFC 8985 section 6.2 step 2. The ACK of a
// retransmitted segment updates RACK only if it cannot be for the
// original: its TSecr is not older than the retransmission, and the RTT
// measured from the retransmission is not below min_RTT.
func TestRACKRetransmitAmbiguity(t *testing.T) {
	tests := []struct {
		name   string
		ackAt  uint32 // µs after the retransmission
		ts     TSEcho
		update bool
	}{
		{"no timestamps, rtt >= min_RTT", 1000, TSEcho{}, true},
		{"no timestamps, rtt < min_RTT", 999, TSEcho{}, false},
		{"TSecr of the original", 1500, TSEcho{OK: true, Ecr: 100, Now: 104}, false},
		{"TSecr of the retransmission", 1500, TSEcho{OK: true, Ecr: 103, Now: 104}, true},
		{"TSecr within a tick", 1500, TSEcho{OK: true, Ecr: 102, Now: 104}, true},
	}
	for _, tt := range tests {
		e := newRACKEnv(t, 0xfffffe00, 7)
		e.warmUp(1000)
		e.at(10000)
		e.send(1000, 3000)
		e.at(20000)
		e.xmit(Segment{Start: e.seq(1000), Len: 1000, Kind: SegRetransmit})
		e.at(20000 + tt.ackAt)
		e.ackTS(tt.ts, 1000, 1000, 2000) // SACK of the retransmitted segment only
		xt, _, _, ok := e.r.XmitTs()
		got := xt == e.clock+20000
		if got != tt.update {
			t.Errorf("%s: RACK updated %v (xmit_ts %d ok %v), want %v", tt.name, got, xt-e.clock, ok, tt.update)
		}
	}
}

// TestRACKReoWndDSACK: RFC 8985 section 6.2 step 4. reo_wnd_mult grows by
// one per round trip that sees a D-SACK (not per D-SACK), the window is
// capped by SRTT, and the multiplier returns to 1 after 16
// (dsackRecoveriesDecay) recoveries without a D-SACK.
func TestRACKReoWndDSACK(t *testing.T) {
	e := newRACKEnv(t, 0xfffff000, 0xfff00000)
	e.warmUp(1000)
	e.r.flags |= rackReordering // as after reordering, so reo_wnd is not zeroed
	now := uint32(2000)
	off := uint32(1000)
	round := func(dsacks int) {
		// One round: send two segments, ACK the first, D-SACK it
		// (below the cumulative ACK) dsacks times while the second is
		// outstanding, then ACK the second, ending the round.
		e.at(now)
		e.send(off, off+2000)
		now += 1000
		e.at(now)
		e.ack(off + 1000)
		for i := 0; i < dsacks; i++ {
			e.ack(off+1000, off, off+1000)
		}
		e.ack(off + 2000)
		off += 2000
	}
	want := []int{2, 3, 3, 4}
	for i, d := range []int{1, 2, 0, 3} {
		round(d)
		if d == 0 {
			continue
		}
		if got := e.r.ReoWndMult(); got != want[i] {
			t.Fatalf("round %d: mult %d, want %d", i, got, want[i])
		}
	}
	if w := e.r.ReoWnd(&e.sb, 100_000); w != 1000 { // min_RTT/4 * 4
		t.Fatalf("reo_wnd %d", w)
	}
	if w := e.r.ReoWnd(&e.sb, 600); w != 600 { // capped by SRTT
		t.Fatalf("reo_wnd capped %d", w)
	}
	// Recoveries without D-SACK: 15 keep the multiplier, the 16th resets.
	for i := 1; i <= dsackRecoveriesDecay; i++ {
		e.at(now)
		e.send(off, off+4000)
		now += 1000
		e.at(now)
		e.ack(off, off+1000, off+4000)
		e.xmit(e.sb.EnterRecovery())
		if info := e.ack(off + 4000); !info.RecoveryDone {
			t.Fatalf("recovery %d not done", i)
		}
		off += 4000
		wantMult := 4
		if i == dsackRecoveriesDecay {
			wantMult = 1
		}
		if got := e.r.ReoWndMult(); got != wantMult {
			t.Fatalf("after %d recoveries: mult %d, want %d", i, got, wantMult)
		}
	}
}

// TestRACKCapacity: many transmissions at distinct times stay within
// RACKCap records covering [snd_una, HighData), and merging never makes an
// octet look sent earlier than it was: nothing is lost before the exact
// deadline.
func TestRACKCapacity(t *testing.T) {
	e := newRACKEnv(t, 0xffff0000, 0xffff0000)
	e.warmUp(1000)
	for i := uint32(0); i < 200; i++ {
		e.at(10000 + i)
		e.send(1000+1000*i, 2000+1000*i)
		e.check()
	}
	if e.r.Records() > RACKCap {
		t.Fatalf("records %d", e.r.Records())
	}
	// The last segment is SACKed: RACK.xmit_ts = 10199. Segment i is
	// exactly lost at 10000 + i + rtt + 250.
	e.at(11199)
	e.ack(1000, 200000, 201000)
	for now := uint32(11199); now < 11500; now += 7 {
		e.at(now)
		e.detect(1000)
		e.check()
		for i := 0; i < e.sb.LostMarks(); i++ {
			m := e.sb.LostMark(i)
			last := (uint32(m.End-e.base) - 2000) / 1000 // highest segment index
			if deadline := 10000 + last + 1000 + 250; now < deadline {
				t.Fatalf("at %d: segment %d lost before %d", now, last, deadline)
			}
		}
	}
	// Long after, everything unSACKed below is lost.
	e.at(20000)
	e.detect(1000)
	if e.marks() != "[1000 200000]" {
		t.Fatalf("marks %s", e.marks())
	}
}

// TestRACKMarksCapacity: more lost runs than LostCap, separated by
// unSACKed data that is not lost, keep the lowest; DetectLoss rewrites the
// forgotten ones once the lower ones are retransmitted.
func TestRACKMarksCapacity(t *testing.T) {
	e := newRACKEnv(t, 0, 0)
	e.warmUp(1000)
	// Alternate: even segments sent at 10000, odd ones at 30000, then
	// one more at 20000, which is SACKed: the even ones are lost, the
	// odd ones (sent after it) are not.
	const runs = LostCap + 2
	for i := uint32(0); i < 2*runs; i++ {
		at := uint32(10000)
		if i%2 == 1 {
			at = 30000
		}
		e.at(at)
		e.send(1000+1000*i, 2000+1000*i)
	}
	hi := uint32(1000 + 1000*(2*runs+1))
	e.at(20000)
	e.send(hi-1000, hi)
	e.at(30500)
	e.ack(1000, hi-1000, hi)
	e.at(40000)
	if lost, _ := e.detect(1000); lost != runs*1000 || e.sb.LostMarks() != LostCap {
		t.Fatalf("lost %d marks %d", lost, e.sb.LostMarks())
	}
	e.check()
	for i := 0; i < LostCap; i++ {
		e.xmit(Segment{Start: e.seq(1000 + 2000*uint32(i)), Len: 1000, Kind: SegRetransmit})
	}
	if e.sb.LostMarks() != 0 {
		t.Fatalf("marks %s after retransmissions", e.marks())
	}
	e.detect(1000) // writes the forgotten marks again
	if want := fmt.Sprint([]uint32{1000 + 2000*LostCap, 2000 + 2000*LostCap, 3000 + 2000*LostCap, 4000 + 2000*LostCap}); e.marks() != want {
		t.Fatalf("marks %s, want %s", e.marks(), want)
	}
	e.check()
}

// TestRACKNoAllocs: the per-transmission and per-ACK paths do not
// allocate.
func TestRACKNoAllocs(t *testing.T) {
	var sb Scoreboard
	var r RACK
	var una Seq = 0xfffff000
	sb.Init(una, 1448)
	r.Init(una)
	blocks := []SACKBlock{{}, {}, {}}
	now := uint32(0xffff0000)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := 0; i < 10; i++ {
			r.OnTransmit(&sb, Segment{Start: sb.HighData(), Len: 1448, Kind: SegNew}, now)
			now += 3
		}
		now += 100
		blocks[0] = SACKBlock{una.Add(1448), una.Add(4 * 1448)}
		blocks[1] = SACKBlock{una.Add(5 * 1448), una.Add(7 * 1448)}
		r.OnAck(&sb, now, una, blocks[:2], TSEcho{OK: true, Ecr: 1, Now: 1})
		r.DetectLoss(&sb, now+1000, 100)
		if sb.ShouldEnterRecovery() {
			r.OnTransmit(&sb, sb.EnterRecovery(), now)
		}
		for sb.Pipe() < 20*1448 {
			r.OnTransmit(&sb, sb.NextSeg(1448), now)
		}
		blocks[0] = SACKBlock{una, una.Add(1448)} // D-SACK
		una = una.Add(4 * 1448)
		r.OnAck(&sb, now, una, blocks[:1], TSEcho{})
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v", allocs)
	}
}

func BenchmarkRACKAckDetect(b *testing.B) {
	var sb Scoreboard
	var r RACK
	sb.Init(0, 1448)
	r.Init(0)
	blocks := make([]SACKBlock, 3)
	var una Seq
	now := uint32(0)
	for i := 0; i < b.N; i++ {
		for k := 0; k < 10; k++ {
			r.OnTransmit(&sb, Segment{Start: sb.HighData(), Len: 1448, Kind: SegNew}, now)
			now += 2
		}
		now += 50
		blocks[0] = SACKBlock{una.Add(1448), una.Add(4 * 1448)}
		blocks[1] = SACKBlock{una.Add(5 * 1448), una.Add(7 * 1448)}
		blocks[2] = SACKBlock{una.Add(8 * 1448), una.Add(9 * 1448)}
		r.OnAck(&sb, now, una, blocks, TSEcho{})
		r.DetectLoss(&sb, now, 100)
		una = una.Add(10 * 1448)
		r.OnAck(&sb, now, una, nil, TSEcho{})
	}
}

// FuzzRACK drives RACK and its Scoreboard with arbitrary transmissions,
// ACKs (with arbitrary, also bogus, SACK blocks), clock steps, loss
// detection and timeouts, and checks that nothing panics and the
// invariants hold: records within [snd_una, HighData] and bounded, lost
// marks and NextSeg's segments within [snd_una, snd_max), Pipe bounded.
func FuzzRACK(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 5, 2, 3, 4, 1, 3, 0, 5})
	f.Add([]byte{0, 9, 0, 3, 0, 7, 2, 1, 0, 2, 4, 200, 3, 3, 7, 1, 2, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var sb Scoreboard
		var r RACK
		base := Seq(0xffffff00)
		sb.Init(base, 100)
		r.Init(base)
		now := uint32(0xfffff000)
		next := func() uint32 {
			if len(data) == 0 {
				return 0
			}
			v := uint32(data[0])
			data = data[1:]
			return v
		}
		for steps := 0; len(data) > 0 && steps < 2000; steps++ {
			out := uint32(sb.HighData() - sb.SndUna())
			switch next() % 8 {
			case 0: // new data
				r.OnTransmit(&sb, Segment{Start: sb.HighData(), Len: 1 + next()%200, Kind: SegNew}, now)
			case 1: // a retransmission of NextSeg's choice, or arbitrary
				if sb.InRecovery() {
					if seg := sb.NextSeg(next() % 150); seg.Kind != SegNone {
						r.OnTransmit(&sb, seg, now)
					}
				} else if out > 0 {
					s := sb.SndUna().Add(next() * 7 % out)
					r.OnTransmit(&sb, Segment{Start: s, Len: 1 + next()%150, Kind: SegRetransmit}, now)
				}
			case 2: // ACK
				var bs [4]SACKBlock
				nb := int(next() % 5)
				for i := 0; i < nb; i++ {
					s := sb.SndUna().Add(next() * 5).Sub(64)
					bs[i] = SACKBlock{s, s.Add(next() * 3).Sub(20)}
				}
				ack := sb.SndUna()
				if out > 0 && next()%3 == 0 {
					ack = ack.Add(next() * 3 % (out + 1))
				}
				ts := TSEcho{OK: next()%2 == 0, Ecr: next(), Now: next()}
				info := r.OnAck(&sb, now, ack, bs[:nb], ts)
				if info.DSACK && !isDSACK(ack, bs[:nb]) {
					t.Fatal("DSACK mismatch")
				}
			case 3:
				now += next() * next()
			case 4:
				r.DetectLoss(&sb, now, next()*10)
				if sb.ShouldEnterRecovery() && next()%2 == 0 {
					r.OnTransmit(&sb, sb.EnterRecovery(), now)
				}
			case 5:
				if next()%4 == 0 {
					r.OnRTO(&sb)
				}
			case 6:
				if next()%2 == 0 {
					r.RetransmissionsLost(&sb)
				} else {
					sb.RetransmissionsLost()
				}
			case 7:
				now -= next() // a clock that stalls or jitters backwards
			}
			if err := rackInvariants(&r, &sb); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// rackModel is a per-segment RACK written straight from the RFC 8985
// section 6.2 pseudocode (no D-SACKs, no timestamps), the reference for
// TestRACKRandomModel.
type rackModel struct {
	ts                []uint32
	retx, lost, sackd []bool
	xmitTs, rtt       uint32
	endSeq            int // segment end, in segments
	valid             bool
	fack              int
	minRTT            uint32
	haveMin           bool
	reordering        bool
}

func TestRACKRandomModel(t *testing.T) {
	const mss, N = 100, 20
	r := newRand(5)
	for iter := 0; iter < 2000; iter++ {
		base := Seq(r.Uint32())
		clock := r.Uint32()
		var sb Scoreboard
		var rk RACK
		sb.Init(base, mss)
		rk.Init(base)
		m := &rackModel{ts: make([]uint32, N), retx: make([]bool, N), lost: make([]bool, N), sackd: make([]bool, N)}
		now := uint32(0)
		sent, una := 0, 0
		seq := func(i int) Seq { return base.Add(uint32(i) * mss) }
		for step := 0; step < 80; step++ {
			switch r.Intn(6) {
			case 0, 1: // new segment
				if sent < N {
					m.ts[sent] = now
					rk.OnTransmit(&sb, Segment{Start: seq(sent), Len: mss, Kind: SegNew}, clock+now)
					sent++
				}
			case 2: // retransmit an outstanding, unSACKed segment
				if una < sent {
					i := una + r.Intn(sent-una)
					if !m.sackd[i] {
						m.ts[i], m.retx[i], m.lost[i] = now, true, false
						rk.OnTransmit(&sb, Segment{Start: seq(i), Len: mss, Kind: SegRetransmit}, clock+now)
					}
				}
			case 3: // ACK
				if una == sent {
					continue
				}
				newUna := una + r.Intn(min(3, sent-una+1))
				var bs [3]SACKBlock
				nb := r.Intn(4)
				var newly []int
				for i := una; i < newUna; i++ {
					if !m.sackd[i] {
						newly = append(newly, i)
					}
					m.sackd[i] = true
				}
				for k := 0; k < nb; k++ {
					s := newUna + r.Intn(sent-newUna+1)
					e := min(sent, s+1+r.Intn(3))
					if s >= e {
						nb = k
						break
					}
					bs[k] = SACKBlock{seq(s), seq(e)}
					for i := s; i < e; i++ {
						if !m.sackd[i] {
							newly = append(newly, i)
						}
						m.sackd[i] = true
					}
				}
				// Step 1-2.
				found, bi := false, 0
				for _, i := range newly {
					if m.retx[i] && m.haveMin && now-m.ts[i] < m.minRTT {
						continue
					}
					if !found || sentAfter(m.ts[i], seq(i+1), m.ts[bi], seq(bi+1)) {
						found, bi = true, i
					}
				}
				// Step 3, in ascending end order.
				fack := m.fack
				for i := una; i < sent; i++ {
					for _, j := range newly {
						if j != i {
							continue
						}
						if i+1 > fack {
							fack = i + 1
						} else if i+1 < fack && !m.retx[i] {
							m.reordering = true
						}
					}
				}
				m.fack = max(fack, newUna)
				if found {
					rtt := now - m.ts[bi]
					if !m.haveMin || rtt < m.minRTT {
						m.minRTT, m.haveMin = rtt, true
					}
					m.rtt = rtt
					if !m.valid || sentAfter(m.ts[bi], seq(bi+1), m.xmitTs, seq(m.endSeq)) {
						m.xmitTs, m.endSeq, m.valid = m.ts[bi], bi+1, true
					}
				}
				una = newUna
				if una == sent {
					m.valid = false
				}
				blocks := bs[:nb]
				for isDSACK(seq(una), blocks) {
					blocks = blocks[1:] // inside the second block: same union, no D-SACK
				}
				rk.OnAck(&sb, clock+now, seq(una), blocks, TSEcho{})
				xt, es, rtt, ok := rk.XmitTs()
				if ok != m.valid || ok && (xt != clock+m.xmitTs || es != seq(m.endSeq) || rtt != m.rtt) || rk.ReorderingSeen() != m.reordering {
					t.Fatalf("iter %d step %d: RACK %d %d %d %v reo %v, model %d %d %d %v reo %v", iter, step,
						xt-clock, uint32(es-base)/mss, rtt, ok, rk.ReorderingSeen(), m.xmitTs, m.endSeq, m.rtt, m.valid, m.reordering)
				}
			case 4: // detect loss
				srtt := uint32(r.Intn(400))
				var timeout uint32
				if m.valid {
					// reo_wnd (step 4, no D-SACK: mult 1).
					var reo uint32
					nsacked := 0
					for i := una; i < sent; i++ {
						if m.sackd[i] {
							nsacked++
						}
					}
					if m.reordering || !sb.InRecovery() && nsacked < DupThresh {
						reo = srtt
						if m.haveMin {
							reo = min(m.minRTT/4, srtt)
						}
					}
					for i := una; i < sent; i++ {
						if m.sackd[i] || m.lost[i] || !sentAfter(m.xmitTs, seq(m.endSeq), m.ts[i], seq(i+1)) {
							continue
						}
						if rem := int32(m.ts[i] + m.rtt + reo - now); rem <= 0 {
							m.lost[i] = true
						} else {
							timeout = max(timeout, uint32(rem))
						}
					}
				}
				_, tmo := rk.DetectLoss(&sb, clock+now, srtt)
				if tmo != timeout {
					t.Fatalf("iter %d step %d: timeout %d, model %d\n%s\nmodel ts %v retx %v lost %v sacked %v una %d sent %d xmit %d end %d rtt %d clock %d now %d minrtt %d/%v impl %v reo %d srtt %d rec %v", iter, step, tmo, timeout, rk.dump(base), m.ts, m.retx, m.lost, m.sackd, una, sent, m.xmitTs, m.endSeq, m.rtt, clock, now, m.minRTT, m.haveMin, rk.minRTT, rk.ReoWnd(&sb, srtt), srtt, sb.InRecovery())
				}
				for i := una; i < sent; i++ {
					if m.sackd[i] {
						continue
					}
					marked := false
					for k := 0; k < sb.LostMarks(); k++ {
						mk := sb.LostMark(k)
						marked = marked || seq(i).InRange(mk.Start, mk.End)
					}
					if marked != m.lost[i] {
						t.Fatalf("iter %d step %d: segment %d marked %v, model lost %v", iter, step, i, marked, m.lost[i])
					}
				}
				if sb.ShouldEnterRecovery() && r.Intn(2) == 0 {
					sb.EnterRecovery() // changes reo_wnd; nothing sent
				}
			case 5:
				now += uint32(r.Intn(300))
			}
			if err := rackInvariants(&rk, &sb); err != nil {
				t.Fatalf("iter %d step %d: %v", iter, step, err)
			}
		}
	}
}

// dump formats the records as [start,end)@ts/flags with offsets from base.
func (r *RACK) dump(base Seq) string {
	s := ""
	for k := 0; k < int(r.n); k++ {
		s += fmt.Sprintf("[%d,%d)@%d/%d ", uint32(r.start[k]-base), uint32(r.recEnd(k)-base), r.ts[k], r.fl[k])
	}
	return s
}
