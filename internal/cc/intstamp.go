package cc

import (
	"encoding/binary"

	"gotas/internal/wire"
)

// Frame offsets StampINT reads: Ethernet without VLAN tags.
const (
	etherTypeOff = 12
	ipOff        = 14
)

// StampINT is a switch's telemetry step: if frame is an IPv4/TCP segment
// whose options hold a collect option with room for another record, it
// writes the frame with hop appended to that option into out (which needs
// len(frame)+INTHopLen bytes), fixes the lengths and checksums, and
// returns it; otherwise it returns frame unchanged and false. The frame is
// a peer's: every length is checked before it is used.
func StampINT(out, frame []byte, hop WireHop) ([]byte, bool) {
	f := frame
	if len(f) < ipOff+wire.IPv4MinHeaderLen || binary.BigEndian.Uint16(f[etherTypeOff:]) != wire.EtherTypeIPv4 ||
		len(out) < len(f)+INTHopLen {
		return frame, false
	}
	ip := wire.IPv4(f[ipOff:])
	tcpOff := ipOff + ip.HeaderLen()
	if ip.Version() != 4 || ip.HeaderLen() < wire.IPv4MinHeaderLen || ip.Protocol() != wire.IPProtoTCP ||
		len(f) < tcpOff+wire.TCPMinHeaderLen || int(ip.TotalLen()) != len(f)-ipOff {
		return frame, false
	}
	hl := wire.TCP(f[tcpOff:]).DataOffset()
	if hl < wire.TCPMinHeaderLen || hl+INTHopLen > wire.TCPMinHeaderLen+wire.TCPMaxOptionsLen || tcpOff+hl > len(f) {
		return frame, false
	}
	optOff := tcpOff + wire.TCPMinHeaderLen
	lenAt, end, ok := findCollect(f[optOff : tcpOff+hl])
	if !ok {
		return frame, false
	}
	at := optOff + end
	out = out[:len(f)+INTHopLen]
	copy(out, f[:at])
	PutHop(out[at:], hop)
	copy(out[at+INTHopLen:], f[at:])
	out[optOff+lenAt] += INTHopLen
	fixHeaders(out, tcpOff)
	return out, true
}

// findCollect finds the collect option in opts: the offset of its length
// byte and the end of its data, where a record goes. false if there is
// none, it is malformed, or it holds INTMaxHops records already.
func findCollect(opts []byte) (lenAt, end int, ok bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case wire.TCPOptionEOL:
			return 0, 0, false
		case wire.TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || int(opts[i+1]) > len(opts)-i {
			return 0, 0, false
		}
		l := int(opts[i+1])
		if opts[i] == wire.TCPOptionExp && l >= 4 && binary.BigEndian.Uint16(opts[i+2:]) == INTExIDCollect {
			if (l-4)%INTHopLen != 0 || (l-4)/INTHopLen >= INTMaxHops {
				return 0, 0, false
			}
			return i + 1, i + l, true
		}
		i += l
	}
	return 0, 0, false
}

// fixHeaders updates the lengths and checksums of a frame whose TCP
// options grew by one record.
func fixHeaders(out []byte, tcpOff int) {
	ip := wire.IPv4(out[ipOff:])
	ip.SetTotalLen(ip.TotalLen() + INTHopLen)
	ip.SetChecksum(ip.ComputeChecksum())
	seg := wire.TCP(out[tcpOff:])
	seg.SetDataOffset(seg.DataOffset() + INTHopLen)
	wire.SetTCPChecksum(ip.Src(), ip.Dst(), out[tcpOff:])
}
