package wire

import (
	"bytes"
	"testing"
)

func TestParseARPCaptured(t *testing.T) {
	tests := []struct {
		name       string
		frame      []byte
		op         uint16
		sMAC, tMAC MAC
		sIP, tIP   Addr4
	}{
		{"request", capARPRequest, ARPRequest, macClient, MAC{}, ipClient, ipServer},
		{"reply", capARPReply, ARPReply, macServer, macClient, ipServer, ipClient},
	}
	for _, tt := range tests {
		typ, hl, err := ParseEthernet(tt.frame)
		if err != nil || typ != EtherTypeARP {
			t.Fatalf("%s: ParseEthernet = %#04x, %v", tt.name, typ, err)
		}
		a, err := ParseARP(tt.frame[hl:])
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if a.Op() != tt.op || a.SenderMAC() != tt.sMAC || a.SenderIP() != tt.sIP ||
			a.TargetMAC() != tt.tMAC || a.TargetIP() != tt.tIP {
			t.Errorf("%s: op %d %v/%v -> %v/%v", tt.name, a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		}
	}
}

func TestParseARPPadding(t *testing.T) {
	// On the wire an ARP frame is padded to 60 bytes; the view must not
	// include the padding.
	p := append(clone(capARPRequest[14:]), make([]byte, 18)...)
	a, err := ParseARP(p)
	if err != nil || len(a) != ARPLen {
		t.Fatalf("len %d, err %v", len(a), err)
	}
}

func TestParseARPErrors(t *testing.T) {
	good := capARPRequest[14:]
	mod := func(i int, v byte) []byte {
		b := clone(good)
		b[i] = v
		return b
	}
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrTruncated},
		{"27-bytes", good[:27], ErrTruncated},
		{"htype-ieee802", mod(1, 6), ErrARPFormat},
		{"ptype-ipv6", mod(2, 0x86), ErrARPFormat},
		{"hlen-8", mod(4, 8), ErrARPFormat},
		{"plen-16", mod(5, 16), ErrARPFormat},
	}
	for _, tt := range tests {
		if _, err := ParseARP(tt.b); err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestPutARP(t *testing.T) {
	b := make([]byte, 64)
	n := PutEthernet(b, BroadcastMAC, macClient, EtherTypeARP)
	n += PutARP(b[n:], ARPRequest, macClient, ipClient, MAC{}, ipServer)
	if !bytes.Equal(b[:n], capARPRequest) {
		t.Errorf("request\n got %x\nwant %x", b[:n], capARPRequest)
	}
	// Answer it in place, as the stack's ARP responder does.
	a, _ := ParseARP(b[EthernetHeaderLen:n])
	a.SetOp(ARPReply)
	PutARP(a, ARPReply, macServer, a.TargetIP(), a.SenderMAC(), a.SenderIP())
	PutEthernet(b, macClient, macServer, EtherTypeARP)
	if !bytes.Equal(b[:n], capARPReply) {
		t.Errorf("reply\n got %x\nwant %x", b[:n], capARPReply)
	}
}
