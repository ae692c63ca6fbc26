package wire

import "encoding/binary"

// EtherTypes gotas looks at. EtherTypeVLAN and EtherTypeQinQ introduce a tag
// (802.1Q and 802.1ad S-tag) that ParseEthernet steps over.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100
	EtherTypeQinQ = 0x88a8
	EtherTypeIPv6 = 0x86dd
)

const (
	EthernetHeaderLen = 14
	VLANTagLen        = 4
)

// MAC is an Ethernet address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as six lower-case colon-separated hex bytes.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, x := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hex[x>>4]
		b[3*i+1] = hex[x&0xf]
	}
	return string(b[:])
}

// IsMulticast reports whether m is a group address (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// Ethernet is a view of an Ethernet II header, possibly followed by a VLAN
// tag.
type Ethernet []byte

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// EtherType returns the outer EtherType, which is EtherTypeVLAN or
// EtherTypeQinQ for a tagged frame; ParseEthernet returns the inner one.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:]) }

// VLAN returns the tag control information (priority, DEI, VLAN ID) of a
// tagged frame and whether the frame is tagged.
func (e Ethernet) VLAN() (tci uint16, ok bool) {
	if len(e) < EthernetHeaderLen+VLANTagLen || !isVLANType(e.EtherType()) {
		return 0, false
	}
	return binary.BigEndian.Uint16(e[14:]), true
}

// SetDst sets the destination address.
func (e Ethernet) SetDst(m MAC) { copy(e[0:6], m[:]) }

// SetSrc sets the source address.
func (e Ethernet) SetSrc(m MAC) { copy(e[6:12], m[:]) }

func isVLANType(t uint16) bool { return t == EtherTypeVLAN || t == EtherTypeQinQ }

// ParseEthernet returns the EtherType of the frame's payload and the length
// of the header in front of it, stepping over one 802.1Q or 802.1ad tag. A
// frame with a second tag reports EtherTypeVLAN as its payload type, which a
// stack that does not do QinQ drops as unknown. Values below 0x0600 are
// 802.3 lengths, returned as they are for the caller to drop likewise.
func ParseEthernet(b []byte) (etherType uint16, hdrLen int, err error) {
	if len(b) < EthernetHeaderLen {
		return 0, 0, ErrTruncated
	}
	t := binary.BigEndian.Uint16(b[12:])
	if !isVLANType(t) {
		return t, EthernetHeaderLen, nil
	}
	if len(b) < EthernetHeaderLen+VLANTagLen {
		return 0, 0, ErrTruncated
	}
	return binary.BigEndian.Uint16(b[16:]), EthernetHeaderLen + VLANTagLen, nil
}

// PutEthernet writes an untagged Ethernet header to b and returns its length.
func PutEthernet(b []byte, dst, src MAC, etherType uint16) int {
	_ = b[EthernetHeaderLen-1]
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:], etherType)
	return EthernetHeaderLen
}
