package cc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// In-band telemetry travels in the experimental TCP option (kind 253,
// RFC 4727) told apart by an RFC 6994 16-bit ExID. A sender puts an empty
// "collect" option on data segments; each switch appends one hop record;
// the receiver copies the records of the latest data segment into an
// "echo" option on its ACKs. Two ExIDs keep switches from appending to
// echoes. The ExIDs are unregistered experiment values of ours.
const (
	INTExIDCollect = 0x5043 // "PC": records being collected (data)
	INTExIDEcho    = 0x5045 // "PE": records echoed (ACKs)
	// INTHopLen is one hop record on the wire:
	//	0 u16 queue length in 64-byte units (saturating)
	//	2 u32 bytes the port transmitted, mod 2^32
	//	6 u32 timestamp, ns mod 2^32 (wraps every 4.29 s)
	//	10 u16 port rate in 10 Mbit/s units
	INTHopLen = 12
	// INTMaxHops: with timestamps (12 bytes) and the option's 4-byte
	// header, two records fill the 40 bytes of TCP option space.
	INTMaxHops = 2
	// INTReserve is the payload an INT sender leaves out of each data
	// segment so the switches' records still fit the frame.
	INTReserve  = 4 + INTMaxHops*INTHopLen
	intQLenUnit = 64
	intRateUnit = 10_000_000
)

// ErrINT is returned for telemetry that is not well formed.
var ErrINT = errors.New("cc: malformed telemetry option")

// WireHop is a hop record as carried: narrow fields that wrap.
type WireHop struct {
	QLen64  uint16
	Tx      uint32
	TS      uint32
	Rate10M uint16
}

// PutHop appends h to b (which needs INTHopLen bytes of room).
func PutHop(b []byte, h WireHop) {
	be := binary.BigEndian
	be.PutUint16(b, h.QLen64)
	be.PutUint32(b[2:], h.Tx)
	be.PutUint32(b[6:], h.TS)
	be.PutUint16(b[10:], h.Rate10M)
}

// MakeWireHop encodes a switch port's state: queue bytes, transmitted
// bytes, the time (ns) and the port rate (bit/s).
func MakeWireHop(qlen, tx, ts, rateBps uint64) WireHop {
	return WireHop{QLen64: uint16(min(qlen/intQLenUnit, 0xffff)), Tx: uint32(tx), TS: uint32(ts),
		Rate10M: uint16(min(rateBps/intRateUnit, 0xffff))}
}

// ParseHops decodes the option data of a collect or echo option into out
// and returns the records. Data that is not a whole number of records,
// more than INTMaxHops records, or a record with a zero rate (which would
// divide by zero) is rejected: it came from the network.
func ParseHops(data []byte, out *[INTMaxHops]WireHop) ([]WireHop, error) {
	if len(data)%INTHopLen != 0 || len(data) > INTMaxHops*INTHopLen {
		return nil, fmt.Errorf("%d bytes of records: %w", len(data), ErrINT)
	}
	be := binary.BigEndian
	n := len(data) / INTHopLen
	for i := range n {
		d := data[i*INTHopLen:]
		out[i] = WireHop{QLen64: be.Uint16(d), Tx: be.Uint32(d[2:]), TS: be.Uint32(d[6:]), Rate10M: be.Uint16(d[10:])}
		if out[i].Rate10M == 0 {
			return nil, fmt.Errorf("hop %d has rate 0: %w", i, ErrINT)
		}
	}
	return out[:n], nil
}

// Widen turns a wire record into a Hop, unwrapping the counters against
// prev, the same hop's previous widened record (nil for the first). A
// record older than prev (reordered ACKs) unwraps backwards and is then
// ignored by the control law, which skips hops whose time did not advance.
func Widen(prev *Hop, w WireHop) Hop {
	h := Hop{QLen: uint64(w.QLen64) * intQLenUnit, TxBytes: uint64(w.Tx), TS: uint64(w.TS),
		RateBps: uint64(w.Rate10M) * intRateUnit}
	if prev != nil {
		h.TxBytes = prev.TxBytes + uint64(int64(int32(w.Tx-uint32(prev.TxBytes))))
		h.TS = prev.TS + uint64(int64(int32(w.TS-uint32(prev.TS))))
	}
	return h
}

// WantsINT reports whether algorithm name uses in-band telemetry, so its
// flows ask switches for it.
func WantsINT(name string) bool { return name == "powertcp" }
