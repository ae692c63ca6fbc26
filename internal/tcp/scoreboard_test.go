package tcp

import (
	"fmt"
	"testing"
)

// sbEnv drives a Scoreboard with offsets relative to an initial sequence
// number, so every scenario also runs across the 2^32 wrap.
type sbEnv struct {
	t    *testing.T
	base Seq
	sb   Scoreboard
}

func newSBEnv(t *testing.T, base Seq, mss uint32) *sbEnv {
	e := &sbEnv{t: t, base: base}
	e.sb.Init(base, mss)
	return e
}

func (e *sbEnv) seq(off uint32) Seq { return e.base.Add(off) }

// send transmits new data [from, to) in segments of n bytes.
func (e *sbEnv) send(from, to, n uint32) {
	for o := from; o < to; o += n {
		e.sb.OnTransmit(Segment{Start: e.seq(o), Len: min(n, to-o), Kind: SegNew})
	}
}

// ack applies ACK(ack, blocks...) where blocks are offset pairs.
func (e *sbEnv) ack(ack uint32, blocks ...uint32) AckInfo {
	var bs []SACKBlock
	for i := 0; i+1 < len(blocks); i += 2 {
		bs = append(bs, SACKBlock{e.seq(blocks[i]), e.seq(blocks[i+1])})
	}
	return e.sb.OnAck(e.seq(ack), bs)
}

func (e *sbEnv) seg(start, n uint32, k SegKind) Segment {
	return Segment{Start: e.seq(start), Len: n, Kind: k}
}

func (e *sbEnv) wantPipe(want uint32) {
	e.t.Helper()
	if got := e.sb.Pipe(); got != want {
		e.t.Fatalf("Pipe = %d, want %d", got, want)
	}
}

func (e *sbEnv) wantNext(newData uint32, want Segment) {
	e.t.Helper()
	if got := e.sb.NextSeg(newData); got != want {
		e.t.Fatalf("NextSeg(%d) = %+v, want %+v", newData, e.rel(got), e.rel(want))
	}
}

func (e *sbEnv) rel(s Segment) string {
	return fmt.Sprintf("{%d +%d kind %d}", uint32(s.Start-e.base), s.Len, s.Kind)
}

var sbBases = []Seq{0, 0xfffff000, 0x7ffffc00}

// TestScoreboardSingleLoss walks RFC 6675 section 5 for one lost segment
// out of ten (SMSS 1000): three duplicate ACKs, fast retransmit, new data
// during recovery, the cumulative ACK of the repair and the end of
// recovery.
func TestScoreboardSingleLoss(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		if e.sb.HighData() != e.seq(10000) {
			t.Fatalf("HighData = %#x", e.sb.HighData())
		}
		steps := []struct {
			blocks    []uint32
			sacked    uint32
			dupAcks   int
			lost0     bool
			shouldEnt bool
		}{
			{[]uint32{1000, 2000}, 1000, 1, false, false},
			{[]uint32{1000, 3000}, 1000, 2, false, false}, // 2000 bytes is not "more than 2*SMSS"
			{[]uint32{1000, 4000}, 1000, 3, true, true},
		}
		for i, st := range steps {
			info := e.ack(0, st.blocks...)
			if info.Sacked != st.sacked || !info.DupAck || info.Acked != 0 {
				t.Fatalf("step %d: %+v", i, info)
			}
			if e.sb.DupAcks() != st.dupAcks || e.sb.IsLost(e.seq(0)) != st.lost0 || e.sb.ShouldEnterRecovery() != st.shouldEnt {
				t.Fatalf("step %d: dupacks %d lost %v enter %v", i, e.sb.DupAcks(), e.sb.IsLost(e.seq(0)), e.sb.ShouldEnterRecovery())
			}
		}
		e.wantPipe(6000) // hole [0,1000) lost; [4000,10000) in flight
		fr := e.sb.EnterRecovery()
		if fr != e.seg(0, 1000, SegFastRetransmit) || !e.sb.InRecovery() || e.sb.RecoveryPoint() != e.seq(10000) {
			t.Fatalf("EnterRecovery = %s", e.rel(fr))
		}
		e.sb.OnTransmit(fr)
		if e.sb.HighRxt() != e.seq(1000) {
			t.Fatalf("HighRxt = %#x", e.sb.HighRxt())
		}
		e.wantPipe(7000)                             // + the retransmission
		e.wantNext(0, Segment{})                     // nothing lost left, no rescue yet
		e.wantNext(5000, e.seg(10000, 1000, SegNew)) // rule 2
		e.sb.OnTransmit(e.seg(10000, 1000, SegNew))
		e.wantPipe(8000)
		if info := e.ack(0, 1000, 5000); info.Sacked != 1000 || !info.DupAck || e.sb.DupAcks() != 3 {
			t.Fatalf("in-recovery dupack: %+v dupacks %d", info, e.sb.DupAcks())
		}
		e.wantPipe(7000)
		info := e.ack(5000)
		if info.Acked != 5000 || info.RecoveryDone || e.sb.Len() != 0 || e.sb.DupAcks() != 0 {
			t.Fatalf("partial ACK: %+v len %d", info, e.sb.Len())
		}
		e.wantPipe(6000)
		info = e.ack(10000)
		if !info.RecoveryDone || e.sb.InRecovery() {
			t.Fatalf("ACK of RecoveryPoint: %+v", info)
		}
		e.wantPipe(1000)
	}
}

// TestScoreboardTwoLosses: segments 0 and 4 of ten are lost. The second
// hole is first only a rule-3 candidate and becomes rule-1 lost once more
// than 2*SMSS are SACKed above it.
func TestScoreboardTwoLosses(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		e.ack(0, 1000, 2000)
		e.ack(0, 1000, 3000)
		e.ack(0, 1000, 4000)
		e.sb.OnTransmit(e.sb.EnterRecovery())
		e.ack(0, 5000, 6000, 1000, 4000)
		if e.sb.IsLost(e.seq(4000)) || !e.sb.IsLost(e.seq(0)) || e.sb.IsLost(e.seq(1500)) || e.sb.IsLost(e.seq(7000)) {
			t.Fatalf("IsLost wrong after [5000,6000)")
		}
		e.wantPipe(1000 + 1000 + 4000)                // rexmit of 0, hole [4000,5000), [6000,10000)
		e.wantNext(0, e.seg(4000, 1000, SegUnsacked)) // rule 3
		e.wantNext(1, e.seg(10000, 1, SegNew))        // rule 2 beats rule 3
		e.ack(0, 5000, 8000)
		if !e.sb.IsLost(e.seq(4000)) {
			t.Fatalf("4000 should be lost with 3000 bytes SACKed above")
		}
		e.wantPipe(1000 + 2000)
		e.wantNext(1, e.seg(4000, 1000, SegLost)) // rule 1 beats rule 2
		e.sb.OnTransmit(e.seg(4000, 1000, SegLost))
		if e.sb.HighRxt() != e.seq(5000) {
			t.Fatalf("HighRxt = %#x", e.sb.HighRxt())
		}
		e.wantPipe(1000 + 1000 + 2000)
		e.wantNext(0, Segment{})
		if e.sb.Len() != 2 || e.sb.SackedBytes() != 6000 || e.sb.HighSACK() != e.seq(8000) {
			t.Fatalf("ranges %d bytes %d", e.sb.Len(), e.sb.SackedBytes())
		}
	}
}

// TestScoreboardSmallSegments: three duplicate ACKs for small segments
// start recovery although IsLost is false (RFC 6675 section 5 step 1 note).
func TestScoreboardSmallSegments(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 1000, 100)
		e.ack(0, 100, 200)
		e.ack(0, 100, 300)
		if e.sb.ShouldEnterRecovery() {
			t.Fatalf("entered after 2 dupacks")
		}
		e.ack(0, 100, 400)
		if e.sb.IsLost(e.seq(0)) || !e.sb.ShouldEnterRecovery() {
			t.Fatalf("IsLost %v ShouldEnter %v", e.sb.IsLost(e.seq(0)), e.sb.ShouldEnterRecovery())
		}
		if fr := e.sb.EnterRecovery(); fr != e.seg(0, 100, SegFastRetransmit) {
			t.Fatalf("fast retransmit %s, want only the 100-byte hole", e.rel(fr))
		}
		// Three separate SACKed ranges make a hole lost even with few bytes.
		e = newSBEnv(t, base, 1000)
		e.send(0, 1000, 100)
		e.ack(0, 100, 200, 300, 400, 500, 600)
		if !e.sb.IsLost(e.seq(0)) || e.sb.IsLost(e.seq(200)) || e.sb.DupAcks() != 1 || !e.sb.ShouldEnterRecovery() {
			t.Fatalf("three discontiguous ranges: IsLost(0)=%v IsLost(200)=%v", e.sb.IsLost(e.seq(0)), e.sb.IsLost(e.seq(200)))
		}
	}
}

// TestScoreboardRescue: a tail loss (the last segment) is repaired by the
// single rule-4 rescue retransmission once snd_una passes RescueRxt.
func TestScoreboardRescue(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		e.ack(0, 1000, 9000) // one ACK, IsLost(0) already
		if e.sb.DupAcks() != 1 || !e.sb.ShouldEnterRecovery() {
			t.Fatalf("should enter on IsLost")
		}
		e.sb.OnTransmit(e.sb.EnterRecovery())
		e.wantNext(0, Segment{}) // snd_una (0) not beyond RescueRxt (1000)
		if info := e.ack(1000, 1000, 9000); info.Acked != 1000 {
			t.Fatalf("%+v", info)
		}
		// snd_una == RescueRxt: RFC requires HighACK > RescueRxt.
		e.wantNext(0, Segment{})
		e.ack(9000)
		e.wantNext(0, e.seg(9000, 1000, SegRescue))
		e.wantNext(10, e.seg(10000, 10, SegNew)) // new data is preferred
		e.sb.OnTransmit(e.seg(9000, 1000, SegRescue))
		if e.sb.HighRxt() != e.seq(9000) {
			t.Fatalf("rescue must not move HighRxt: %#x", e.sb.HighRxt())
		}
		e.wantNext(0, Segment{}) // only one rescue per recovery
		if info := e.ack(10000); !info.RecoveryDone {
			t.Fatalf("not done: %+v", info)
		}

		// The rescue segment ends with the highest unSACKed octet even when
		// the top of the window is SACKed.
		e = newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		e.ack(0, 1000, 5000, 9500, 10000)
		e.sb.OnTransmit(e.sb.EnterRecovery())
		e.ack(5000, 9500, 10000)
		// Hole [5000,9500) has one range (500 bytes) above: not lost, but
		// rule 3 applies.
		e.wantNext(0, e.seg(5000, 1000, SegUnsacked))
		e.sb.OnTransmit(e.seg(5000, 1000, SegUnsacked))
		e.sb.OnTransmit(e.seg(6000, 1000, SegUnsacked))
		e.sb.OnTransmit(e.seg(7000, 1000, SegUnsacked))
		e.sb.OnTransmit(e.seg(8000, 1000, SegUnsacked))
		e.wantNext(0, e.seg(9000, 500, SegUnsacked))
		e.sb.OnTransmit(e.seg(9000, 500, SegUnsacked))
		e.wantNext(0, e.seg(8500, 1000, SegRescue))
	}
}

// TestScoreboardRTO: an RTO ends recovery, forgets SACK information and
// holds off a new recovery until snd_una reaches RecoveryPoint.
func TestScoreboardRTO(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		e.ack(0, 1000, 4000)
		e.sb.OnTransmit(e.sb.EnterRecovery())
		e.sb.OnRTO()
		if e.sb.InRecovery() || e.sb.Len() != 0 || e.sb.DupAcks() != 0 || e.sb.RecoveryPoint() != e.seq(10000) || e.sb.HighRxt() != e.seq(0) {
			t.Fatalf("after RTO: rec %v len %d", e.sb.InRecovery(), e.sb.Len())
		}
		e.sb.OnTransmit(e.seg(0, 1000, SegRetransmit)) // go-back-N
		e.sb.OnTransmit(e.seg(10000, 2000, SegNew))
		for i := uint32(0); i < 4; i++ {
			e.ack(1000, 2000, 3000+i*1000)
		}
		if e.sb.DupAcks() < DupThresh || e.sb.ShouldEnterRecovery() {
			t.Fatalf("recovery must be held off after RTO (dupacks %d)", e.sb.DupAcks())
		}
		e.ack(10000) // reaches RecoveryPoint: hold released
		e.ack(10000, 11000, 12000)
		e.ack(10000, 11000, 12000) // no new information: not a dupack
		if e.sb.DupAcks() != 1 {
			t.Fatalf("dupacks = %d, want 1", e.sb.DupAcks())
		}
		if e.sb.IsLost(e.seq(10000)) || e.sb.ShouldEnterRecovery() {
			t.Fatalf("one dupack with 1000 bytes SACKed must not start recovery")
		}
	}
}

func TestScoreboardAckValidation(t *testing.T) {
	for _, base := range sbBases {
		tests := []struct {
			name   string
			ack    uint32
			blocks []uint32
			want   AckInfo
			ranges []uint32
		}{
			{"beyond HighData ignored", 10001, nil, AckInfo{Ignored: true}, []uint32{2000, 3000}},
			{"D-SACK below snd_una ignored", 1000, []uint32{0, 500}, AckInfo{DSACK: true, DSACKBlock: SACKBlock{base, base + 500}}, []uint32{2000, 3000}},
			{"block beyond HighData ignored", 1000, []uint32{9000, 10001}, AckInfo{}, []uint32{2000, 3000}},
			{"reversed block ignored", 1000, []uint32{5000, 4000}, AckInfo{}, []uint32{2000, 3000}},
			{"empty block ignored", 1000, []uint32{5000, 5000}, AckInfo{}, []uint32{2000, 3000}},
			{"old SACK info is no dupack", 1000, []uint32{2000, 3000}, AckInfo{}, []uint32{2000, 3000}},
			{"overlapping blocks counted once", 1000, []uint32{2500, 4000, 3500, 5000}, AckInfo{Sacked: 2000, DupAck: true}, []uint32{2000, 5000}},
			{"block bridging two ranges", 1000, []uint32{6000, 7000, 3000, 6000}, AckInfo{Sacked: 4000, DupAck: true}, []uint32{2000, 7000}},
			{"straddling snd_una trimmed", 1500, []uint32{1000, 1800}, AckInfo{Acked: 500, Sacked: 300, DupAck: true}, []uint32{1500, 1800, 2000, 3000}},
			{"cumulative into range trims it", 2500, nil, AckInfo{Acked: 1500}, []uint32{2500, 3000}},
			{"cumulative past range drops it", 3000, nil, AckInfo{Acked: 2000}, nil},
			{"old ack still carries SACK", 500, []uint32{4000, 5000}, AckInfo{Sacked: 1000, DupAck: true}, []uint32{2000, 3000, 4000, 5000}},
			{"adjacent merges", 1000, []uint32{3000, 3100}, AckInfo{Sacked: 100, DupAck: true}, []uint32{2000, 3100}},
		}
		for _, tt := range tests {
			e := newSBEnv(t, base, 1000)
			e.send(0, 10000, 1000)
			e.ack(1000, 2000, 3000)
			got := e.ack(tt.ack, tt.blocks...)
			if got != tt.want {
				t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
			}
			var rs []uint32
			for i := 0; i < e.sb.Len(); i++ {
				rs = append(rs, uint32(e.sb.At(i).Start-base), uint32(e.sb.At(i).End-base))
			}
			if fmt.Sprint(rs) != fmt.Sprint(tt.ranges) && !(len(rs) == 0 && len(tt.ranges) == 0) {
				t.Errorf("%s: ranges %v, want %v", tt.name, rs, tt.ranges)
			}
		}
	}
}

// TestScoreboardCapacity: beyond ScoreboardCap ranges the highest ones are
// forgotten, never merged across holes.
func TestScoreboardCapacity(t *testing.T) {
	e := newSBEnv(t, 0xffffff00, 100)
	e.send(0, 10000, 100)
	for i := uint32(0); i < ScoreboardCap+1; i++ {
		info := e.ack(0, 200*i+100, 200*i+200)
		if info.Sacked != 100 || !info.DupAck {
			t.Fatalf("block %d: %+v", i, info)
		}
	}
	if e.sb.Len() != ScoreboardCap || e.sb.HighSACK() != e.seq(200*(ScoreboardCap-1)+200) {
		t.Fatalf("len %d high %#x", e.sb.Len(), e.sb.HighSACK())
	}
	// A lower new range evicts the highest.
	e.ack(0, 50, 60)
	if e.sb.Len() != ScoreboardCap || e.sb.At(0) != (SACKBlock{e.seq(50), e.seq(60)}) || e.sb.HighSACK() != e.seq(200*(ScoreboardCap-2)+200) {
		t.Fatalf("after low insert: first %v high %#x", e.sb.At(0), e.sb.HighSACK())
	}
	// Filling a hole merges two ranges and frees a slot.
	e.ack(0, 200, 300)
	if e.sb.Len() != ScoreboardCap-1 {
		t.Fatalf("len %d after merge", e.sb.Len())
	}
}

// sbModel is the per-octet reference for IsLost, SetPipe and NextSeg rules
// 1 and 3, written straight from the RFC 6675 definitions.
type sbModel struct {
	sacked    []bool // octet offsets from HighACK
	highData  uint32
	highRxt   uint32
	mss       uint32
	highSACKd uint32 // one past the highest SACKed octet
}

func (m *sbModel) isLost(o uint32) bool {
	if m.sacked[o] {
		return false
	}
	var runs, bytes uint32
	for i := o + 1; i < m.highData; i++ {
		if m.sacked[i] {
			bytes++
			if !m.sacked[i-1] {
				runs++
			}
		}
	}
	return runs >= DupThresh || bytes > (DupThresh-1)*m.mss
}

func (m *sbModel) pipe() uint32 {
	var p uint32
	for o := uint32(0); o < m.highData; o++ {
		if m.sacked[o] {
			continue
		}
		if !m.isLost(o) {
			p++
		}
		if o < m.highRxt {
			p++
		}
	}
	return p
}

// nextLost returns the first octet per rule 1 (lost) and rule 3 (any),
// or -1.
func (m *sbModel) next() (rule1, rule3 int) {
	rule1, rule3 = -1, -1
	for o := m.highRxt; o < m.highSACKd; o++ {
		if m.sacked[o] {
			continue
		}
		if rule3 < 0 {
			rule3 = int(o)
		}
		if m.isLost(o) {
			return int(o), rule3
		}
	}
	return -1, rule3
}

func TestScoreboardRandomModel(t *testing.T) {
	r := newRand(11)
	for iter := 0; iter < 3000; iter++ {
		base := Seq(r.Uint32())
		if iter%2 == 0 {
			base = Seq(0) - Seq(r.Intn(300))
		}
		mss := uint32(1 + r.Intn(30))
		L := uint32(20 + r.Intn(280))
		var sb Scoreboard
		sb.Init(base, mss)
		sb.OnTransmit(Segment{Start: base, Len: L, Kind: SegNew})
		m := &sbModel{sacked: make([]bool, L), highData: L, mss: mss}
		nb := r.Intn(8)
		var bs []SACKBlock
		for k := 0; k < nb; k++ {
			s := uint32(1 + r.Intn(int(L-1)))
			e := s + 1 + uint32(r.Intn(int(min(L-s, 3*mss))))
			bs = append(bs, SACKBlock{base.Add(s), base.Add(e)})
			for o := s; o < e; o++ {
				m.sacked[o] = true
			}
			if e > m.highSACKd {
				m.highSACKd = e
			}
		}
		sb.OnAck(base, bs)
		sb.EnterRecovery()
		rxt := uint32(r.Intn(int(L)))
		if rxt > 0 {
			sb.OnTransmit(Segment{Start: base, Len: rxt, Kind: SegLost})
		}
		m.highRxt = rxt
		for o := uint32(0); o < L; o++ {
			if got, want := sb.IsLost(base.Add(o)), m.isLost(o); got != want {
				t.Fatalf("iter %d: IsLost(%d) = %v, want %v (mss %d, blocks %v)", iter, o, got, want, mss, bs)
			}
		}
		if got, want := sb.Pipe(), m.pipe(); got != want {
			t.Fatalf("iter %d: Pipe = %d, want %d", iter, got, want)
		}
		r1, r3 := m.next()
		seg := sb.NextSeg(0)
		switch {
		case r1 >= 0:
			if seg.Kind != SegLost || seg.Start != base.Add(uint32(r1)) {
				t.Fatalf("iter %d: NextSeg = %+v, want rule 1 at %d", iter, seg, r1)
			}
		case r3 >= 0:
			if seg.Kind != SegUnsacked || seg.Start != base.Add(uint32(r3)) {
				t.Fatalf("iter %d: NextSeg = %+v, want rule 3 at %d", iter, seg, r3)
			}
		default:
			if seg.Kind == SegLost || seg.Kind == SegUnsacked {
				t.Fatalf("iter %d: NextSeg = %+v, want no rule 1/3", iter, seg)
			}
		}
		if seg.Kind == SegLost || seg.Kind == SegUnsacked {
			o := uint32(seg.Start - base)
			if seg.Len == 0 || seg.Len > mss {
				t.Fatalf("bad length %d", seg.Len)
			}
			for k := o; k < o+seg.Len; k++ {
				if m.sacked[k] {
					t.Fatalf("iter %d: segment %+v covers SACKed octet %d", iter, seg, k)
				}
			}
		}
	}
}

func TestScoreboardNoAllocs(t *testing.T) {
	var sb Scoreboard
	sb.Init(0xfffff000, 1448)
	blocks := []SACKBlock{{}, {}, {}}
	var una Seq = 0xfffff000
	allocs := testing.AllocsPerRun(1000, func() {
		sb.OnTransmit(Segment{Start: sb.HighData(), Len: 10 * 1448, Kind: SegNew})
		blocks[0] = SACKBlock{una.Add(1448), una.Add(4 * 1448)}
		blocks[1] = SACKBlock{una.Add(5 * 1448), una.Add(7 * 1448)}
		sb.OnAck(una, blocks[:2])
		if sb.ShouldEnterRecovery() {
			sb.OnTransmit(sb.EnterRecovery())
		}
		for sb.Pipe() < 20*1448 {
			seg := sb.NextSeg(1448)
			sb.OnTransmit(seg)
		}
		una = una.Add(4 * 1448)
		sb.OnAck(una, nil)
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v", allocs)
	}
}

func BenchmarkScoreboardAckNextSeg(b *testing.B) {
	var sb Scoreboard
	sb.Init(0, 1448)
	blocks := make([]SACKBlock, 3)
	var una Seq
	for i := 0; i < b.N; i++ {
		sb.OnTransmit(Segment{Start: sb.HighData(), Len: 10 * 1448, Kind: SegNew})
		blocks[0] = SACKBlock{una.Add(1448), una.Add(4 * 1448)}
		blocks[1] = SACKBlock{una.Add(5 * 1448), una.Add(7 * 1448)}
		blocks[2] = SACKBlock{una.Add(8 * 1448), una.Add(9 * 1448)}
		sb.OnAck(una, blocks)
		if sb.ShouldEnterRecovery() {
			sb.OnTransmit(sb.EnterRecovery())
		}
		_ = sb.Pipe()
		sb.OnTransmit(sb.NextSeg(0))
		una = una.Add(10 * 1448)
		sb.OnAck(una, nil)
	}
}

func TestScoreboardEarlyRetransmit(t *testing.T) {
	for _, base := range sbBases {
		// Three segments out, the first lost: two SACKs can never reach
		// DupThresh, but they reach RFC 5827's oseg-1.
		e := newSBEnv(t, base, 1000)
		e.send(0, 3000, 1000)
		e.ack(0, 1000, 2000)
		if e.sb.ShouldEnterRecovery() || e.sb.EarlyRetransmit() {
			t.Fatal("one SACK of three segments starts recovery")
		}
		e.ack(0, 1000, 3000)
		if e.sb.ShouldEnterRecovery() {
			t.Fatal("RFC 6675 alone enters recovery with two SACKed segments")
		}
		if !e.sb.EarlyRetransmit() {
			t.Fatal("no early retransmit with oseg-1 segments SACKed")
		}
		// Four or more segments out: the ordinary rule applies.
		e = newSBEnv(t, base, 1000)
		e.send(0, 4000, 1000)
		e.ack(0, 1000, 3000)
		if e.sb.EarlyRetransmit() {
			t.Fatal("early retransmit with four segments outstanding")
		}
		// Not after an RTO until snd_una passes the recovery point.
		e = newSBEnv(t, base, 1000)
		e.send(0, 3000, 1000)
		e.sb.OnRTO()
		e.ack(0, 1000, 3000)
		if e.sb.EarlyRetransmit() {
			t.Fatal("early retransmit during the RTO hold")
		}
	}
}

func TestScoreboardRetransmissionsLost(t *testing.T) {
	for _, base := range sbBases {
		e := newSBEnv(t, base, 1000)
		e.send(0, 10000, 1000)
		e.ack(0, 1000, 10000)
		if !e.sb.ShouldEnterRecovery() {
			t.Fatal("no recovery")
		}
		seg := e.sb.EnterRecovery()
		e.sb.OnTransmit(seg)
		// The hole's retransmission is in flight: nothing lost to resend.
		e.wantPipe(1000)
		e.wantNext(0, Segment{})
		// The caller's probe timer presumes it lost: the hole is lost
		// again and no longer counted in the pipe.
		e.sb.RetransmissionsLost()
		e.wantPipe(0)
		e.wantNext(0, e.seg(0, 1000, SegLost))
	}
}
