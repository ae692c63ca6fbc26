package wire

import (
	"encoding/binary"
	"math/bits"
)

// Sum returns the Internet checksum sum (RFC 1071) of b added to initial:
// the 16-bit ones' complement sum of b's big-endian words, folded but not
// complemented. A trailing odd byte counts as the high byte of a word.
//
// Sums chain: Sum(b2, Sum(b1, 0)) equals Sum(b1+b2, 0) as long as len(b1) is
// even, which lets a sender sum a header and a payload separately.
func Sum(b []byte, initial uint16) uint16 {
	return fold64(sum64(b, uint64(initial)))
}

// Checksum returns the value for a checksum field covering b, that is the
// complement of Sum(b, 0). The field itself must be zero in b.
func Checksum(b []byte) uint16 {
	return ^Sum(b, 0)
}

// CombineSums adds two sums returned by Sum in ones' complement arithmetic.
func CombineSums(a, b uint16) uint16 {
	return fold32(uint32(a) + uint32(b))
}

// sum64 adds b to acc in 64-bit ones' complement arithmetic. Because 2^16-1
// divides 2^64-1, folding this sum down to 16 bits gives the same result as
// adding 16-bit words one at a time, while the add-with-carry chain handles
// eight bytes per instruction. Eight words per iteration keep the carry in
// the flags register for most of the loop.
func sum64(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[32:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[40:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[48:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[56:]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	// The tail words are aligned on an even offset from the start, so they
	// sit in the low 32 bits of a 64-bit lane without shifting.
	var tail uint64
	if len(b) >= 4 {
		tail = uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 8
	}
	acc, c = bits.Add64(acc, tail, c)
	// End-around carry: adding the carry back cannot carry again unless acc
	// wrapped to zero, in which case the result is 1, which is what +c gives.
	acc, c = bits.Add64(acc, c, 0)
	return acc + c
}

func fold64(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	return fold32(uint32(s))
}

func fold32(s uint32) uint16 {
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}

// PseudoHeaderSum returns the sum of the IPv4 pseudo-header that TCP and UDP
// checksums cover (RFC 793 3.1, RFC 768): source, destination, protocol and
// the transport length (header plus payload).
func PseudoHeaderSum(proto uint8, src, dst Addr4, length uint16) uint16 {
	s := uint32(src[0])<<8 | uint32(src[1])
	s += uint32(src[2])<<8 | uint32(src[3])
	s += uint32(dst[0])<<8 | uint32(dst[1])
	s += uint32(dst[2])<<8 | uint32(dst[3])
	s += uint32(proto) + uint32(length)
	return fold32(s)
}

// TCPChecksum returns the checksum field value for the TCP segment seg (header
// and payload) sent from src to dst. The current contents of the field are
// ignored, so it need not be zeroed first. seg must hold at least a TCP
// header; len(seg) above 65535 is not representable in IPv4.
func TCPChecksum(src, dst Addr4, seg []byte) uint16 {
	s := Sum(seg, PseudoHeaderSum(IPProtoTCP, src, dst, uint16(len(seg))))
	// Subtract the field rather than zeroing it so seg stays untouched.
	s = CombineSums(s, ^binary.BigEndian.Uint16(seg[tcpChecksumOff:]))
	return ^s
}

// SetTCPChecksum computes and stores the checksum of seg, a full TCP segment.
func SetTCPChecksum(src, dst Addr4, seg []byte) {
	binary.BigEndian.PutUint16(seg[tcpChecksumOff:], TCPChecksum(src, dst, seg))
}

// SetTCPPartialChecksum stores the pseudo-header sum of seg in its
// checksum field, for a device or kernel to complete (CHECKSUM_PARTIAL;
// see IsPartialChecksum). seg is the whole segment, header and payload,
// so the sum covers its full length even when it is cut later (GSO
// adjusts it per segment).
func SetTCPPartialChecksum(src, dst Addr4, seg []byte) {
	binary.BigEndian.PutUint16(seg[tcpChecksumOff:], PseudoHeaderSum(IPProtoTCP, src, dst, uint16(len(seg))))
}

// VerifyTCPChecksum reports whether seg carries a correct TCP checksum. It
// does not accept a partial checksum; see IsPartialChecksum. A segment too
// short to hold a TCP header fails.
func VerifyTCPChecksum(src, dst Addr4, seg []byte) bool {
	if len(seg) < TCPMinHeaderLen || len(seg) > 0xffff {
		return false
	}
	return Sum(seg, PseudoHeaderSum(IPProtoTCP, src, dst, uint16(len(seg)))) == 0xffff
}

// IsPartialChecksum reports whether csum, the checksum field of a TCP or UDP
// packet of the given transport length, holds only the pseudo-header sum.
//
// That is what a Linux sender leaves in the field when it offloads the
// checksum (CHECKSUM_PARTIAL): __tcp_v4_send_check sets
//
//	th->check = ~tcp_v4_check(skb->len, saddr, daddr, 0)
//
// and tcp_v4_check is csum_fold of the pseudo-header sum, csum_fold already
// complementing, so the field holds the folded pseudo-header sum itself, not
// complemented (udp4_hwcsum does the same for UDP). The device is meant to
// finish the sum over the segment, but a veth peer hands the packet on as is,
// so an AF_XDP or AF_PACKET reader sees this value instead of a checksum.
// Captured on Linux 6.18 over lo: a 40-byte SYN from 127.0.0.1 to 127.0.0.1
// carries 0xfe30 = 0x7f00+0x0001+0x7f00+0x0001+6+40.
//
// A stack that knows its link may leak such packets (nic.Info.PartialRxCsum)
// accepts them as valid; nothing else should.
func IsPartialChecksum(csum uint16, proto uint8, src, dst Addr4, length int) bool {
	if length < 0 || length > 0xffff {
		return false
	}
	return csum == PseudoHeaderSum(proto, src, dst, uint16(length))
}

// UpdateChecksum16 returns checksum field hc updated for one 16-bit word of
// the covered data changing from old to new, by RFC 1624 eqn. 3:
// HC' = ~(~HC + ~m + m'). The word must sit at an even offset in the data the
// checksum covers, which every TCP/IP header field does.
//
// The result equals a full recompute bit for bit unless the covered data
// ends up all zero, where the two differ only as -0 and +0 (0x0000 against
// 0xffff); a TCP or UDP pseudo-header is never all zero.
func UpdateChecksum16(hc, old, new uint16) uint16 {
	return ^fold32(uint32(^hc) + uint32(^old) + uint32(new))
}

// UpdateChecksum32 is UpdateChecksum16 for a 32-bit field (an address, a
// sequence number) at an even offset.
func UpdateChecksum32(hc uint16, old, new uint32) uint16 {
	s := uint32(^hc)
	s += uint32(^uint16(old>>16)) + uint32(^uint16(old))
	s += uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^fold32(s)
}
