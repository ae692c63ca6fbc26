package slowpath

import (
	"testing"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

var (
	hostMAC  = wire.MAC{0x02, 0, 0, 0, 0, 1}
	hostIP   = wire.Addr4{10, 0, 0, 1}
	peerMAC  = wire.MAC{0x02, 0, 0, 0, 0, 2}
	peerIP   = wire.Addr4{10, 0, 0, 2}
	otherMAC = wire.MAC{0x02, 0, 0, 0, 0, 3}
)

func arpRequest(target wire.Addr4) []byte {
	b := make([]byte, 60)
	n := wire.PutEthernet(b, wire.BroadcastMAC, peerMAC, wire.EtherTypeARP)
	wire.PutARP(b[n:], wire.ARPRequest, peerMAC, peerIP, wire.MAC{}, target)
	return b
}

func echoRequest(dstMAC wire.MAC, dst wire.Addr4, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	n := wire.PutEthernet(b, dstMAC, peerMAC, wire.EtherTypeIPv4)
	n += wire.PutIPv4(b[n:], wire.IPv4Fields{TotalLen: uint16(20 + 8 + len(payload)), TTL: 64,
		Protocol: wire.IPProtoICMP, Src: peerIP, Dst: dst})
	icmp := b[n:]
	icmp[0] = wire.ICMPv4EchoRequest
	icmp[4], icmp[5], icmp[6], icmp[7] = 0x12, 0x34, 0, 7
	copy(icmp[8:], payload)
	c := wire.Checksum(icmp)
	icmp[2], icmp[3] = byte(c>>8), byte(c)
	return b
}

func handle(h *Host, frame []byte) [][]byte {
	tx := fastpath.NewTxBatch(4)
	h.HandleFrame(frame, tx)
	return tx.Frames()
}

func TestARPRequestForUsGetsReply(t *testing.T) {
	h := NewHost(hostMAC, hostIP)
	out := handle(h, arpRequest(hostIP))
	if len(out) != 1 {
		t.Fatalf("%d replies, want 1", len(out))
	}
	et, hl, err := wire.ParseEthernet(out[0])
	if err != nil || et != wire.EtherTypeARP {
		t.Fatalf("reply ethertype %#x, %v", et, err)
	}
	if e := wire.Ethernet(out[0]); e.Dst() != peerMAC || e.Src() != hostMAC {
		t.Fatalf("reply from %v to %v", e.Src(), e.Dst())
	}
	arp, err := wire.ParseARP(out[0][hl:])
	if err != nil {
		t.Fatal(err)
	}
	if arp.Op() != wire.ARPReply || arp.SenderMAC() != hostMAC || arp.SenderIP() != hostIP ||
		arp.TargetMAC() != peerMAC || arp.TargetIP() != peerIP {
		t.Fatalf("bad reply op=%d %v/%v -> %v/%v", arp.Op(), arp.SenderMAC(), arp.SenderIP(), arp.TargetMAC(), arp.TargetIP())
	}
	if len(out[0]) < 60 {
		t.Fatalf("reply of %d bytes is shorter than Ethernet's minimum", len(out[0]))
	}
	if s := h.Stats(); s.ARPReplies != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEchoRequestGetsValidReply(t *testing.T) {
	h := NewHost(hostMAC, hostIP)
	payload := []byte("abcdefghijklmnopqrstuvwxyz0123456789 ping payload")
	out := handle(h, echoRequest(hostMAC, hostIP, payload))
	if len(out) != 1 {
		t.Fatalf("%d replies, want 1", len(out))
	}
	_, hl, _ := wire.ParseEthernet(out[0])
	if e := wire.Ethernet(out[0]); e.Dst() != peerMAC || e.Src() != hostMAC {
		t.Fatalf("reply from %v to %v", e.Src(), e.Dst())
	}
	ip, err := wire.ParseIPv4(out[0][hl:])
	if err != nil || !ip.ChecksumValid() {
		t.Fatalf("reply IPv4 header: %v, checksum valid %v", err, err == nil && ip.ChecksumValid())
	}
	if ip.Src() != hostIP || ip.Dst() != peerIP || ip.Protocol() != wire.IPProtoICMP {
		t.Fatalf("reply %v -> %v proto %d", ip.Src(), ip.Dst(), ip.Protocol())
	}
	icmp, err := wire.ParseICMPv4(ip.Payload())
	if err != nil || !icmp.ChecksumValid() {
		t.Fatalf("reply ICMP: %v, checksum valid %v", err, err == nil && icmp.ChecksumValid())
	}
	if icmp.Type() != wire.ICMPv4EchoReply || icmp.ID() != 0x1234 || icmp.Seq() != 7 || string(icmp.Payload()) != string(payload) {
		t.Fatalf("reply type %d id %#x seq %d payload %q", icmp.Type(), icmp.ID(), icmp.Seq(), icmp.Payload())
	}
}

func TestFramesNotForUsAreCountedNotAnswered(t *testing.T) {
	corrupt := echoRequest(hostMAC, hostIP, []byte("x"))
	corrupt[len(corrupt)-1] ^= 0xff // breaks the ICMP checksum
	badIP := echoRequest(hostMAC, hostIP, nil)
	badIP[14+8]-- // TTL changed without fixing the header checksum
	tests := []struct {
		name  string
		frame []byte
		stat  func(Stats) uint64
	}{
		{"ARP for another address", arpRequest(wire.Addr4{10, 0, 0, 9}), func(s Stats) uint64 { return s.NotForUs }},
		{"echo to another IP", echoRequest(hostMAC, wire.Addr4{10, 0, 0, 9}, nil), func(s Stats) uint64 { return s.NotForUs }},
		{"echo to another MAC", echoRequest(otherMAC, hostIP, nil), func(s Stats) uint64 { return s.NotForUs }},
		{"bad ICMP checksum", corrupt, func(s Stats) uint64 { return s.Malformed }},
		{"bad IP checksum", badIP, func(s Stats) uint64 { return s.Malformed }},
		{"truncated", arpRequest(hostIP)[:20], func(s Stats) uint64 { return s.Malformed }},
		{"empty", nil, func(s Stats) uint64 { return s.Malformed }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHost(hostMAC, hostIP)
			if out := handle(h, tt.frame); len(out) != 0 {
				t.Fatalf("answered with %d frames", len(out))
			}
			if got := tt.stat(h.Stats()); got != 1 {
				t.Fatalf("counter = %d, want 1 (stats %+v)", got, h.Stats())
			}
		})
	}
}

func TestHandleFrameDoesNotAllocate(t *testing.T) {
	h := NewHost(hostMAC, hostIP)
	tx := fastpath.NewTxBatch(1)
	req := echoRequest(hostMAC, hostIP, make([]byte, 56))
	arp := arpRequest(hostIP)
	allocs := testing.AllocsPerRun(1000, func() {
		h.HandleFrame(req, tx)
		tx.Reset()
		h.HandleFrame(arp, tx)
		tx.Reset()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per frame pair", allocs)
	}
}
