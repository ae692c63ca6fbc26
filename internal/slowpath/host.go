// Package slowpath handles the packets that are not part of an established
// TCP flow: today ARP and ICMP echo for the service address.
package slowpath

import (
	"sync/atomic"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// Host answers ARP and ICMP echo for one IPv4 address on one interface.
// HandleFrame runs on fast-path cores, so Host keeps no state that needs a
// lock; counters are atomics.
type Host struct {
	mac wire.MAC
	ip  wire.Addr4

	stats hostCounters
}

type hostCounters struct {
	arpReplies, echoReplies        atomic.Uint64
	notForUs, malformed, unhandled atomic.Uint64
}

// Stats counts what the host did with the frames it was given.
type Stats struct {
	ARPReplies, EchoReplies uint64
	// NotForUs: frames for another MAC or IP address (seen on back-ends
	// that receive everything, such as AF_PACKET).
	NotForUs uint64
	// Malformed: truncated or inconsistent headers, bad checksums.
	Malformed uint64
	// Unhandled: well-formed frames for us that nothing handles yet.
	Unhandled uint64
}

// NewHost makes a host with the interface's MAC and the service address.
func NewHost(mac wire.MAC, ip wire.Addr4) *Host {
	return &Host{mac: mac, ip: ip}
}

// Stats reads the counters.
func (h *Host) Stats() Stats {
	return Stats{
		ARPReplies: h.stats.arpReplies.Load(), EchoReplies: h.stats.echoReplies.Load(),
		NotForUs: h.stats.notForUs.Load(), Malformed: h.stats.malformed.Load(),
		Unhandled: h.stats.unhandled.Load(),
	}
}

// HandleFrame implements fastpath.Handler.
func (h *Host) HandleFrame(frame []byte, tx *fastpath.TxBatch) {
	etherType, hdrLen, err := wire.ParseEthernet(frame)
	if err != nil {
		h.stats.malformed.Add(1)
		return
	}
	dst := wire.Ethernet(frame).Dst()
	if dst != h.mac && !dst.IsMulticast() {
		h.stats.notForUs.Add(1)
		return
	}
	switch etherType {
	case wire.EtherTypeARP:
		h.handleARP(frame[hdrLen:], tx)
	case wire.EtherTypeIPv4:
		h.handleIPv4(wire.Ethernet(frame).Src(), frame[hdrLen:], tx)
	default:
		h.stats.unhandled.Add(1)
	}
}

func (h *Host) handleARP(b []byte, tx *fastpath.TxBatch) {
	arp, err := wire.ParseARP(b)
	if err != nil {
		h.stats.malformed.Add(1)
		return
	}
	if arp.TargetIP() != h.ip {
		h.stats.notForUs.Add(1)
		return
	}
	if arp.Op() != wire.ARPRequest {
		h.stats.unhandled.Add(1) // replies feed the ARP cache once there is one
		return
	}
	out := tx.Next()
	if out == nil {
		return
	}
	n := wire.PutEthernet(out, arp.SenderMAC(), h.mac, wire.EtherTypeARP)
	n += wire.PutARP(out[n:], wire.ARPReply, h.mac, h.ip, arp.SenderMAC(), arp.SenderIP())
	tx.Commit(padFrame(out, n))
	h.stats.arpReplies.Add(1)
}

func (h *Host) handleIPv4(srcMAC wire.MAC, b []byte, tx *fastpath.TxBatch) {
	ip, err := wire.ParseIPv4(b)
	if err != nil || !ip.ChecksumValid() {
		h.stats.malformed.Add(1)
		return
	}
	if ip.Dst() != h.ip {
		h.stats.notForUs.Add(1)
		return
	}
	if ip.Protocol() != wire.IPProtoICMP || ip.IsFragment() {
		h.stats.unhandled.Add(1)
		return
	}
	req, err := wire.ParseICMPv4(ip.Payload())
	if err != nil || !req.ChecksumValid() {
		h.stats.malformed.Add(1)
		return
	}
	if req.Type() != wire.ICMPv4EchoRequest || req.Code() != 0 {
		h.stats.unhandled.Add(1)
		return
	}
	out := tx.Next()
	if out == nil {
		return
	}
	icmpLen := len(req)
	if wire.EthernetHeaderLen+wire.IPv4MinHeaderLen+icmpLen > len(out) {
		h.stats.malformed.Add(1) // cannot happen for frames a NIC delivers
		return
	}
	// The reply is built fresh rather than in place: the request may carry
	// IP options or a VLAN tag that the reply does not repeat.
	n := wire.PutEthernet(out, srcMAC, h.mac, wire.EtherTypeIPv4)
	n += wire.PutIPv4(out[n:], wire.IPv4Fields{
		TotalLen: uint16(wire.IPv4MinHeaderLen + icmpLen),
		TTL:      64, Protocol: wire.IPProtoICMP, Src: h.ip, Dst: ip.Src(),
	})
	reply := wire.ICMPv4(out[n : n+icmpLen])
	copy(reply, req)
	reply.ToEchoReply()
	tx.Commit(padFrame(out, n+icmpLen))
	h.stats.echoReplies.Add(1)
}

// padFrame zero-pads a frame to Ethernet's 60-byte minimum, which software
// back-ends (TAP, AF_PACKET) would otherwise send short.
func padFrame(b []byte, n int) int {
	const minFrame = 60
	if n >= minFrame {
		return n
	}
	clear(b[n:minFrame])
	return minFrame
}
