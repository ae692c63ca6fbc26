package virtio

import (
	"encoding/binary"
	"testing"
)

// refSum is the textbook RFC 1071 loop over 16-bit words.
func refSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestSumMatchesReference(t *testing.T) {
	b := make([]byte, 1600)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	for n := 0; n <= len(b); n++ {
		if got, want := Fold(Sum(b[:n], 0)), refSum(b[:n]); got != want {
			t.Fatalf("len %d: Sum = %#x, want %#x", n, got, want)
		}
	}
}

func TestCompleteCsum(t *testing.T) {
	// A UDP/IPv4 datagram as a kernel hands it over with CHECKSUM_PARTIAL:
	// the checksum field holds the pseudo-header sum.
	f := make([]byte, 14+20+8+5)
	ip := f[14:]
	ip[0], ip[9] = 0x45, 17
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[4:], 13)
	copy(udp[8:], "hello")
	pseudo := Sum(ip[12:20], 17+13)
	binary.BigEndian.PutUint16(udp[6:], Fold(pseudo))

	h := NetHeader(make([]byte, NetHdrMrgLen))
	h.SetFlags(FlagNeedsCsum)
	h.SetCsumStart(34)
	h.SetCsumOffset(6)
	if !h.CompleteCsum(f) {
		t.Fatal("CompleteCsum refused a valid header")
	}
	// A valid checksum makes pseudo header + datagram sum to 0xffff.
	if s := Fold(Sum(udp, pseudo)); s != 0xffff {
		t.Fatalf("completed checksum does not verify: sum %#x", s)
	}
	h.SetCsumStart(uint16(len(f) - 1))
	if h.CompleteCsum(f) {
		t.Fatal("CompleteCsum accepted offsets past the frame")
	}
}
