package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refSum is the textbook RFC 1071 loop the fast Sum is checked against.
func refSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		s = s&0xffff + s>>16
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestSumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: these bytes sum to ddf2, checksum 220d.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Sum(b, 0); got != 0xddf2 {
		t.Errorf("Sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b); got != 0x220d {
		t.Errorf("Checksum = %#04x, want 0x220d", got)
	}
}

func TestSumKnown(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		initial uint16
		want    uint16
	}{
		{"empty", nil, 0, 0},
		{"empty-initial", nil, 0x1234, 0x1234},
		{"one-byte", []byte{0xab}, 0, 0xab00},
		{"three-bytes", []byte{0x12, 0x34, 0x56}, 0, 0x6834},
		{"carry", []byte{0xff, 0xff, 0x00, 0x01}, 0, 0x0001},
		{"all-ones", []byte{0xff, 0xff, 0xff, 0xff}, 0, 0xffff},
		{"initial-carry", []byte{0x80, 0x00}, 0x8000, 0x0001},
		// 0x4500+...+0xc0a8+0x00c7 with checksum b861 included: valid.
		{"wikipedia-ipv4", mustHex("450000730000400040 11 b861 c0a80001 c0a800c7"), 0, 0xffff},
	}
	for _, tt := range tests {
		if got := Sum(tt.b, tt.initial); got != tt.want {
			t.Errorf("%s: Sum = %#04x, want %#04x", tt.name, got, tt.want)
		}
	}
}

// TestSumLengths covers every tail length and the 64-byte loop boundaries,
// at odd and even starting addresses.
func TestSumLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for start := 0; start < 2; start++ {
		for n := 0; n+start <= len(buf); n++ {
			b := buf[start : start+n]
			init := uint16(r.Uint32())
			if got, want := Sum(b, init), refSum(b, init); got != want {
				t.Fatalf("start %d len %d: Sum = %#04x, ref %#04x", start, n, got, want)
			}
		}
	}
	// All 0xff maximises carries through the 64-bit accumulator.
	ones := make([]byte, 4096+7)
	for i := range ones {
		ones[i] = 0xff
	}
	for n := range len(ones) {
		if got, want := Sum(ones[:n], 0xffff), refSum(ones[:n], 0xffff); got != want {
			t.Fatalf("ones len %d: Sum = %#04x, ref %#04x", n, got, want)
		}
	}
}

func TestSumChains(t *testing.T) {
	b := mustHex("0102030405060708090a0b0c0d0e0f10111213")
	for k := 0; k <= len(b); k += 2 {
		if got, want := Sum(b[k:], Sum(b[:k], 0)), Sum(b, 0); got != want {
			t.Errorf("split %d: %#04x, want %#04x", k, got, want)
		}
	}
	if got := CombineSums(0xffff, 0x0001); got != 0x0001 {
		t.Errorf("CombineSums(ffff, 1) = %#04x, want 0x0001", got)
	}
	if got := CombineSums(0x8000, 0x8001); got != 0x0002 {
		t.Errorf("CombineSums(8000, 8001) = %#04x, want 0x0002", got)
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	// 7f00+0001+7f00+0001+0006+0028, the partial value Linux wrote into the
	// captured lo SYN.
	if got := PseudoHeaderSum(IPProtoTCP, ipLocal, ipLocal, 40); got != 0xfe30 {
		t.Errorf("lo SYN pseudo sum = %#04x, want 0xfe30", got)
	}
	// 0a07+0001+0a07+0002+0006+0028 = 0x143f.
	if got := PseudoHeaderSum(IPProtoTCP, ipClient, ipServer, 40); got != 0x143f {
		t.Errorf("veth SYN pseudo sum = %#04x, want 0x143f", got)
	}
	// Carry: ffff+ffff+ffff+ffff+0011+ffff -> wraps.
	ff := Addr4{0xff, 0xff, 0xff, 0xff}
	if got, want := PseudoHeaderSum(IPProtoUDP, ff, ff, 0xffff), refSum(mustHex("ffffffffffffffff0011ffff"), 0); got != want {
		t.Errorf("all-ones pseudo sum = %#04x, want %#04x", got, want)
	}
}

func TestTCPChecksumCaptured(t *testing.T) {
	for _, c := range capturedTCP {
		t.Run(c.name, func(t *testing.T) {
			ip := IPv4(c.frame[EthernetHeaderLen:])
			seg := clone(ip.Payload())
			if !VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) {
				t.Fatal("VerifyTCPChecksum = false for a correct capture")
			}
			if got := TCPChecksum(ip.Src(), ip.Dst(), seg); got != c.csum {
				t.Errorf("TCPChecksum = %#04x, want %#04x", got, c.csum)
			}
			// The field's contents must not matter to TCPChecksum.
			TCP(seg).SetChecksum(0x1234)
			if got := TCPChecksum(ip.Src(), ip.Dst(), seg); got != c.csum {
				t.Errorf("TCPChecksum with garbage field = %#04x, want %#04x", got, c.csum)
			}
			if VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) {
				t.Error("VerifyTCPChecksum = true with a garbage field")
			}
			SetTCPChecksum(ip.Src(), ip.Dst(), seg)
			if got := TCP(seg).Checksum(); got != c.csum {
				t.Errorf("SetTCPChecksum stored %#04x, want %#04x", got, c.csum)
			}
			// Any flipped bit must be caught, including in the pseudo-header.
			seg[len(seg)-1] ^= 0x40
			if VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) {
				t.Error("VerifyTCPChecksum = true after corrupting the last byte")
			}
			seg[len(seg)-1] ^= 0x40
			if VerifyTCPChecksum(ip.Src(), Addr4{10, 7, 0, 3}, seg) {
				t.Error("VerifyTCPChecksum = true for the wrong destination")
			}
			if IsPartialChecksum(TCP(seg).Checksum(), IPProtoTCP, ip.Src(), ip.Dst(), len(seg)) {
				t.Error("a full checksum reported as partial")
			}
		})
	}
}

func TestPartialChecksumCaptured(t *testing.T) {
	tests := []struct {
		name          string
		frame         []byte
		field, actual uint16 // actual as computed by tcpdump
	}{
		{"SYN", capLoSYN, 0xfe30, 0x0a25},
		{"data", capLoData, 0xfe2d, 0xa397},
	}
	for _, tt := range tests {
		ip, err := ParseIPv4(tt.frame[EthernetHeaderLen:])
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		seg := TCP(ip.Payload())
		if got := seg.Checksum(); got != tt.field {
			t.Fatalf("%s: field = %#04x, want %#04x", tt.name, got, tt.field)
		}
		if VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) {
			t.Errorf("%s: partial checksum verified as full", tt.name)
		}
		if !IsPartialChecksum(seg.Checksum(), IPProtoTCP, ip.Src(), ip.Dst(), len(seg)) {
			t.Errorf("%s: IsPartialChecksum = false", tt.name)
		}
		if IsPartialChecksum(seg.Checksum(), IPProtoTCP, ip.Src(), ip.Dst(), len(seg)+1) {
			t.Errorf("%s: IsPartialChecksum = true for the wrong length", tt.name)
		}
		if IsPartialChecksum(seg.Checksum(), IPProtoUDP, ip.Src(), ip.Dst(), len(seg)) {
			t.Errorf("%s: IsPartialChecksum = true for the wrong protocol", tt.name)
		}
		if got := TCPChecksum(ip.Src(), ip.Dst(), seg); got != tt.actual {
			t.Errorf("%s: TCPChecksum = %#04x, tcpdump says %#04x", tt.name, got, tt.actual)
		}
	}
	if IsPartialChecksum(0xfe30, IPProtoTCP, ipLocal, ipLocal, -1) ||
		IsPartialChecksum(0xfe30, IPProtoTCP, ipLocal, ipLocal, 0x10000) {
		t.Error("IsPartialChecksum accepted an impossible length")
	}
}

func TestVerifyTCPChecksumShort(t *testing.T) {
	for n := range TCPMinHeaderLen {
		if VerifyTCPChecksum(ipClient, ipServer, make([]byte, n)) {
			t.Errorf("len %d: verified", n)
		}
	}
}

func TestUpdateChecksum(t *testing.T) {
	ip := IPv4(clone(capSYN[EthernetHeaderLen:]))
	seg := TCP(ip.Payload())
	src, dst := ip.Src(), ip.Dst()

	// Rewrite the sequence number, as a SYN cookie or a NAT would.
	old := seg.SeqNum()
	seg.SetSeqNum(0xdeadbeef)
	inc := UpdateChecksum32(seg.Checksum(), old, 0xdeadbeef)
	if want := TCPChecksum(src, dst, seg); inc != want {
		t.Errorf("seq update: %#04x, full recompute %#04x", inc, want)
	}
	seg.SetChecksum(inc)

	// Rewrite the destination port.
	op := seg.DstPort()
	seg.SetDstPort(8080)
	inc = UpdateChecksum16(seg.Checksum(), op, 8080)
	if want := TCPChecksum(src, dst, seg); inc != want {
		t.Errorf("port update: %#04x, full recompute %#04x", inc, want)
	}
	seg.SetChecksum(inc)

	// Rewrite the source address, which only the pseudo-header covers.
	newSrc := Addr4{192, 0, 2, 77}
	inc = UpdateChecksum32(seg.Checksum(), binary.BigEndian.Uint32(src[:]), binary.BigEndian.Uint32(newSrc[:]))
	if want := TCPChecksum(newSrc, dst, seg); inc != want {
		t.Errorf("address update: %#04x, full recompute %#04x", inc, want)
	}
	seg.SetChecksum(inc)
	if !VerifyTCPChecksum(newSrc, dst, seg) {
		t.Error("address update: segment does not verify")
	}

	// Decrement the IPv4 TTL; it shares a word with the protocol.
	ttlWord := uint16(ip.TTL())<<8 | uint16(ip.Protocol())
	ip.SetTTL(ip.TTL() - 1)
	inc = UpdateChecksum16(ip.Checksum(), ttlWord, ttlWord-0x100)
	if want := ip.ComputeChecksum(); inc != want {
		t.Errorf("TTL update: %#04x, full recompute %#04x", inc, want)
	}
	ip.SetChecksum(inc)
	if !ip.ChecksumValid() {
		t.Error("TTL update: header does not verify")
	}

	// RFC 1624 section 4 example: the old rule could give 0xffff (-0) where
	// the recompute gives 0x0000; eqn. 3 does not.
	// Header words sum to 0xcd7a apart from one word 0x5555 -> 0x3285.
	if got := UpdateChecksum16(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("RFC 1624 example: %#04x, want 0x0000", got)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var s uint16
			for b.Loop() {
				s += Checksum(buf)
			}
			sinkU16 = s
		})
	}
}

func BenchmarkChecksumReference1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	var s uint16
	for b.Loop() {
		s += refSum(buf, 0)
	}
	sinkU16 = s
}

func BenchmarkVerifyTCPChecksum1460(b *testing.B) {
	seg := make([]byte, 32+1460)
	PutTCP(seg, TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagACK}, &TCPOptions{Present: OptTimestamps})
	SetTCPChecksum(ipClient, ipServer, seg)
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if !VerifyTCPChecksum(ipClient, ipServer, seg) {
			b.Fatal("bad checksum")
		}
	}
}

var sinkU16 uint16

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
