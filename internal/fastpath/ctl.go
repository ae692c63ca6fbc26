package fastpath

import (
	"encoding/binary"
	"errors"
)

// Slow path <-> core queues ("KTX" and "KRX" in TAS). Both are shm queues
// of CtlSlot-byte slots: a 64-byte header, then a frame if the message
// carries one.
const (
	CtlSlot   = 1600
	CtlHeader = 64
)

// KTX (slow path -> core) message types.
const (
	KtxSend       = 1 // transmit the frame as is
	KtxInject     = 2 // process the frame as if received (data racing a handshake)
	KtxRemove     = 3 // remove flow ID (handle in Handle) and report it gone
	KtxAddContext = 4 // attach application context ID
	KtxKick       = 5 // flow ID: re-examine (e.g. after a rate change)
	// KtxPMTU: an ICMP "fragmentation needed" (RFC 1191) for flow ID
	// (Handle) quoted sequence number SndUna and reported MTU; the core
	// validates the sequence against its own window (RFC 5927 5.1) and
	// lowers the flow's MSS.
	KtxPMTU = 6
	// KtxDelContext: context ID's application is gone; forget it and
	// answer KrxContextGone.
	KtxDelContext = 7
)

// KRX (core -> slow path) message types.
const (
	KrxFrame = 1 // a punted frame; Reason says why
	KrxGone  = 2 // flow ID left the fast path; Reason says why
	// KrxContextGone: the core no longer reads or writes context ID.
	KrxContextGone = 3
)

// Reasons a frame is punted to the slow path. PuntIPOptions and PuntURG
// keep their numbers but are no longer used: the core handles both.
const (
	PuntNotIPv4 = iota + 1
	PuntNotTCP
	PuntIPOptions
	PuntNoFlow
	PuntURG
	numPunt
)

// Reasons a flow left the fast path.
const (
	GoneRemoved = 1 // the slow path asked (KtxRemove)
	GoneReset   = 2 // an acceptable RST arrived (RFC 5961 exact match)
	GoneTimeout = 3 // too many retransmission timeouts
	GoneCorrupt = 4 // the application wrote an impossible ring position
)

// Gone flags: how far the connection got.
const (
	GoneRxFin       = 1
	GoneTxFinAcked  = 2
	GoneActiveClose = 4
)

// CtlMsg is the header of a KTX or KRX slot:
//
//	0x00 u8 type, 0x01 u8 reason, 0x02 u16 frame length, 0x04 u32 id,
//	0x08 u64 handle, 0x10 u32 snd_nxt (snd_max), 0x14 u32 rcv_nxt,
//	0x18 u8 flags, 0x1A u16 mtu, 0x1C u32 snd_una, 0x20 u32 ts_recent
type CtlMsg struct {
	Type, Reason uint8
	Len          uint16
	ID           uint32
	Handle       uint64
	SndNxt       uint32
	RcvNxt       uint32
	Flags        uint8
	MTU          uint16 // KtxPMTU: the next-hop MTU the ICMP message reported
	SndUna       uint32
	// TSRecent (KrxGone): the peer's last timestamp the core accepted,
	// which TIME_WAIT needs to judge a new SYN (RFC 6191) and to echo.
	TSRecent uint32
}

// Put encodes m into the header of slot b.
func (m *CtlMsg) Put(b []byte) {
	le := binary.LittleEndian
	b[0], b[1] = m.Type, m.Reason
	le.PutUint16(b[2:], m.Len)
	le.PutUint32(b[4:], m.ID)
	le.PutUint64(b[8:], m.Handle)
	le.PutUint32(b[16:], m.SndNxt)
	le.PutUint32(b[20:], m.RcvNxt)
	b[24] = m.Flags
	le.PutUint16(b[26:], m.MTU)
	le.PutUint32(b[28:], m.SndUna)
	le.PutUint32(b[32:], m.TSRecent)
}

// Get decodes the header of slot b.
func (m *CtlMsg) Get(b []byte) {
	le := binary.LittleEndian
	m.Type, m.Reason = b[0], b[1]
	m.Len = le.Uint16(b[2:])
	m.ID = le.Uint32(b[4:])
	m.Handle = le.Uint64(b[8:])
	m.SndNxt = le.Uint32(b[16:])
	m.RcvNxt = le.Uint32(b[20:])
	m.Flags = b[24]
	m.MTU = le.Uint16(b[26:])
	m.SndUna = le.Uint32(b[28:])
	m.TSRecent = le.Uint32(b[32:])
}

// Frame returns the frame a slot carries (length from the header, bounded).
func (m *CtlMsg) Frame(b []byte) []byte {
	n := min(int(m.Len), CtlSlot-CtlHeader)
	return b[CtlHeader : CtlHeader+n]
}

var errTableFull = errors.New("fastpath: flow table full")
