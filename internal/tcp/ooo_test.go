package tcp

import (
	"fmt"
	"testing"
)

func blocks(o *OOO) []SACKBlock {
	var out []SACKBlock
	for i := 0; i < o.Len(); i++ {
		out = append(out, o.At(i))
	}
	return out
}

func sameBlocks(a, b []SACKBlock) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type oooOp struct {
	adv        bool // Advance(to) instead of Insert(start, end)
	start, end uint32
	want       OOOStatus
	wantEv     SACKBlock // relative to base
	wantGot    uint32    // Advance result
}

func TestOOOTable(t *testing.T) {
	ins := func(s, e uint32, st OOOStatus) oooOp { return oooOp{start: s, end: e, want: st} }
	adv := func(to, got uint32) oooOp { return oooOp{adv: true, start: to, wantGot: got} }
	b := func(s, e uint32) SACKBlock { return SACKBlock{Seq(s), Seq(e)} }
	tests := []struct {
		name  string
		ops   []oooOp
		want  []SACKBlock // intervals after all ops, relative to base
		sack3 []SACKBlock // SACKBlocks(_, 3) after all ops
	}{
		{"single", []oooOp{ins(10, 20, OOOStored)}, []SACKBlock{b(10, 20)}, []SACKBlock{b(10, 20)}},
		{"disjoint sorted", []oooOp{ins(30, 40, OOOStored), ins(10, 20, OOOStored), ins(50, 60, OOOStored)},
			[]SACKBlock{b(10, 20), b(30, 40), b(50, 60)}, []SACKBlock{b(50, 60), b(10, 20), b(30, 40)}},
		{"adjacent left and right merge", []oooOp{ins(10, 20, OOOStored), ins(30, 40, OOOStored), ins(20, 30, OOOStored)},
			[]SACKBlock{b(10, 40)}, []SACKBlock{b(10, 40)}},
		{"overlap spanning three", []oooOp{ins(10, 12, OOOStored), ins(14, 16, OOOStored), ins(18, 20, OOOStored), ins(22, 24, OOOStored), ins(11, 19, OOOStored)},
			[]SACKBlock{b(10, 20), b(22, 24)}, []SACKBlock{b(10, 20), b(22, 24)}},
		{"contained duplicate refreshes order", []oooOp{ins(10, 20, OOOStored), ins(30, 40, OOOStored), ins(12, 14, OOOStored)},
			[]SACKBlock{b(10, 20), b(30, 40)}, []SACKBlock{b(10, 20), b(30, 40)}},
		{"below rcv_nxt trimmed", []oooOp{ins(0xfffffff0, 5, OOOStored)}, []SACKBlock{b(0, 5)}, []SACKBlock{b(0, 5)}},
		{"entirely old", []oooOp{ins(0xfffffff0, 0, OOODuplicate), ins(7, 7, OOODuplicate)}, nil, nil},
		{"invalid", []oooOp{ins(20, 10, OOOInvalid)}, nil, nil},
		{"advance pops first", []oooOp{ins(10, 20, OOOStored), ins(30, 40, OOOStored), adv(10, 10)},
			[]SACKBlock{b(30, 40)}, []SACKBlock{b(30, 40)}},
		{"advance into interval trims and pops", []oooOp{ins(10, 20, OOOStored), adv(15, 5)}, nil, nil},
		{"advance past intervals", []oooOp{ins(10, 20, OOOStored), ins(30, 40, OOOStored), ins(50, 60, OOOStored), adv(45, 0)},
			[]SACKBlock{b(50, 60)}, []SACKBlock{b(50, 60)}},
		{"advance in gap", []oooOp{ins(10, 20, OOOStored), adv(5, 0)}, []SACKBlock{b(10, 20)}, []SACKBlock{b(10, 20)}},
		{"advance backwards ignored", []oooOp{ins(10, 20, OOOStored), adv(0xfffffff0, 0)}, []SACKBlock{b(10, 20)}, []SACKBlock{b(10, 20)}},
		{"insert at rcv_nxt then advance", []oooOp{ins(10, 20, OOOStored), ins(0, 10, OOOStored), adv(0, 20)}, nil, nil},
		{"full: farther rejected", []oooOp{
			ins(10, 11, OOOStored), ins(20, 21, OOOStored), ins(30, 31, OOOStored), ins(40, 41, OOOStored),
			ins(50, 51, OOOStored), ins(60, 61, OOOStored), ins(70, 71, OOOStored), ins(80, 81, OOOStored),
			ins(90, 91, OOORejected), ins(82, 83, OOORejected),
			ins(81, 82, OOOStored), // touches the farthest: merges, no slot needed
		}, []SACKBlock{b(10, 11), b(20, 21), b(30, 31), b(40, 41), b(50, 51), b(60, 61), b(70, 71), b(80, 82)},
			[]SACKBlock{b(80, 82), b(70, 71), b(60, 61)}},
		{"full: nearer evicts farthest", []oooOp{
			ins(10, 11, OOOStored), ins(20, 21, OOOStored), ins(30, 31, OOOStored), ins(40, 41, OOOStored),
			ins(50, 51, OOOStored), ins(60, 61, OOOStored), ins(70, 71, OOOStored), ins(80, 81, OOOStored),
			{start: 0, end: 1, want: OOOStoredEvicted, wantEv: b(80, 81)}, // in-order data is never refused
			ins(75, 76, OOORejected), // now farther than the farthest (70)
			{start: 65, end: 66, want: OOOStoredEvicted, wantEv: b(70, 71)},
		}, []SACKBlock{b(0, 1), b(10, 11), b(20, 21), b(30, 31), b(40, 41), b(50, 51), b(60, 61), b(65, 66)},
			[]SACKBlock{b(65, 66), b(0, 1), b(60, 61)}},
	}
	for _, base := range []Seq{0, 1000, 0xfffffff8, 0x7ffffffc} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/base=%#x", tt.name, uint32(base)), func(t *testing.T) {
				var o OOO
				o.Reset(base)
				for k, op := range tt.ops {
					if op.adv {
						if got := o.Advance(base.Add(op.start)); got != op.wantGot {
							t.Fatalf("op %d: Advance(%d) = %d, want %d", k, op.start, got, op.wantGot)
						}
						if want := base.Add(op.start).Add(op.wantGot); op.wantGot > 0 && o.RcvNxt() != want {
							t.Fatalf("op %d: RcvNxt = %#x, want %#x", k, o.RcvNxt(), want)
						}
						continue
					}
					r := o.Insert(base.Add(op.start), base.Add(op.end))
					if r.Status != op.want {
						t.Fatalf("op %d: Insert(%d, %d) = %v, want %v", k, op.start, op.end, r.Status, op.want)
					}
					if r.Status == OOOStoredEvicted {
						want := SACKBlock{base.Add(uint32(op.wantEv.Start)), base.Add(uint32(op.wantEv.End))}
						if r.Evicted != want {
							t.Fatalf("op %d: evicted %v, want %v", k, r.Evicted, want)
						}
					}
				}
				rel := func(bs []SACKBlock) []SACKBlock {
					var out []SACKBlock
					for _, x := range bs {
						out = append(out, SACKBlock{x.Start - base, x.End - base})
					}
					return out
				}
				if got := rel(blocks(&o)); !sameBlocks(got, tt.want) {
					t.Errorf("intervals = %v, want %v", got, tt.want)
				}
				if got := rel(o.SACKBlocks(nil, 3)); !sameBlocks(got, tt.sack3) {
					t.Errorf("SACKBlocks(3) = %v, want %v", got, tt.sack3)
				}
				var total uint32
				for _, x := range tt.want {
					total += x.Len()
				}
				if o.Bytes() != total || o.Empty() != (len(tt.want) == 0) {
					t.Errorf("Bytes = %d Empty = %v, want %d", o.Bytes(), o.Empty(), total)
				}
			})
		}
	}
}

// oooModel is the reference: one bit per byte over a small sequence space.
type oooModel struct {
	base   Seq    // sequence number of bit 0
	rcvNxt uint32 // offset of rcv_nxt from base
	bits   []bool
}

// runs returns the maximal runs of received bytes at or above rcv_nxt. Only
// the first 512 bytes are scanned: the test never writes farther.
func (m *oooModel) runs() []SACKBlock {
	var out []SACKBlock
	lim := min(m.rcvNxt+512, uint32(len(m.bits)))
	for i := m.rcvNxt; i < lim; i++ {
		if !m.bits[i] {
			continue
		}
		j := i
		for j < uint32(len(m.bits)) && m.bits[j] {
			j++
		}
		out = append(out, SACKBlock{Seq(i), Seq(j)}) // offsets
		i = j
	}
	return out
}

func (m *oooModel) set(s, e uint32, v bool) {
	for i := s; i < e; i++ {
		m.bits[i] = v
	}
}

// TestOOORandomModel drives OOO and the bitmap model with the same random
// inserts and advances and compares the intervals, the eviction/rejection
// decisions, the Advance results and the SACK block order after every step.
func TestOOORandomModel(t *testing.T) {
	r := newRand(7)
	const space = 1 << 14
	steps := 0
	var evicted, rejected, merged int
	for round := 0; round < 40; round++ {
		base := Seq(r.Uint32())
		if round%3 == 0 { // make the sequence space wrap during the round
			base = Seq(0) - Seq(r.Intn(space/2))
		}
		m := &oooModel{base: base, bits: make([]bool, space)}
		var o OOO
		o.Reset(base)
		spread := 40 + r.Intn(200) // how far beyond rcv_nxt segments land
		maxLen := 1 + r.Intn(16)
		lastStored := SACKBlock{}
		haveLast := false
		for m.rcvNxt < space-1024 {
			steps++
			if r.Intn(4) == 0 { // in-order delivery of 0..maxLen bytes
				to := m.rcvNxt + uint32(r.Intn(maxLen+1))
				m.set(m.rcvNxt, to, true)
				want := uint32(0)
				for e := to; m.bits[e]; e++ {
					want++
				}
				got := o.Advance(base.Add(to))
				if got != want {
					t.Fatalf("round %d step %d: Advance(+%d) = %d, want %d", round, steps, to, got, want)
				}
				m.rcvNxt = to + want
				if o.RcvNxt() != base.Add(m.rcvNxt) {
					t.Fatalf("RcvNxt = %#x, want %#x", o.RcvNxt(), base.Add(m.rcvNxt))
				}
			} else {
				// Segments may start a little below rcv_nxt (retransmissions).
				s := int(m.rcvNxt) - 8 + r.Intn(spread+8)
				if s < 0 {
					s = 0
				}
				e := uint32(s + 1 + r.Intn(maxLen))
				ss := uint32(s)
				before := m.runs()
				res := o.Insert(base.Add(ss), base.Add(e))
				ts := ss // trimmed start
				if ts < m.rcvNxt {
					ts = m.rcvNxt
				}
				switch {
				case e <= m.rcvNxt:
					if res.Status != OOODuplicate {
						t.Fatalf("step %d: old [%d,%d) rcvnxt %d: %v", steps, ss, e, m.rcvNxt, res.Status)
					}
				default:
					touches := false
					for _, b := range before {
						if uint32(b.Start) <= e && ts <= uint32(b.End) {
							touches = true
						}
					}
					wantSt := OOOStored
					var wantEv SACKBlock
					if !touches && len(before) == OOOCap {
						far := before[OOOCap-1]
						if ts > uint32(far.Start) {
							wantSt = OOORejected
						} else {
							wantSt = OOOStoredEvicted
							wantEv = SACKBlock{base + far.Start, base + far.End}
							m.set(uint32(far.Start), uint32(far.End), false)
						}
					}
					if res.Status != wantSt || res.Evicted != wantEv {
						t.Fatalf("round %d step %d: Insert [%d,%d) with %d runs: got %v %v, want %v %v",
							round, steps, ts, e, len(before), res.Status, res.Evicted, wantSt, wantEv)
					}
					switch {
					case wantSt == OOORejected:
						rejected++
					case wantSt == OOOStoredEvicted:
						evicted++
					case touches:
						merged++
					}
					if wantSt != OOORejected {
						m.set(ts, e, true)
						lastStored = SACKBlock{base.Add(ts), base.Add(e)}
						haveLast = true
					}
				}
			}
			// Compare the interval sets.
			want := m.runs()
			if o.Len() != len(want) {
				t.Fatalf("round %d step %d: %d intervals, want %d (%v vs %v)", round, steps, o.Len(), len(want), blocks(&o), want)
			}
			for i, w := range want {
				if g := o.At(i); g.Start != base+w.Start || g.End != base+w.End {
					t.Fatalf("round %d step %d: interval %d = %v, want %v", round, steps, i, g, SACKBlock{base + w.Start, base + w.End})
				}
			}
			// SACK blocks: a permutation of the intervals, most recent
			// first (non-decreasing age), the first containing the last
			// stored range if that is still above rcv_nxt.
			var buf [OOOCap]SACKBlock
			sb := o.SACKBlocks(buf[:0], OOOCap)
			if len(sb) != len(want) {
				t.Fatalf("SACKBlocks returned %d, want %d", len(sb), len(want))
			}
			prevAge := uint32(0)
			seen := 0
			for k, blk := range sb {
				idx := -1
				for i := 0; i < o.Len(); i++ {
					if o.At(i) == blk {
						idx = i
					}
				}
				if idx < 0 || seen&(1<<idx) != 0 {
					t.Fatalf("SACK block %v not an interval or repeated", blk)
				}
				seen |= 1 << idx
				age := o.clock - o.iv[idx].stamp
				if k > 0 && age < prevAge {
					t.Fatalf("SACK blocks out of recency order: %v", sb)
				}
				prevAge = age
			}
			if haveLast && lastStored.End.GreaterThan(o.RcvNxt()) && len(sb) > 0 {
				first := sb[0]
				ls := MaxSeq(lastStored.Start, o.RcvNxt())
				if !(first.Start.LessThanEq(ls) && lastStored.End.LessThanEq(first.End)) {
					t.Fatalf("first SACK block %v does not contain last stored %v", first, lastStored)
				}
			}
			if s3 := o.SACKBlocks(buf[:0], 3); len(s3) > 0 && !sameBlocks(s3, sb[:len(s3)]) {
				t.Fatalf("SACKBlocks(3) %v is not a prefix of %v", s3, sb)
			}
		}
	}
	t.Logf("%d steps: %d merges, %d evictions, %d rejections", steps, merged, evicted, rejected)
	if merged == 0 || evicted == 0 || rejected == 0 {
		t.Fatalf("random test did not exercise every case")
	}
}

func TestOOONoAllocs(t *testing.T) {
	var o OOO
	o.Reset(0xfffffff0)
	var buf [4]SACKBlock
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		nxt := o.RcvNxt()
		o.Insert(nxt.Add(10+i%50), nxt.Add(12+i%50))
		o.Insert(nxt.Add(3), nxt.Add(5))
		_ = o.SACKBlocks(buf[:0], 3)
		o.Advance(nxt.Add(3))
		i++
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v, want 0", allocs)
	}
}

func BenchmarkOOOInsertAdvance(b *testing.B) {
	var o OOO
	var buf [4]SACKBlock
	for i := 0; i < b.N; i++ {
		nxt := o.RcvNxt()
		// Two holes, then fill them: the typical loss-recovery pattern.
		o.Insert(nxt.Add(1448), nxt.Add(2*1448))
		o.Insert(nxt.Add(3*1448), nxt.Add(5*1448))
		_ = o.SACKBlocks(buf[:0], 3)
		o.Insert(nxt.Add(2*1448), nxt.Add(3*1448))
		o.Advance(nxt.Add(1448))
	}
}
