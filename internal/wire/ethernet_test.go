package wire

import (
	"bytes"
	"testing"
)

func TestMACString(t *testing.T) {
	if got := macServer.String(); got != "fa:bd:6f:7f:7b:6f" {
		t.Errorf("String = %q", got)
	}
	if got := (MAC{}).String(); got != "00:00:00:00:00:00" {
		t.Errorf("zero String = %q", got)
	}
	if !BroadcastMAC.IsMulticast() || macServer.IsMulticast() || !(MAC{0x01, 0, 0x5e, 0, 0, 1}).IsMulticast() {
		t.Error("IsMulticast wrong")
	}
}

func TestParseEthernet(t *testing.T) {
	tagged := withVLAN(capSYN, EtherTypeVLAN, 0x2064) // prio 1, VID 100
	qinq := withVLAN(capSYN, EtherTypeQinQ, 0x00c8)
	double := withVLAN(tagged, EtherTypeQinQ, 0x00c8)
	tests := []struct {
		name    string
		b       []byte
		typ     uint16
		hdrLen  int
		err     error
		vlanTCI uint16
		tagged  bool
	}{
		{name: "ipv4", b: capSYN, typ: EtherTypeIPv4, hdrLen: 14},
		{name: "arp", b: capARPRequest, typ: EtherTypeARP, hdrLen: 14},
		{name: "header-only", b: capSYN[:14], typ: EtherTypeIPv4, hdrLen: 14},
		{name: "8021q", b: tagged, typ: EtherTypeIPv4, hdrLen: 18, vlanTCI: 0x2064, tagged: true},
		{name: "8021ad", b: qinq, typ: EtherTypeIPv4, hdrLen: 18, vlanTCI: 0x00c8, tagged: true},
		// Only one tag is stepped over; the inner tag surfaces as the type.
		{name: "double-tag", b: double, typ: EtherTypeVLAN, hdrLen: 18, vlanTCI: 0x00c8, tagged: true},
		{name: "8023-length", b: append(clone(capSYN[:12]), 0x00, 0x2e), typ: 0x002e, hdrLen: 14},
		{name: "empty", b: nil, err: ErrTruncated},
		{name: "13-bytes", b: capSYN[:13], err: ErrTruncated},
		{name: "tag-truncated", b: tagged[:17], err: ErrTruncated},
		{name: "tag-only-tpid", b: tagged[:14], err: ErrTruncated},
	}
	for _, tt := range tests {
		typ, hl, err := ParseEthernet(tt.b)
		if err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if typ != tt.typ || hl != tt.hdrLen {
			t.Errorf("%s: got type %#04x len %d, want %#04x %d", tt.name, typ, hl, tt.typ, tt.hdrLen)
		}
		tci, ok := Ethernet(tt.b).VLAN()
		if ok != tt.tagged || tci != tt.vlanTCI {
			t.Errorf("%s: VLAN() = %#04x %v, want %#04x %v", tt.name, tci, ok, tt.vlanTCI, tt.tagged)
		}
	}
	if _, err := ParseIPv4(tagged[18:]); err != nil {
		t.Errorf("payload after tag: %v", err)
	}
}

func TestEthernetView(t *testing.T) {
	e := Ethernet(clone(capSYN))
	if e.Dst() != macServer || e.Src() != macClient || e.EtherType() != EtherTypeIPv4 {
		t.Fatalf("got %v > %v type %#04x", e.Src(), e.Dst(), e.EtherType())
	}
	e.SetDst(e.Src())
	e.SetSrc(macServer)
	if e.Dst() != macClient || e.Src() != macServer {
		t.Errorf("after swap: %v > %v", e.Src(), e.Dst())
	}
}

func TestPutEthernet(t *testing.T) {
	b := make([]byte, 20)
	if n := PutEthernet(b, macServer, macClient, EtherTypeIPv4); n != EthernetHeaderLen {
		t.Fatalf("n = %d", n)
	}
	if !bytes.Equal(b[:14], capSYN[:14]) {
		t.Errorf("header = %x, want %x", b[:14], capSYN[:14])
	}
	if b[14] != 0 {
		t.Error("wrote past the header")
	}
}
