package tcp

import (
	"fmt"
	"testing"
)

func TestWindowShiftFor(t *testing.T) {
	tests := []struct {
		buf  uint32
		want uint8
	}{
		{0, 0}, {8 << 10, 0}, {65535, 0},
		{65536, 1}, {131070, 1}, {131071, 2},
		{256 << 10, 3},      // 65535<<2 = 262140 < 262144
		{1 << 20, 5},        // 65535<<4 = 1048560 < 1048576
		{65535 << 14, 14},   // exactly the largest scalable window
		{65535<<14 + 1, 14}, // does not fit: capped
		{0xffffffff, MaxWindowShift},
	}
	for _, tt := range tests {
		if got := WindowShiftFor(tt.buf); got != tt.want {
			t.Errorf("WindowShiftFor(%d) = %d, want %d", tt.buf, got, tt.want)
		}
		if s := WindowShiftFor(tt.buf); s < MaxWindowShift && uint64(0xffff)<<s < uint64(tt.buf) {
			t.Errorf("shift %d does not cover %d", s, tt.buf)
		}
	}
}

func TestDecodeWindow(t *testing.T) {
	tests := []struct {
		field uint16
		shift uint8
		want  uint32
	}{
		{100, 0, 100}, {0xffff, 0, 0xffff}, {1, 7, 128}, {0xffff, 14, 0x3fffc000},
		{0xffff, 15, 0x3fffc000}, {2, 255, 2 << 14}, {0, 14, 0},
	}
	for _, tt := range tests {
		if got := DecodeWindow(tt.field, tt.shift); got != tt.want {
			t.Errorf("DecodeWindow(%d, %d) = %d, want %d", tt.field, tt.shift, got, tt.want)
		}
	}
}

func TestRcvWindow(t *testing.T) {
	type step struct {
		syn   bool
		nxt   uint32 // rcv_nxt offset from base
		free  uint32
		field uint16
		edge  uint32 // offset from base
	}
	tests := []struct {
		name  string
		shift uint8
		steps []step
	}{
		{"shift 7", 7, []step{
			{true, 0, 100000, 65535, 65535},    // SYN: unscaled, capped
			{false, 0, 100000, 781, 99968},     // 781*128, rounded down
			{false, 1000, 99000, 774, 100072},  // floor 773 would give 99944 < 99968: ceil(98968/128)
			{false, 1000, 104000, 812, 104936}, // app read 5000: plain floor, edge grows
			{false, 104936, 0, 0, 104936},      // buffer full: zero window at the edge
			{false, 104936, 100, 0, 104936},    // less than one unit free: still 0
			{false, 104936, 1 << 30, 0xffff, 104936 + 0xffff<<7},
		}},
		{"unscaled", 0, []step{
			{true, 0, 8192, 8192, 8192},
			{false, 100, 8092, 8092, 8192},
			{false, 100, 200000, 65535, 65635},
			{false, 5000, 60635, 60635, 65635},
			// The caller shrank the buffer (T moved back): with shift 0
			// there is nothing to round, the window follows free space.
			{false, 5000, 10, 10, 65635},
		}},
		{"shift 14 clamp", 14, []step{
			{false, 0, 0xffffffff, 0xffff, 0xffff << 14},
			// floor gives 0xfffe units, below the edge: round up to 0xffff
			// (1 byte beyond T = 0xffff<<14).
			{false, 1, 0xffff<<14 - 1, 0xffff, 0xffff<<14 + 1},
		}},
		{"round up capped at the first unit above T", 7, []step{
			{false, 0, 1280, 10, 1280},   // T = 1280
			{false, 100, 1180, 10, 1380}, // floor 9 -> 1252 < 1280; ceil(1180/128) = 10
			{false, 200, 1080, 9, 1380},  // old edge needs 10, but ceil(1080/128) = 9 -> 1352 >= T
		}},
		{"nothing to keep before first advertisement", 3, []step{
			{false, 10, 80, 10, 90},
		}},
	}
	for _, base := range []Seq{0, 0xfffff000, 0x7fffff00} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%#x", tt.name, uint32(base)), func(t *testing.T) {
				var w RcvWindow
				w.Init(tt.shift, base)
				for i, st := range tt.steps {
					var got uint16
					prevEdge := w.Edge()
					if st.syn {
						got = w.SynField(base.Add(st.nxt), st.free)
					} else {
						got = w.Field(base.Add(st.nxt), st.free)
					}
					if got != st.field || w.Edge() != base.Add(st.edge) {
						t.Fatalf("step %d: field %d edge +%d, want %d +%d", i, got, uint32(w.Edge()-base), st.field, st.edge)
					}
					if !st.syn {
						// Never below the old edge unless that was unbacked.
						T := base.Add(st.nxt).Add(st.free)
						adv := base.Add(st.nxt).Add(DecodeWindow(got, tt.shift))
						if adv.LessThan(MinSeq(prevEdge, T)) && got != 0xffff {
							t.Fatalf("step %d: advertised edge %#x below min(old edge %#x, T %#x)", i, adv, prevEdge, T)
						}
					}
				}
			})
		}
	}
}

// TestRcvWindowClosesWithSmallSegments: segments shorter than the scale
// unit fill the buffer; the window must still close (a strictly monotonic
// edge would keep it open forever) and never promise a unit beyond T.
func TestRcvWindowClosesWithSmallSegments(t *testing.T) {
	for _, shift := range []uint8{7, 11, 14} {
		u := uint32(1) << shift
		buf := 10 * u
		nxt := Seq(0xffff0000)
		T := nxt.Add(buf)
		var w RcvWindow
		w.Init(shift, nxt)
		free := buf
		last := uint16(0xffff)
		for {
			f := w.Field(nxt, free)
			adv := nxt.Add(DecodeWindow(f, shift))
			if adv.LessThan(T) || uint32(adv-T) >= u {
				t.Fatalf("shift %d: edge %d bytes from T", shift, int32(adv-T))
			}
			if f > last {
				t.Fatalf("shift %d: window grew from %d to %d without reads", shift, last, f)
			}
			last = f
			if free == 0 {
				break
			}
			n := min(free, 1448)
			nxt, free = nxt.Add(n), free-n
		}
		if last != 0 {
			t.Fatalf("shift %d: window did not close: %d", shift, last)
		}
		if w.Edge().LessThan(T) {
			t.Fatalf("Edge below T")
		}
	}
}

// TestRcvWindowRandom: over random receive/consume sequences the
// advertised edge never retracts while it was backed by buffer space, and
// never lies a full scale unit beyond the free space.
func TestRcvWindowRandom(t *testing.T) {
	r := newRand(9)
	for iter := 0; iter < 300; iter++ {
		shift := uint8(r.Intn(15))
		u := uint32(1) << shift
		buf := uint32(1+r.Intn(1<<20)) << r.Intn(8)
		if uint64(buf) > uint64(0xffff)<<shift {
			buf = 0xffff << shift
		}
		maxSeg := 1 + r.Intn(int(min(buf, 3*u)))
		nxt := Seq(r.Uint32())
		var w RcvWindow
		w.Init(shift, nxt)
		used := uint32(0)
		prev := nxt
		for step := 0; step < 2000; step++ {
			free := buf - used
			T := nxt.Add(free)
			f := w.Field(nxt, free)
			adv := nxt.Add(DecodeWindow(f, shift))
			if adv.LessThan(prev) && prev.LessThanEq(T) {
				t.Fatalf("iter %d step %d: backed edge moved back from %#x to %#x (T %#x)", iter, step, prev, adv, T)
			}
			if adv.GreaterThan(T) && uint32(adv-T) >= u {
				t.Fatalf("iter %d step %d: edge %d bytes beyond T, unit %d", iter, step, uint32(adv-T), u)
			}
			if shift == 0 && adv != T {
				t.Fatalf("unscaled window must equal free space")
			}
			if w.Edge().LessThan(adv) {
				t.Fatalf("Edge below the advertised edge")
			}
			prev = adv
			// The peer sends within the real free space; the app reads.
			if r.Intn(3) > 0 {
				n := uint32(r.Intn(int(min(free, uint32(maxSeg))) + 1))
				nxt = nxt.Add(n)
				used += n
			} else {
				used -= uint32(r.Intn(int(used) + 1))
			}
		}
	}
}

func TestWindowNoAllocs(t *testing.T) {
	var w RcvWindow
	w.Init(7, 0)
	n := Seq(0)
	if a := testing.AllocsPerRun(1000, func() { n = n.Add(1000); w.Field(n, 50000) }); a != 0 {
		t.Fatalf("allocs %v", a)
	}
}
