package slowpath

import (
	"encoding/binary"

	"gotas/internal/fastpath"
)

// The ephemeral port range (Linux ip_local_port_range).
const (
	ephemeralLo = 32768
	ephemeralHi = 60999
)

// getPort picks the local port of k, whose addresses and remote port are
// set. A port is unique per 4-tuple, not per host, so every destination
// has the whole range and connections to different destinations may share
// a port; a port a listener holds is never picked. The search starts at
// RFC 6056 algorithm 3's offset, a keyed hash of the destination plus a
// counter, so ports are hard to guess and consecutive connections to one
// destination do not probe the same ports again.
func (sp *slow) getPort(k *fastpath.FlowKey) bool {
	const n = ephemeralHi - ephemeralLo + 1
	dst := uint64(binary.BigEndian.Uint32(k.RemoteIP[:]))<<16 | uint64(k.RemotePort)
	off := uint32(sipHash128(sp.portKey[0], sp.portKey[1], dst, 0) % n)
	for i := range uint32(n) {
		k.LocalPort = uint16(ephemeralLo + (off+sp.portNext+i)%n)
		if sp.tupleFree(k) {
			sp.portNext += i + 1
			sp.tuples[*k] = struct{}{}
			sp.holdPort(k.LocalPort)
			return true
		}
	}
	return false
}

// tupleFree reports whether nothing uses the 4-tuple k: no listener on its
// local port, no connection, no TIME_WAIT entry.
func (sp *slow) tupleFree(k *fastpath.FlowKey) bool {
	if sp.listeners[k.LocalPort] != nil || sp.conns[*k] != nil || sp.tw[*k] != nil {
		return false
	}
	_, used := sp.tuples[*k]
	return !used
}

// releasePort frees the ephemeral 4-tuple k.
func (sp *slow) releasePort(k fastpath.FlowKey) {
	if _, ok := sp.tuples[k]; ok {
		delete(sp.tuples, k)
		sp.putPort(k.LocalPort)
	}
}

// holdPort and putPort count the users of a local port (Resources.Ports
// counts ports with at least one).
func (sp *slow) holdPort(p uint16) {
	if sp.ports[p]++; sp.ports[p] == 1 {
		sp.res.ports.Add(1)
	}
}

func (sp *slow) putPort(p uint16) {
	if sp.ports[p]--; sp.ports[p] <= 0 {
		delete(sp.ports, p)
		sp.res.ports.Add(-1)
	}
}
