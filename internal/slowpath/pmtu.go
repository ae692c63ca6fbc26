package slowpath

import (
	"encoding/binary"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// Path MTU discovery (RFC 1191) with the checks of RFC 5927.
const (
	icmpFragNeeded = 4 // destination unreachable: fragmentation needed and DF set (RFC 792)
	// pmtuMinValid: a smaller reported MTU is bogus; 68 is the least MTU
	// every IPv4 link carries (RFC 791). Such reports, and 0 from routers
	// that predate RFC 1191 (whose plateau search we do not do), are
	// ignored.
	pmtuMinValid = 68
	// pmtuFloor: a valid report below it is raised to it, so a forged
	// ICMP cannot shrink segments to a few bytes (RFC 5927 section 7.1
	// suggests a floor; every IPv4 host accepts 576-byte datagrams, RFC
	// 1122 3.3.3; Linux's min_pmtu is 552).
	pmtuFloor = 576
	// quotedTCP is how much of the offending segment an ICMP message
	// must quote: its ports and sequence number (RFC 792).
	quotedTCP = 8
)

// icmpIn handles an ICMP message for our address. It takes
// "fragmentation needed" for a connection of ours, and reports false for
// everything else, which goes to the Host (echo).
func (sp *slow) icmpIn(ip wire.IPv4) bool {
	m, err := wire.ParseICMPv4(ip.Payload())
	if err != nil || m.Type() != wire.ICMPv4DestUnreach || m.Code() != icmpFragNeeded {
		return false
	}
	if msg, ok := sp.pmtuMsg(m); ok && sp.ktxOut[0].Len() < ctlSlots {
		sp.st.pmtuAccepted.Add(1)
		sp.toCore(0, msg, nil)
		return true
	}
	// Invalid, for no established connection, not a reduction, or the
	// core is not keeping up: the report is advisory (the router sends
	// another for the next oversized segment), so it is not queued
	// without bound.
	sp.st.pmtuIgnored.Add(1)
	return true
}

// pmtuMsg checks a fragmentation-needed message and returns the KtxPMTU
// message for the core. The core checks the quoted sequence number against
// its send window (RFC 5927 5.1) and its current MSS; here the report must
// quote a segment we sent on an established connection and lower the MTU
// below the interface's.
func (sp *slow) pmtuMsg(m wire.ICMPv4) (fastpath.CtlMsg, bool) {
	if !m.ChecksumValid() {
		return fastpath.CtlMsg{}, false
	}
	q := m.Payload()
	if len(q) < wire.IPv4MinHeaderLen || q[0]>>4 != 4 {
		return fastpath.CtlMsg{}, false
	}
	hl := int(q[0]&0xf) * 4
	if hl < wire.IPv4MinHeaderLen || len(q) < hl+quotedTCP || q[9] != wire.IPProtoTCP {
		return fastpath.CtlMsg{}, false
	}
	be := binary.BigEndian
	k := fastpath.FlowKey{LocalIP: wire.Addr4(q[12:16]), RemoteIP: wire.Addr4(q[16:20]),
		LocalPort: be.Uint16(q[hl:]), RemotePort: be.Uint16(q[hl+2:])}
	x := sp.conns[k]
	if k.LocalIP != sp.s.ip || x == nil || x.state != stEstablished {
		return fastpath.CtlMsg{}, false
	}
	mtu := be.Uint16(m[6:]) // next-hop MTU (RFC 1191 section 4)
	if mtu < pmtuMinValid || int(mtu) >= int(sp.mss)+ipTCPHeaders {
		return fastpath.CtlMsg{}, false
	}
	return fastpath.CtlMsg{Type: fastpath.KtxPMTU, ID: x.id, Handle: uint64(x.handle),
		SndUna: be.Uint32(q[hl+4:]), MTU: max(mtu, pmtuFloor)}, true
}
