package sim

import (
	"encoding/binary"

	"gotas/internal/cc"
	"gotas/internal/wire"
)

// The switch's telemetry: a data frame toward the bottleneck that carries
// a collect option gets this port's hop record appended, with the state
// the frame finds on arrival: the bytes queued ahead of it, the bytes the
// port has sent (enqueued less queued, so the sender's Δqlen + Δtx is
// exactly the arrival rate, the "current" λ of PowerTCP), the time and the
// port rate. Frames that are not IPv4/TCP, already hold the most records
// or whose options would overflow are forwarded unchanged.

const (
	etherTypeOff = 12
	ipOff        = 14
)

// stamp returns f with the bottleneck's hop record inserted, or f itself.
// The returned slice is n.scratch, valid until the next stamp.
func (n *Net) stamp(f []byte, qlen int) []byte {
	if n.cfg.NoINT || len(f) < ipOff+wire.IPv4MinHeaderLen ||
		binary.BigEndian.Uint16(f[etherTypeOff:]) != wire.EtherTypeIPv4 {
		return f
	}
	ip := wire.IPv4(f[ipOff:])
	tcpOff := ipOff + ip.HeaderLen()
	if ip.Protocol() != wire.IPProtoTCP || len(f) < tcpOff+wire.TCPMinHeaderLen || int(ip.TotalLen()) != len(f)-ipOff {
		return f
	}
	seg := wire.TCP(f[tcpOff:])
	hl := seg.DataOffset()
	if hl < wire.TCPMinHeaderLen || hl+cc.INTHopLen > wire.TCPMinHeaderLen+wire.TCPMaxOptionsLen ||
		len(f)+cc.INTHopLen > len(n.scratch) || tcpOff+hl > len(f) {
		return f
	}
	at, ok := collectEnd(f[tcpOff+wire.TCPMinHeaderLen : tcpOff+hl])
	if !ok {
		return f
	}
	at += tcpOff + wire.TCPMinHeaderLen
	out := n.scratch[:len(f)+cc.INTHopLen]
	copy(out, f[:at])
	tx := n.enqBytes - uint64(qlen)
	cc.PutHop(out[at:], cc.MakeWireHop(uint64(qlen), tx, n.now(), n.cfg.BottleneckBps))
	copy(out[at+cc.INTHopLen:], f[at:])
	return fixHeaders(out, tcpOff, at)
}

// collectEnd finds the collect option in opts and returns the offset just
// past its data, where a record goes, after growing its length byte.
func collectEnd(opts []byte) (int, bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case wire.TCPOptionEOL:
			return 0, false
		case wire.TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || int(opts[i+1]) > len(opts)-i {
			return 0, false
		}
		l := int(opts[i+1])
		if opts[i] == wire.TCPOptionExp && l >= 4 && binary.BigEndian.Uint16(opts[i+2:]) == cc.INTExIDCollect {
			if (l-4)/cc.INTHopLen >= cc.INTMaxHops || (l-4)%cc.INTHopLen != 0 {
				return 0, false
			}
			opts[i+1] = byte(l + cc.INTHopLen)
			return i + l, true
		}
		i += l
	}
	return 0, false
}

// fixHeaders updates the lengths and checksums of a frame that grew by one
// record at offset at (the option's length byte was set by collectEnd, in
// the original, before it was copied).
func fixHeaders(out []byte, tcpOff, at int) []byte {
	ip := wire.IPv4(out[ipOff:])
	ip.SetTotalLen(ip.TotalLen() + cc.INTHopLen)
	ip.SetChecksum(ip.ComputeChecksum())
	seg := wire.TCP(out[tcpOff:])
	seg.SetDataOffset(seg.DataOffset() + cc.INTHopLen)
	wire.SetTCPChecksum(ip.Src(), ip.Dst(), out[tcpOff:])
	return out
}
