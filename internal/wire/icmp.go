package wire

import "encoding/binary"

// ICMPv4 types.
const (
	ICMPv4EchoReply    = 0
	ICMPv4DestUnreach  = 3
	ICMPv4EchoRequest  = 8
	ICMPv4TimeExceeded = 11
)

const (
	ICMPv4HeaderLen      = 8
	icmpv4ChecksumOffset = 2
)

// ICMPv4 is a view of an ICMPv4 message. ID and Seq are meaningful for echo
// messages only; for other types those bytes are type-specific.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least an ICMP header and returns it as a
// view. b should be an IPv4 payload, already cut to the total length.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv4(b), nil
}

func (m ICMPv4) Type() uint8      { return m[0] }
func (m ICMPv4) Code() uint8      { return m[1] }
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[icmpv4ChecksumOffset:]) }
func (m ICMPv4) ID() uint16       { return binary.BigEndian.Uint16(m[4:]) }
func (m ICMPv4) Seq() uint16      { return binary.BigEndian.Uint16(m[6:]) }
func (m ICMPv4) Payload() []byte  { return m[ICMPv4HeaderLen:] }

// ChecksumValid reports whether the checksum over the whole message is
// correct.
func (m ICMPv4) ChecksumValid() bool { return Sum(m, 0) == 0xffff }

// ToEchoReply turns an echo request into the matching echo reply in place
// and reports whether m was an echo request. Only the type changes, so the
// checksum is patched (RFC 1624) instead of summing the whole payload again;
// a request with a bad checksum thus yields a reply with a bad checksum.
// The caller swaps the IPv4 addresses, which leaves the IPv4 header checksum
// valid as the sum does not depend on word order.
func (m ICMPv4) ToEchoReply() bool {
	if len(m) < ICMPv4HeaderLen || m[0] != ICMPv4EchoRequest || m[1] != 0 {
		return false
	}
	m[0] = ICMPv4EchoReply
	c := UpdateChecksum16(m.Checksum(), ICMPv4EchoRequest<<8, ICMPv4EchoReply<<8)
	// 0x0000 and 0xffff are the same ones' complement value, but a reply
	// whose other bytes are all zero (id, seq 0, empty or zero payload) only
	// verifies with 0xffff, and 0xffff is correct for every other reply too.
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(m[icmpv4ChecksumOffset:], c)
	return true
}
