package slowpath

import (
	"net/netip"
	"testing"
	"time"

	"gotas/internal/wire"
)

func (r *rawPeer) arpFrame(op uint16, smac wire.MAC, sip, tip wire.Addr4) []byte {
	b := make([]byte, 60)
	n := wire.PutEthernet(b, wire.BroadcastMAC, smac, wire.EtherTypeARP)
	tmac := wire.MAC{}
	if op == wire.ARPReply {
		tmac = r.smac
	}
	wire.PutARP(b[n:], op, smac, sip, tmac, tip)
	return b
}

func TestARPLearning(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	me := r.s.ip
	a := &r.s.sp.arp
	mac := wire.MAC{0x02, 0, 0, 0, 0, 9}
	// Unsolicited: a reply to us nobody asked for, a request or a
	// gratuitous ARP for someone else, a probe from 0.0.0.0.
	r.inject(r.arpFrame(wire.ARPReply, mac, wire.Addr4{10, 0, 0, 9}, me),
		r.arpFrame(wire.ARPRequest, mac, wire.Addr4{10, 0, 0, 10}, wire.Addr4{10, 0, 0, 11}),
		r.arpFrame(wire.ARPRequest, mac, wire.Addr4{10, 0, 0, 12}, wire.Addr4{10, 0, 0, 12}),
		r.arpFrame(wire.ARPRequest, mac, wire.Addr4{}, me))
	if len(a.m) != 0 {
		t.Fatalf("learned %d unsolicited entries", len(a.m))
	}
	// A request to us is learned (we are about to answer its sender).
	r.inject(r.arpFrame(wire.ARPRequest, mac, wire.Addr4{10, 0, 0, 13}, me))
	if got, ok := a.lookup(wire.Addr4{10, 0, 0, 13}, r.now()); !ok || got != mac {
		t.Fatalf("request to us not learned: %v %v", got, ok)
	}
	// A reply to our own request resolves the connect.
	cookie := r.app.connect(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.20"), 80))
	r.settle()
	r.inject(r.arpFrame(wire.ARPReply, mac, wire.Addr4{10, 0, 0, 20}, me))
	syns := 0
	for _, p := range tcpOut(t, r.take()) {
		if p.tcp.Flags()&wire.TCPFlagSYN != 0 && p.ip.Dst() == (wire.Addr4{10, 0, 0, 20}) {
			syns++
		}
	}
	if syns != 1 || a.pending != 0 {
		t.Fatalf("%d SYNs after the reply, %d pending", syns, a.pending)
	}
	_ = cookie
	// Resolved entries expire and leave the cache.
	r.advance(time.Duration(defaultARPTTL) + time.Second)
	if _, ok := a.m[wire.Addr4{10, 0, 0, 13}]; ok {
		t.Fatalf("entry still cached after its TTL (%d entries)", len(a.m))
	}
}

func TestARPCacheBounded(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	a := &r.s.sp.arp
	var frames [][]byte
	for i := range 2 * maxARPEntries {
		ip := wire.Addr4{10, 1, byte(i >> 8), byte(i)}
		frames = append(frames, r.arpFrame(wire.ARPRequest, wire.MAC{0x02, 1, 0, 0, byte(i >> 8), byte(i)}, ip, r.s.ip))
	}
	for len(frames) > 0 {
		k := min(len(frames), 256)
		r.inject(frames[:k]...)
		frames = frames[k:]
	}
	if len(a.m) != maxARPEntries || r.s.Stats().ARPRefused != maxARPEntries {
		t.Fatalf("%d entries, %d refused; want %d each", len(a.m), r.s.Stats().ARPRefused, maxARPEntries)
	}
	// Full cache: a connect to a new neighbour fails at once.
	cookie := r.app.connect(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.30"), 80))
	r.settle()
	if ev, ok := r.app.opened[cookie]; !ok || ev.Err == 0 {
		t.Fatalf("connect with a full ARP cache: %+v %v", ev, ok)
	}
	if res := r.s.Resources(); res.Flows != 0 || res.Ports != 0 {
		t.Fatalf("leaked %+v", res)
	}
}

func TestARPPendingBounded(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.s.sp.arp.maxPending = 2
	var cookies []uint64
	for i := range 3 {
		cookies = append(cookies, r.app.connect(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(40 + i)}), 80)))
	}
	r.settle()
	if _, ok := r.app.opened[cookies[2]]; !ok || r.s.sp.arp.pending != 2 {
		t.Fatalf("third resolution not refused (pending %d)", r.s.sp.arp.pending)
	}
	r.advance(time.Second)
	if r.s.sp.arp.pending != 0 || len(r.s.sp.arp.m) != 0 || len(r.app.opened) != 3 {
		t.Fatalf("pending %d entries %d opened %d", r.s.sp.arp.pending, len(r.s.sp.arp.m), len(r.app.opened))
	}
}
