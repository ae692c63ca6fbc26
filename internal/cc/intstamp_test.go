package cc

import (
	"bytes"
	"testing"

	"gotas/internal/wire"
)

// collectFrame is a data segment with timestamps and a collect option
// holding hops records already.
func collectFrame(hops int) []byte {
	b := make([]byte, 1600)
	n := wire.PutEthernet(b, wire.MAC{2, 0, 0, 0, 0, 2}, wire.MAC{2, 0, 0, 0, 0, 1}, wire.EtherTypeIPv4)
	o := &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: 1, TSEcr: 2}
	o.SetExp(INTExIDCollect, make([]byte, hops*INTHopLen))
	src, dst := wire.Addr4{10, 0, 0, 1}, wire.Addr4{10, 0, 0, 2}
	hl := wire.PutTCP(b[n+20:], wire.TCPFields{SrcPort: 1, DstPort: 2, SeqNum: 3, AckNum: 4,
		Flags: wire.TCPFlagACK, Window: 100}, o)
	copy(b[n+20+hl:], "payload")
	tl := hl + 7
	wire.PutIPv4(b[n:], wire.IPv4Fields{TotalLen: uint16(20 + tl), TTL: 64, Protocol: wire.IPProtoTCP, Src: src, Dst: dst})
	wire.SetTCPChecksum(src, dst, b[n+20:n+20+tl])
	return b[:n+20+tl]
}

func TestStampINT(t *testing.T) {
	hop := MakeWireHop(6400, 1000, 2000, 1_000_000_000)
	var out [1600]byte
	f := collectFrame(0)
	got, ok := StampINT(out[:], f, hop)
	if !ok || len(got) != len(f)+INTHopLen {
		t.Fatalf("stamp: %v, %d bytes", ok, len(got))
	}
	ip, err := wire.ParseIPv4(got[14:])
	if err != nil || !ip.ChecksumValid() {
		t.Fatalf("IPv4 after stamping: %v", err)
	}
	seg, err := wire.ParseTCP(ip.Payload())
	if err != nil || !wire.VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) || string(seg.Payload()) != "payload" {
		t.Fatalf("TCP after stamping: %v, payload %q", err, seg.Payload())
	}
	var o wire.TCPOptions
	var hops [INTMaxHops]WireHop
	if err := wire.ParseTCPOptions(seg.Options(), &o); err != nil || o.ExpID != INTExIDCollect {
		t.Fatalf("options: %v %+v", err, o)
	}
	if h, err := ParseHops(o.Exp(), &hops); err != nil || len(h) != 1 || h[0] != hop || o.TSVal != 1 {
		t.Fatalf("records %+v %v", h, err)
	}
	// A second switch adds a second record; a third finds no room.
	two, ok := StampINT(make([]byte, 1600), got, hop)
	if !ok {
		t.Fatal("second hop refused")
	}
	if _, ok := StampINT(make([]byte, 1600), two, hop); ok {
		t.Fatal("a third record was added to a full option")
	}
	// Not a collect option, or out too small: unchanged.
	plain := collectFrame(0)
	plain[14+20+20+12+3] ^= 1 // the ExID's low byte
	if g, ok := StampINT(out[:], plain, hop); ok || !bytes.Equal(g, plain) {
		t.Fatal("stamped a frame without a collect option")
	}
	if _, ok := StampINT(out[:len(f)], f, hop); ok {
		t.Fatal("stamped into a buffer with no room")
	}
}

// FuzzStampINT: a switch sees whatever a host sends. It must never panic,
// and a frame it stamps still parses with valid checksums.
func FuzzStampINT(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte) {
		out := make([]byte, len(frame)+INTHopLen)
		got, ok := StampINT(out, frame, MakeWireHop(1, 2, 3, 1e9))
		if !ok {
			return
		}
		ip, err := wire.ParseIPv4(got[14:])
		if err != nil {
			t.Fatalf("stamped frame does not parse: %v", err)
		}
		seg, err := wire.ParseTCP(ip.Payload())
		if err != nil || seg.DataOffset() > wire.TCPMinHeaderLen+wire.TCPMaxOptionsLen {
			t.Fatalf("stamped segment: %v", err)
		}
	})
}
