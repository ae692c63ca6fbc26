package cc

import (
	"bytes"
	"errors"
	"testing"
)

func TestHopRoundTripAndWrap(t *testing.T) {
	// 1_000_000 B queued = 15_625 units of 64; 25 Gbit/s = 2_500 units of 10 Mbit/s.
	w := MakeWireHop(1_000_000, 1<<32+5, 1<<32+7, 25_000_000_000)
	if w != (WireHop{QLen64: 15_625, Tx: 5, TS: 7, Rate10M: 2_500}) {
		t.Fatalf("encoded %+v", w)
	}
	var b [2 * INTHopLen]byte
	PutHop(b[:], w)
	PutHop(b[INTHopLen:], MakeWireHop(1<<30, 0, 0, 10_000_000))
	var out [INTMaxHops]WireHop
	hops, err := ParseHops(b[:], &out)
	if err != nil || len(hops) != 2 || hops[0] != w || hops[1].QLen64 != 0xffff {
		t.Fatalf("parsed %+v %v (queue saturates at 0xffff units)", hops, err)
	}
	// The counters wrap: tx 0xffff_fff0 then 0x10 is 0x20 bytes later;
	// ts likewise.
	prev := Widen(nil, WireHop{Tx: 0xffff_fff0, TS: 0xffff_ff00, Rate10M: 1})
	h := Widen(&prev, WireHop{Tx: 0x10, TS: 0x100, Rate10M: 1})
	if h.TxBytes-prev.TxBytes != 0x20 || h.TS-prev.TS != 0x200 || h.RateBps != 10_000_000 {
		t.Fatalf("widened %+v after %+v", h, prev)
	}
}

func TestParseHopsRejects(t *testing.T) {
	var out [INTMaxHops]WireHop
	zeroRate := make([]byte, INTHopLen)
	for _, d := range [][]byte{make([]byte, 11), make([]byte, 3*INTHopLen), zeroRate} {
		if _, err := ParseHops(d, &out); !errors.Is(err, ErrINT) {
			t.Fatalf("%d bytes: %v, want ErrINT", len(d), err)
		}
	}
	if h, err := ParseHops(nil, &out); err != nil || len(h) != 0 {
		t.Fatalf("empty collect option: %v %v", h, err)
	}
}

// FuzzINTOption feeds hostile option data to the parser: it must never
// panic, and what it accepts must encode back to the same bytes.
func FuzzINTOption(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var out [INTMaxHops]WireHop
		hops, err := ParseHops(data, &out)
		if err != nil {
			return
		}
		b := make([]byte, len(hops)*INTHopLen)
		for i, h := range hops {
			if h.Rate10M == 0 {
				t.Fatal("accepted a zero rate")
			}
			PutHop(b[i*INTHopLen:], h)
			prev := Widen(nil, h)
			_ = Widen(&prev, h)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoded %x, got %x", b, data)
		}
	})
}
