package tcp

import "testing"

// TestDSACKRFC2883Examples replays the ACK sequences of RFC 2883 section 4
// at a sender and checks which ACK carries a D-SACK, and that it adds no
// SACK information.
func TestDSACKRFC2883Examples(t *testing.T) {
	type ack struct {
		ack    uint32
		blocks []uint32
		dsack  bool
		sacked uint32
	}
	tests := []struct {
		name      string
		una, high uint32 // sequence numbers as in the RFC
		mss       uint32
		acks      []ack
	}{
		{"4.1.1 example 1: duplicate segment", 3000, 4000, 500, []ack{
			// ACKs 3500 and 4000 dropped; 3000-3499 retransmitted.
			{4000, []uint32{3000, 3500}, true, 0},
		}},
		{"4.1.2 example 2: out-of-order and duplicate segment", 3000, 5000, 500, []ack{
			{4000, []uint32{3000, 3500, 4500, 5000}, true, 500},
		}},
		{"4.1.3 example 3: duplicate of an out-of-order segment", 3500, 5500, 500, []ack{
			{4000, nil, false, 0},
			{4000, []uint32{4500, 5000}, false, 500},
			{4000, []uint32{4500, 5500}, false, 500},
			{4000, []uint32{5000, 5500, 4500, 5500}, true, 0},
		}},
		{"4.2.1 example 4: single duplicate subsegment", 500, 2500, 500, []ack{
			{1000, nil, false, 0},
			{1000, []uint32{2000, 2500}, false, 500},
			{1500, []uint32{2000, 2500}, false, 0},
			{2500, []uint32{1000, 1500}, true, 0},
		}},
		{"4.2.2 example 5: two duplicate subsegments covered by the cumulative ACK", 500, 3500, 500, []ack{
			{1000, nil, false, 0},
			{1000, []uint32{3000, 3500}, false, 500},
			{1500, []uint32{3000, 3500}, false, 0},
			{1500, []uint32{2000, 2500, 3000, 3500}, false, 500},
			{2500, []uint32{1000, 1500, 3000, 3500}, true, 0},
		}},
		{"4.2.3 example 6: two duplicate subsegments not covered by the cumulative ACK", 500, 4000, 500, []ack{
			{1000, nil, false, 0},
			{1000, []uint32{3500, 4000}, false, 500},
			{1000, []uint32{1500, 2000, 3500, 4000}, false, 500},
			{1000, []uint32{1500, 2500, 3500, 4000}, false, 500},
			{1000, []uint32{1500, 2000, 1500, 3000, 3500, 4000}, true, 500},
		}},
		{"not D-SACK: first block above the ACK, beside the second", 0, 5000, 1000, []ack{
			{1000, []uint32{3000, 4000, 2000, 3000}, false, 2000},
			{1000, []uint32{2000, 4000, 2500, 3500}, false, 0}, // overlaps but not inside
		}},
		{"not D-SACK: empty or reversed first block", 0, 5000, 1000, []ack{
			{1000, []uint32{500, 500}, false, 0},
			{1000, []uint32{900, 800}, false, 0},
		}},
	}
	for _, base := range sbBases {
		for _, tt := range tests {
			e := newSBEnv(t, base-Seq(tt.una), tt.mss) // so e.seq(x) is RFC number x
			e.sb.Init(e.seq(tt.una), tt.mss)
			e.send(tt.una, tt.high, tt.mss)
			for i, a := range tt.acks {
				info := e.ack(a.ack, a.blocks...)
				if info.DSACK != a.dsack || info.Sacked != a.sacked || info.DupAck != (a.sacked > 0) {
					t.Fatalf("%s: ACK %d: %+v, want DSACK %v Sacked %d", tt.name, i, info, a.dsack, a.sacked)
				}
				if a.dsack && info.DSACKBlock != (SACKBlock{e.seq(a.blocks[0]), e.seq(a.blocks[1])}) {
					t.Fatalf("%s: ACK %d: D-SACK block %+v", tt.name, i, info.DSACKBlock)
				}
			}
		}
	}
}

// undoEnv: ten 1000-byte segments outstanding; segment 0's ACK clock
// suggests a loss (three SACKs), recovery starts and retransmits it.
func undoEnv(t *testing.T, base Seq) *sbEnv {
	e := newSBEnv(t, base, 1000)
	e.send(0, 10000, 1000)
	e.ack(0, 1000, 4000)
	if !e.sb.ShouldEnterRecovery() {
		t.Fatal("no recovery")
	}
	e.sb.OnTransmit(e.sb.EnterRecovery())
	return e
}

// TestUndoSpurious: RFC 3708 section 3 / Linux DSACK undo. A recovery is
// spurious only once D-SACKs cover every octet it retransmitted; D-SACKs
// of data it did not retransmit (network duplicates) do not count; the
// report comes once.
func TestUndoSpurious(t *testing.T) {
	for _, base := range sbBases {
		t.Run("reordering: the original arrives, then the retransmission", func(t *testing.T) {
			e := undoEnv(t, base)
			if e.sb.RecoverySpurious() {
				t.Fatal("spurious before any D-SACK")
			}
			if info := e.ack(4000); info.Spurious || info.DSACK { // the delayed original
				t.Fatalf("%+v", info)
			}
			info := e.ack(4000, 0, 1000) // the retransmission, D-SACKed
			if !info.DSACK || !info.Spurious || !e.sb.RecoverySpurious() {
				t.Fatalf("%+v spurious %v", info, e.sb.RecoverySpurious())
			}
			if info := e.ack(4000, 0, 1000); info.Spurious { // once
				t.Fatalf("reported twice: %+v", info)
			}
			if !e.sb.RecoverySpurious() {
				t.Fatal("RecoverySpurious forgot")
			}
			e.sb.ForgetUndo()
			if e.sb.RecoverySpurious() {
				t.Fatal("after ForgetUndo")
			}
		})
		t.Run("two retransmissions, one D-SACKed", func(t *testing.T) {
			e := undoEnv(t, base)
			e.ack(0, 5000, 8000, 1000, 4000)
			seg := e.sb.NextSeg(0)
			if seg != e.seg(4000, 1000, SegLost) {
				t.Fatalf("NextSeg %s", e.rel(seg))
			}
			e.sb.OnTransmit(seg)
			if info := e.ack(4000, 0, 1000, 5000, 8000); !info.DSACK || info.Spurious {
				t.Fatalf("first D-SACK: %+v", info)
			}
			if e.sb.RecoverySpurious() {
				t.Fatal("spurious with one retransmission undisputed")
			}
			// The second retransmission was needed: 4000 arrives once;
			// no D-SACK for it ever comes.
			if info := e.ack(8000); info.Spurious || !e.sb.InRecovery() {
				t.Fatalf("%+v", info)
			}
			// A D-SACK of a segment never retransmitted (the network
			// duplicated it) must not complete the undo.
			if info := e.ack(8000, 6000, 7000); !info.DSACK || info.Spurious || e.sb.RecoverySpurious() {
				t.Fatalf("network duplicate: %+v", info)
			}
			// The late D-SACK for the second retransmission does.
			if info := e.ack(8000, 4000, 5000); !info.Spurious {
				t.Fatalf("second D-SACK: %+v", info)
			}
		})
		t.Run("no retransmission, no undo", func(t *testing.T) {
			e := newSBEnv(t, base, 1000)
			e.send(0, 10000, 1000)
			e.ack(1000, 1000, 2000)
			e.sb.EnterRecovery() // not transmitted
			if info := e.ack(1000, 0, 1000); !info.DSACK || info.Spurious || e.sb.RecoverySpurious() {
				t.Fatalf("%+v", info)
			}
		})
		t.Run("spurious RTO: every go-back-N retransmission D-SACKed", func(t *testing.T) {
			e := newSBEnv(t, base, 1000)
			e.send(0, 4000, 1000)
			e.sb.OnRTO()
			e.sb.OnTransmit(e.seg(0, 1000, SegRetransmit))
			e.sb.OnTransmit(e.seg(1000, 1000, SegRetransmit))
			if info := e.ack(4000); info.Spurious { // the originals' ACK was late
				t.Fatalf("%+v", info)
			}
			if info := e.ack(4000, 0, 1000); info.Spurious {
				t.Fatalf("half: %+v", info)
			}
			if info := e.ack(4000, 1000, 2000); !info.Spurious {
				t.Fatalf("all: %+v", info)
			}
		})
		t.Run("a new episode starts over", func(t *testing.T) {
			e := undoEnv(t, base)
			e.ack(10000)
			e.send(10000, 20000, 1000)
			e.ack(10000, 11000, 14000)
			e.sb.OnTransmit(e.sb.EnterRecovery())
			// A late D-SACK of the previous episode's retransmission
			// is outside the new episode.
			if info := e.ack(10000, 0, 1000); !info.DSACK || info.Spurious {
				t.Fatalf("%+v", info)
			}
			if info := e.ack(14000, 10000, 11000); !info.Spurious {
				t.Fatalf("%+v", info)
			}
		})
		t.Run("retransmissions outside recovery are not the episode's", func(t *testing.T) {
			e := undoEnv(t, base)
			e.ack(10000)                                      // recovery ends
			e.sb.OnTransmit(e.seg(9000, 1000, SegRetransmit)) // e.g. a probe
			if info := e.ack(10000, 0, 1000); !info.Spurious {
				t.Fatalf("%+v", info)
			}
		})
	}
}

// TestUndoNoAllocs: D-SACK processing on the per-ACK path does not
// allocate.
func TestUndoNoAllocs(t *testing.T) {
	var sb Scoreboard
	var una Seq = 0xfffff000
	sb.Init(una, 1000)
	blocks := []SACKBlock{{}, {}}
	allocs := testing.AllocsPerRun(1000, func() {
		sb.OnTransmit(Segment{Start: sb.HighData(), Len: 10000, Kind: SegNew})
		blocks[0] = SACKBlock{una.Add(1000), una.Add(4000)}
		sb.OnAck(una, blocks[:1])
		if sb.ShouldEnterRecovery() {
			sb.OnTransmit(sb.EnterRecovery())
		}
		una = una.Add(10000)
		sb.OnAck(una, nil)
		blocks[0] = SACKBlock{una.Sub(10000), una.Sub(9000)}
		sb.OnAck(una, blocks[:1])
		_ = sb.RecoverySpurious()
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v", allocs)
	}
}
