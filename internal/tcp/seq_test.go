package tcp

import "testing"

func TestSeqCompare(t *testing.T) {
	const max = ^Seq(0)
	tests := []struct {
		a, b           Seq
		lt, le, gt, ge bool
	}{
		{0, 0, false, true, false, true},
		{1, 2, true, true, false, false},
		{2, 1, false, false, true, true},
		{max, 0, true, true, false, false}, // across the wrap
		{0, max, false, false, true, true},
		{max - 10, 5, true, true, false, false},
		{5, max - 10, false, false, true, true},
		{0x7fffffff, 0x80000000, true, true, false, false},
		{0x80000000, 0x7fffffff, false, false, true, true},
		{0, 0x7fffffff, true, true, false, false}, // 2^31-1 apart: still ordered
		{0x7fffffff, 0, false, false, true, true},
		{100, 100 + 0x7fffffff, true, true, false, false},
		{max - 0x7ffffffe, max, true, true, false, false},
	}
	for _, tt := range tests {
		if got := tt.a.LessThan(tt.b); got != tt.lt {
			t.Errorf("%#x.LessThan(%#x) = %v, want %v", tt.a, tt.b, got, tt.lt)
		}
		if got := tt.a.LessThanEq(tt.b); got != tt.le {
			t.Errorf("%#x.LessThanEq(%#x) = %v, want %v", tt.a, tt.b, got, tt.le)
		}
		if got := tt.a.GreaterThan(tt.b); got != tt.gt {
			t.Errorf("%#x.GreaterThan(%#x) = %v, want %v", tt.a, tt.b, got, tt.gt)
		}
		if got := tt.a.GreaterThanEq(tt.b); got != tt.ge {
			t.Errorf("%#x.GreaterThanEq(%#x) = %v, want %v", tt.a, tt.b, got, tt.ge)
		}
	}
	// Exactly 2^31 apart: undefined by RFC 1982; documented as "both less".
	if !Seq(0).LessThan(0x80000000) || !Seq(0x80000000).LessThan(0) {
		t.Errorf("2^31 apart: want each LessThan the other")
	}
}

func TestSeqInRange(t *testing.T) {
	const max = ^Seq(0)
	tests := []struct {
		s, a, b Seq
		want    bool
	}{
		{5, 5, 10, true},
		{9, 5, 10, true},
		{10, 5, 10, false}, // end is exclusive
		{4, 5, 10, false},
		{5, 5, 5, false}, // empty range
		{max, max - 1, 2, true},
		{0, max - 1, 2, true},
		{1, max - 1, 2, true},
		{2, max - 1, 2, false},
		{max - 2, max - 1, 2, false},
		{0x80000000, 0, 0xffffffff, true},  // large range: exact
		{0xffffffff, 0, 0xffffffff, false}, // the end itself
		{7, 10, 5, false},                  // [10, 5) is 2^32-5 bytes: 10..2^32-1, 0..4
		{3, 10, 5, true},
		{10, 10, 5, true},
	}
	for _, tt := range tests {
		if got := tt.s.InRange(tt.a, tt.b); got != tt.want {
			t.Errorf("%#x.InRange(%#x, %#x) = %v, want %v", tt.s, tt.a, tt.b, got, tt.want)
		}
		if got := tt.s.InWindow(tt.a, tt.a.Size(tt.b)); got != tt.want {
			t.Errorf("%#x.InWindow(%#x, %d) = %v, want %v", tt.s, tt.a, tt.a.Size(tt.b), got, tt.want)
		}
	}
}

func TestSeqArith(t *testing.T) {
	const max = ^Seq(0)
	tests := []struct {
		s    Seq
		n    uint32
		want Seq
	}{
		{0, 0, 0},
		{1, 1, 2},
		{max, 1, 0},
		{max - 5, 10, 4},
		{0x7fffffff, 1, 0x80000000},
	}
	for _, tt := range tests {
		if got := tt.s.Add(tt.n); got != tt.want {
			t.Errorf("%#x.Add(%d) = %#x, want %#x", tt.s, tt.n, got, tt.want)
		}
		if got := tt.want.Sub(tt.n); got != tt.s {
			t.Errorf("%#x.Sub(%d) = %#x, want %#x", tt.want, tt.n, got, tt.s)
		}
		if got := tt.s.Size(tt.want); got != tt.n {
			t.Errorf("%#x.Size(%#x) = %d, want %d", tt.s, tt.want, got, tt.n)
		}
		if tt.n > 0 && !tt.s.LessThan(tt.want) {
			t.Errorf("%#x should be < %#x", tt.s, tt.want)
		}
	}
	if got := MaxSeq(max-1, 3); got != 3 {
		t.Errorf("MaxSeq across wrap = %#x, want 3", got)
	}
	if got := MinSeq(max-1, 3); got != max-1 {
		t.Errorf("MinSeq across wrap = %#x, want %#x", got, max-1)
	}
	if got := (SACKBlock{max - 1, 3}).Len(); got != 5 {
		t.Errorf("SACKBlock.Len across wrap = %d, want 5", got)
	}
}

// TestSeqCompareProperties checks the comparison laws for random pairs less
// than 2^31 apart, anchored around the wrap.
func TestSeqCompareProperties(t *testing.T) {
	r := newRand(1)
	for i := 0; i < 100000; i++ {
		a := Seq(r.Uint32())
		d := r.Uint32() & 0x7fffffff
		b := a.Add(d)
		if d == 0 {
			if a.LessThan(b) || !a.LessThanEq(b) || !a.GreaterThanEq(b) {
				t.Fatalf("equal %#x", a)
			}
			continue
		}
		if !a.LessThan(b) || !b.GreaterThan(a) || b.LessThanEq(a) || a.GreaterThanEq(b) {
			t.Fatalf("%#x vs %#x (d=%d)", a, b, d)
		}
		if !a.InRange(a, b) || b.InRange(a, b) || !b.Sub(1).InRange(a, b) {
			t.Fatalf("InRange %#x..%#x", a, b)
		}
	}
}
