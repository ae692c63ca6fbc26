package wire

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers.
const (
	IPProtoICMP = 1
	IPProtoTCP  = 6
	IPProtoUDP  = 17
)

const (
	IPv4MinHeaderLen = 20
	IPv4MaxHeaderLen = 60
)

const (
	ipv4FlagDF     = 0x4000
	ipv4FlagMF     = 0x2000
	ipv4FragOffMax = 0x1fff
)

// Addr4 is an IPv4 address in network byte order. It is a plain array, not
// a netip.Addr, so that it compares with == and copies out of a header
// without building an address value on the hot path.
type Addr4 [4]byte

// Addr4From converts a to an Addr4; it accepts IPv4 and IPv4-mapped IPv6
// addresses and reports false for anything else.
func Addr4From(a netip.Addr) (Addr4, bool) {
	if !a.Is4() && !a.Is4In6() {
		return Addr4{}, false
	}
	return Addr4(a.Unmap().As4()), true
}

// Addr returns a as a netip.Addr.
func (a Addr4) Addr() netip.Addr { return netip.AddrFrom4(a) }

// String formats a in dotted decimal.
func (a Addr4) String() string { return a.Addr().String() }

// IPv4 is a view of an IPv4 header and its payload.
type IPv4 []byte

// ParseIPv4 checks that b starts with a consistent IPv4 header and returns a
// view cut to the packet's total length, so that Ethernet padding after the
// packet is not mistaken for payload. It does not check the header checksum
// (see ChecksumValid) and accepts fragments (see IsFragment).
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, ErrIPv4Version
	}
	hl := int(b[0]&0xf) * 4
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if hl < IPv4MinHeaderLen || hl > tl {
		return nil, ErrIPv4HeaderLen
	}
	if tl > len(b) {
		return nil, ErrIPv4TotalLen
	}
	return IPv4(b[:tl]), nil
}

func (h IPv4) Version() uint8 { return h[0] >> 4 }

// IHL returns the header length field, in 32-bit words.
func (h IPv4) IHL() uint8 { return h[0] & 0xf }

// HeaderLen returns the header length in bytes.
func (h IPv4) HeaderLen() int { return int(h[0]&0xf) * 4 }

// HasOptions reports whether the header carries options, which gotas never
// sends and a fast path may want to hand to a slow path.
func (h IPv4) HasOptions() bool { return h[0]&0xf > 5 }

func (h IPv4) TOS() uint8 { return h[1] }

// ECN codepoints in the low two bits of the TOS byte (RFC 3168 section 5).
const (
	ECNMask = 0b11
	ECNECT0 = 0b10
	ECNCE   = 0b11
)

func (h IPv4) TotalLen() uint16     { return binary.BigEndian.Uint16(h[2:]) }
func (h IPv4) ID() uint16           { return binary.BigEndian.Uint16(h[4:]) }
func (h IPv4) DF() bool             { return h[6]&(ipv4FlagDF>>8) != 0 }
func (h IPv4) MF() bool             { return h[6]&(ipv4FlagMF>>8) != 0 }
func (h IPv4) TTL() uint8           { return h[8] }
func (h IPv4) Protocol() uint8      { return h[9] }
func (h IPv4) Checksum() uint16     { return binary.BigEndian.Uint16(h[10:]) }
func (h IPv4) Src() Addr4           { return Addr4(h[12:16]) }
func (h IPv4) Dst() Addr4           { return Addr4(h[16:20]) }
func (h IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(h[2:], n) }
func (h IPv4) SetID(id uint16)      { binary.BigEndian.PutUint16(h[4:], id) }
func (h IPv4) SetTTL(ttl uint8)     { h[8] = ttl }
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:], c) }
func (h IPv4) SetSrc(a Addr4)       { copy(h[12:16], a[:]) }
func (h IPv4) SetDst(a Addr4)       { copy(h[16:20], a[:]) }

// FragmentOffset returns the fragment offset in bytes.
func (h IPv4) FragmentOffset() uint16 {
	return binary.BigEndian.Uint16(h[6:]) & ipv4FragOffMax * 8
}

// IsFragment reports whether the packet is part of a fragmented datagram,
// which gotas does not reassemble.
func (h IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(h[6:])&(ipv4FlagMF|ipv4FragOffMax) != 0
}

// Options returns the header's option bytes, capacity limited like
// TCP.Options.
func (h IPv4) Options() []byte {
	hl := h.HeaderLen()
	return h[IPv4MinHeaderLen:hl:hl]
}

// Payload returns the bytes after the header up to the total length.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():h.TotalLen()] }

// ComputeChecksum returns the header checksum, ignoring the current contents
// of the checksum field.
func (h IPv4) ComputeChecksum() uint16 {
	s := Sum(h[:10], 0)
	return ^Sum(h[12:h.HeaderLen()], s)
}

// ChecksumValid reports whether the header checksum is correct.
func (h IPv4) ChecksumValid() bool {
	return Sum(h[:h.HeaderLen()], 0) == 0xffff
}

// UpdateChecksum recomputes and stores the header checksum, for after a
// setter changed several fields.
func (h IPv4) UpdateChecksum() { h.SetChecksum(h.ComputeChecksum()) }

// IPv4Fields are the variable fields of a header written by PutIPv4.
type IPv4Fields struct {
	TOS      uint8
	TotalLen uint16 // header plus payload
	ID       uint16
	DF       bool
	TTL      uint8
	Protocol uint8
	Src, Dst Addr4
}

// PutIPv4 writes a 20-byte header without options, checksum included, to b
// and returns IPv4MinHeaderLen.
func PutIPv4(b []byte, f IPv4Fields) int {
	_ = b[IPv4MinHeaderLen-1]
	b[0] = 0x45
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:], f.TotalLen)
	binary.BigEndian.PutUint16(b[4:], f.ID)
	var frag uint16
	if f.DF {
		frag = ipv4FlagDF
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	copy(b[12:16], f.Src[:])
	copy(b[16:20], f.Dst[:])
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:IPv4MinHeaderLen]))
	return IPv4MinHeaderLen
}
