package wire

import (
	"encoding/binary"
	"strings"
)

const (
	TCPMinHeaderLen  = 20
	TCPMaxHeaderLen  = 60
	TCPMaxOptionsLen = TCPMaxHeaderLen - TCPMinHeaderLen

	tcpChecksumOff = 16
)

// TCPFlags are the eight flag bits of byte 13 of the header. The NS bit
// (RFC 3540, historic) is not included.
type TCPFlags uint8

const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// String lists the set flags as in "SYN|ACK", for logs and test failures.
func (f TCPFlags) String() string {
	if f == 0 {
		return "0"
	}
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	var sb strings.Builder
	for i, n := range names {
		if f&(1<<i) == 0 {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString(n)
	}
	return sb.String()
}

// TCP is a view of a TCP segment: header, options and payload.
type TCP []byte

// ParseTCP checks that b starts with a TCP header whose data offset lies
// within b and returns b as a view. b should be an IPv4 payload, already cut
// to the total length, so that Payload excludes link padding. The checksum is
// not checked; see VerifyTCPChecksum.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, ErrTruncated
	}
	off := int(b[12]>>4) * 4
	if off < TCPMinHeaderLen || off > len(b) {
		return nil, ErrTCPDataOffset
	}
	return TCP(b), nil
}

func (t TCP) SrcPort() uint16   { return binary.BigEndian.Uint16(t[0:]) }
func (t TCP) DstPort() uint16   { return binary.BigEndian.Uint16(t[2:]) }
func (t TCP) SeqNum() uint32    { return binary.BigEndian.Uint32(t[4:]) }
func (t TCP) AckNum() uint32    { return binary.BigEndian.Uint32(t[8:]) }
func (t TCP) Flags() TCPFlags   { return TCPFlags(t[13]) }
func (t TCP) Window() uint16    { return binary.BigEndian.Uint16(t[14:]) }
func (t TCP) Checksum() uint16  { return binary.BigEndian.Uint16(t[tcpChecksumOff:]) }
func (t TCP) UrgentPtr() uint16 { return binary.BigEndian.Uint16(t[18:]) }

// DataOffset returns the header length in bytes (the data offset field
// times four), which is where the payload starts.
func (t TCP) DataOffset() int { return int(t[12]>>4) * 4 }

// Options returns the option bytes between the fixed header and the payload.
// Its capacity ends with it, so an append cannot overwrite the payload.
func (t TCP) Options() []byte {
	off := t.DataOffset()
	return t[TCPMinHeaderLen:off:off]
}

// Payload returns the bytes after the header.
func (t TCP) Payload() []byte { return t[t.DataOffset():] }

func (t TCP) SetSrcPort(p uint16)   { binary.BigEndian.PutUint16(t[0:], p) }
func (t TCP) SetDstPort(p uint16)   { binary.BigEndian.PutUint16(t[2:], p) }
func (t TCP) SetSeqNum(n uint32)    { binary.BigEndian.PutUint32(t[4:], n) }
func (t TCP) SetAckNum(n uint32)    { binary.BigEndian.PutUint32(t[8:], n) }
func (t TCP) SetFlags(f TCPFlags)   { t[13] = uint8(f) }
func (t TCP) SetWindow(w uint16)    { binary.BigEndian.PutUint16(t[14:], w) }
func (t TCP) SetChecksum(c uint16)  { binary.BigEndian.PutUint16(t[tcpChecksumOff:], c) }
func (t TCP) SetUrgentPtr(p uint16) { binary.BigEndian.PutUint16(t[18:], p) }

// SetDataOffset sets the header length in bytes; n must be a multiple of 4
// between 20 and 60. The reserved bits are cleared.
func (t TCP) SetDataOffset(n int) { t[12] = uint8(n/4) << 4 }

// TCPFields are the fixed-header fields written by PutTCP.
type TCPFields struct {
	SrcPort, DstPort uint16
	SeqNum, AckNum   uint32
	Flags            TCPFlags
	Window           uint16
	UrgentPtr        uint16
}

// PutTCP writes a TCP header with the options in opts (nil for none) to b
// and returns the header length. The checksum is left zero: it covers the
// payload, which the caller writes next before SetTCPChecksum.
func PutTCP(b []byte, f TCPFields, opts *TCPOptions) int {
	_ = b[TCPMinHeaderLen-1]
	binary.BigEndian.PutUint16(b[0:], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:], f.DstPort)
	binary.BigEndian.PutUint32(b[4:], f.SeqNum)
	binary.BigEndian.PutUint32(b[8:], f.AckNum)
	b[13] = uint8(f.Flags)
	binary.BigEndian.PutUint16(b[14:], f.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:], f.UrgentPtr)
	n := TCPMinHeaderLen
	if opts != nil {
		n += opts.Put(b[TCPMinHeaderLen:])
	}
	b[12] = uint8(n/4) << 4
	return n
}
