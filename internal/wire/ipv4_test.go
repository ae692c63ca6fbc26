package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestAddr4(t *testing.T) {
	if got := ipClient.String(); got != "10.7.0.1" {
		t.Errorf("String = %q", got)
	}
	tests := []struct {
		in   string
		want Addr4
		ok   bool
	}{
		{"192.0.2.1", Addr4{192, 0, 2, 1}, true},
		{"::ffff:192.0.2.1", Addr4{192, 0, 2, 1}, true},
		{"2001:db8::1", Addr4{}, false},
	}
	for _, tt := range tests {
		got, ok := Addr4From(netip.MustParseAddr(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("Addr4From(%s) = %v %v", tt.in, got, ok)
		}
	}
	if _, ok := Addr4From(netip.Addr{}); ok {
		t.Error("Addr4From(zero Addr) ok")
	}
	if ipServer.Addr() != netip.MustParseAddr("10.7.0.2") {
		t.Error("Addr() round trip")
	}
}

func TestIPv4Captured(t *testing.T) {
	ip, err := ParseIPv4(capSYN[EthernetHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Version", ip.Version(), uint8(4)},
		{"IHL", ip.IHL(), uint8(5)},
		{"HeaderLen", ip.HeaderLen(), 20},
		{"HasOptions", ip.HasOptions(), false},
		{"TOS", ip.TOS(), uint8(0)},
		{"TotalLen", ip.TotalLen(), uint16(60)},
		{"ID", ip.ID(), uint16(23642)},
		{"DF", ip.DF(), true},
		{"MF", ip.MF(), false},
		{"FragmentOffset", ip.FragmentOffset(), uint16(0)},
		{"IsFragment", ip.IsFragment(), false},
		{"TTL", ip.TTL(), uint8(64)},
		{"Protocol", ip.Protocol(), uint8(IPProtoTCP)},
		{"Checksum", ip.Checksum(), uint16(0xca51)},
		{"ComputeChecksum", ip.ComputeChecksum(), uint16(0xca51)},
		{"ChecksumValid", ip.ChecksumValid(), true},
		{"Src", ip.Src(), ipClient},
		{"Dst", ip.Dst(), ipServer},
		{"len(Options)", len(ip.Options()), 0},
		{"len(Payload)", len(ip.Payload()), 40},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The echo reply has DF clear and checksum 0x48f6.
	r, _ := ParseIPv4(capEchoReply[EthernetHeaderLen:])
	if r.DF() || r.Checksum() != 0x48f6 || !r.ChecksumValid() || r.Protocol() != IPProtoICMP {
		t.Errorf("echo reply: DF %v csum %#04x", r.DF(), r.Checksum())
	}
}

func TestIPv4PaddingExcluded(t *testing.T) {
	// A bare ACK is 54 bytes; Ethernet pads it to 60. The padding must not
	// become TCP payload.
	b := make([]byte, 60)
	n := PutEthernet(b, macServer, macClient, EtherTypeIPv4)
	n += PutIPv4(b[n:], IPv4Fields{TotalLen: 40, ID: 1, DF: true, TTL: 64, Protocol: IPProtoTCP, Src: ipClient, Dst: ipServer})
	n += PutTCP(b[n:], TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagACK}, nil)
	if n != 54 {
		t.Fatalf("n = %d", n)
	}
	b[59] = 0xaa
	ip, err := ParseIPv4(b[EthernetHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if len(ip) != 40 || len(ip.Payload()) != 20 {
		t.Errorf("len(ip) = %d, len(payload) = %d", len(ip), len(ip.Payload()))
	}
	tcp, err := ParseTCP(ip.Payload())
	if err != nil || len(tcp.Payload()) != 0 {
		t.Errorf("TCP payload %d bytes, err %v", len(tcp.Payload()), err)
	}
}

func TestIPv4Fragments(t *testing.T) {
	ip := IPv4(clone(capSYN[EthernetHeaderLen:]))
	ip[6], ip[7] = 0x20, 0x00 // MF, offset 0
	if !ip.MF() || ip.DF() || !ip.IsFragment() || ip.FragmentOffset() != 0 {
		t.Errorf("first fragment: MF %v DF %v frag %v off %d", ip.MF(), ip.DF(), ip.IsFragment(), ip.FragmentOffset())
	}
	ip[6], ip[7] = 0x00, 0xb9 // last fragment at 185*8
	if ip.MF() || !ip.IsFragment() || ip.FragmentOffset() != 1480 {
		t.Errorf("last fragment: MF %v frag %v off %d", ip.MF(), ip.IsFragment(), ip.FragmentOffset())
	}
	ip[6], ip[7] = 0x7f, 0xff // DF, MF, max offset
	if !ip.DF() || !ip.MF() || ip.FragmentOffset() != 0x1fff*8 {
		t.Errorf("all bits: DF %v MF %v off %d", ip.DF(), ip.MF(), ip.FragmentOffset())
	}
}

func TestIPv4Options(t *testing.T) {
	// IHL 6 with a router-alert option; total length 28, 4 bytes payload.
	b := mustHex("4600001c000100004001 0000 0a070001 0a070002 94040000 deadbeef")
	IPv4(b).UpdateChecksum()
	ip, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ip.HasOptions() || ip.HeaderLen() != 24 || !bytes.Equal(ip.Options(), []byte{0x94, 4, 0, 0}) {
		t.Errorf("options %x, header len %d", ip.Options(), ip.HeaderLen())
	}
	if !bytes.Equal(ip.Payload(), []byte{0xde, 0xad, 0xbe, 0xef}) || !ip.ChecksumValid() {
		t.Errorf("payload %x, checksum valid %v", ip.Payload(), ip.ChecksumValid())
	}
	ip[22] = 1 // the checksum covers options too
	if ip.ChecksumValid() {
		t.Error("checksum valid after changing an option byte")
	}
}

func TestParseIPv4Errors(t *testing.T) {
	good := capSYN[EthernetHeaderLen:]
	mod := func(i int, v byte) []byte {
		b := clone(good)
		b[i] = v
		return b
	}
	// IHL 15 (60 bytes) against a total length of 40.
	bigIHL := mod(0, 0x4f)
	bigIHL[3] = 40
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrTruncated},
		{"19-bytes", good[:19], ErrTruncated},
		{"version-6", mod(0, 0x65), ErrIPv4Version},
		{"version-0", mod(0, 0x05), ErrIPv4Version},
		{"ihl-4", mod(0, 0x44), ErrIPv4HeaderLen},
		{"ihl-0", mod(0, 0x40), ErrIPv4HeaderLen},
		{"ihl-beyond-total", bigIHL, ErrIPv4HeaderLen},
		{"ihl-beyond-total-and-buffer", bigIHL[:40], ErrIPv4HeaderLen},
		{"total-below-header", mod(3, 19), ErrIPv4HeaderLen},
		{"total-beyond-buffer", mod(3, 61), ErrIPv4TotalLen},
		{"truncated-payload", good[:59], ErrIPv4TotalLen},
		{"total-0xff3c", mod(2, 0xff), ErrIPv4TotalLen},
	}
	for _, tt := range tests {
		if _, err := ParseIPv4(tt.b); err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
	// IHL 15 with total length 60 is consistent: all header, no payload.
	b := mod(0, 0x4f)
	if ip, err := ParseIPv4(b); err != nil || len(ip.Payload()) != 0 || len(ip.Options()) != 40 {
		t.Errorf("IHL 15, total 60: err %v", err)
	}
}

func TestPutIPv4(t *testing.T) {
	want := capSYN[EthernetHeaderLen : EthernetHeaderLen+20]
	b := make([]byte, 24)
	for i := range b {
		b[i] = 0xee // the builder must not depend on prior contents
	}
	n := PutIPv4(b, IPv4Fields{TotalLen: 60, ID: 23642, DF: true, TTL: 64, Protocol: IPProtoTCP, Src: ipClient, Dst: ipServer})
	if n != 20 || !bytes.Equal(b[:20], want) {
		t.Errorf("PutIPv4\n got %x\nwant %x", b[:n], want)
	}
	if b[20] != 0xee {
		t.Error("wrote past the header")
	}
	// The kernel's echo reply: no DF, ID 0x1da3, checksum 0x48f6.
	want = capEchoReply[EthernetHeaderLen : EthernetHeaderLen+20]
	PutIPv4(b, IPv4Fields{TotalLen: 84, ID: 0x1da3, TTL: 64, Protocol: IPProtoICMP, Src: ipServer, Dst: ipClient})
	if !bytes.Equal(b[:20], want) {
		t.Errorf("PutIPv4 echo reply\n got %x\nwant %x", b[:20], want)
	}
}

func TestIPv4Setters(t *testing.T) {
	ip := IPv4(clone(capSYN[EthernetHeaderLen:]))
	ip.SetTotalLen(52)
	ip.SetID(23643)
	ip.SetSrc(ipClient)
	ip.SetDst(ipServer)
	ip.SetTTL(64)
	ip.UpdateChecksum()
	// That is the captured ACK's header.
	want := capACK[EthernetHeaderLen : EthernetHeaderLen+20]
	if !bytes.Equal(ip[:20], want) {
		t.Errorf("got %x\nwant %x", ip[:20], want)
	}
	if ip.Checksum() != 0xca58 {
		t.Errorf("checksum %#04x, want 0xca58", ip.Checksum())
	}
}
