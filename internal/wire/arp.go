package wire

import "encoding/binary"

// ARPLen is the length of an Ethernet/IPv4 ARP packet.
const ARPLen = 28

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is a view of an Ethernet/IPv4 ARP packet (RFC 826). Other hardware
// or protocol types have other field widths and are rejected by ParseARP.
type ARP []byte

// ParseARP checks that b starts with an Ethernet/IPv4 ARP packet and returns
// a view of its 28 bytes, leaving out Ethernet padding.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, ErrTruncated
	}
	// htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
	if binary.BigEndian.Uint32(b) != 0x0001_0800 || b[4] != 6 || b[5] != 4 {
		return nil, ErrARPFormat
	}
	return ARP(b[:ARPLen]), nil
}

func (a ARP) Op() uint16      { return binary.BigEndian.Uint16(a[6:]) }
func (a ARP) SenderMAC() MAC  { return MAC(a[8:14]) }
func (a ARP) SenderIP() Addr4 { return Addr4(a[14:18]) }
func (a ARP) TargetMAC() MAC  { return MAC(a[18:24]) }
func (a ARP) TargetIP() Addr4 { return Addr4(a[24:28]) }
func (a ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(a[6:], op) }

// PutARP writes an Ethernet/IPv4 ARP packet to b and returns ARPLen. For a
// request, targetMAC is conventionally zero.
func PutARP(b []byte, op uint16, senderMAC MAC, senderIP Addr4, targetMAC MAC, targetIP Addr4) int {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint32(b, 0x0001_0800)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], senderMAC[:])
	copy(b[14:18], senderIP[:])
	copy(b[18:24], targetMAC[:])
	copy(b[24:28], targetIP[:])
	return ARPLen
}
