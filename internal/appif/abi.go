// Package appif is the application interface of gotas, after TAS's
// low-level API (tas_ll.h): contexts with event and command queues in a
// shared-memory region, asynchronous listen/connect/close, and zero-copy
// access to per-connection RX and TX byte rings.
//
// The wire format of every message is fixed here (and in docs/ABI.md,
// "Application protocol") so that the service (fast path and slow path) and
// a client in another process, or written in C, agree byte for byte. All
// fields are little-endian; nothing in the region is a pointer; connection
// and listener handles are integers (index | generation<<32).
package appif

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"gotas/internal/shm"
)

// Queue geometry of a context. Slots are fixed-size; see docs/ABI.md.
const (
	// CmdSlot is the size of a fast-path command (app -> core, "ATX").
	CmdSlot = 32
	// EvSlot is the size of a fast-path event (core -> app, "ARX").
	EvSlot = 32
	// ReqSlot is the size of a slow-path request (app -> slow path, "KIN").
	ReqSlot = 64
	// RespSlot is the size of a slow-path message (slow path -> app, "KOUT").
	RespSlot = 64

	// DescSize is the size of the context descriptor at the context's offset.
	DescSize = 256
	// DescMagic identifies a context descriptor ("GTSC").
	DescMagic = 0x43535447
	// MaxCores bounds the per-core queue pairs a descriptor lists.
	MaxCores = 8
)

// Context descriptor layout (at the context's offset, written once by the
// service before the context is handed out):
//
//	0x00 u32 magic, 0x04 u32 version (1), 0x08 u32 context index,
//	0x0C u32 cores, 0x10 u32 cmd slots, 0x14 u32 ev slots,
//	0x18 u32 req slots, 0x1C u32 resp slots,
//	0x20 u64 req queue offset, 0x28 u64 resp queue offset,
//	0x30 + 16*i: u64 cmd queue offset, u64 ev queue offset of core i.
const (
	dOffMagic, dOffVersion, dOffIndex, dOffCores = 0x00, 0x04, 0x08, 0x0C
	dOffCmdSlots, dOffEvSlots                    = 0x10, 0x14
	dOffReqSlots, dOffRespSlots                  = 0x18, 0x1C
	dOffReq, dOffResp, dOffCore                  = 0x20, 0x28, 0x30
)

// Desc describes one context's queues: where they are in the region and
// how many slots each has.
type Desc struct {
	Index               uint32
	CmdSlots, EvSlots   uint32
	ReqSlots, RespSlots uint32
	ReqOff, RespOff     uint64
	CmdOff, EvOff       []uint64 // one per fast-path core
}

// Put writes d into b (DescSize bytes).
func (d *Desc) Put(b []byte) {
	le := binary.LittleEndian
	clear(b[:DescSize])
	le.PutUint32(b[dOffMagic:], DescMagic)
	le.PutUint32(b[dOffVersion:], 1)
	le.PutUint32(b[dOffIndex:], d.Index)
	le.PutUint32(b[dOffCores:], uint32(len(d.CmdOff)))
	le.PutUint32(b[dOffCmdSlots:], d.CmdSlots)
	le.PutUint32(b[dOffEvSlots:], d.EvSlots)
	le.PutUint32(b[dOffReqSlots:], d.ReqSlots)
	le.PutUint32(b[dOffRespSlots:], d.RespSlots)
	le.PutUint64(b[dOffReq:], d.ReqOff)
	le.PutUint64(b[dOffResp:], d.RespOff)
	for i := range d.CmdOff {
		le.PutUint64(b[dOffCore+16*i:], d.CmdOff[i])
		le.PutUint64(b[dOffCore+16*i+8:], d.EvOff[i])
	}
}

// ParseDesc reads a descriptor written by Put.
func ParseDesc(b []byte) (Desc, bool) {
	le := binary.LittleEndian
	if len(b) < DescSize || le.Uint32(b[dOffMagic:]) != DescMagic || le.Uint32(b[dOffVersion:]) != 1 {
		return Desc{}, false
	}
	n := int(le.Uint32(b[dOffCores:]))
	if n < 1 || n > MaxCores {
		return Desc{}, false
	}
	d := Desc{Index: le.Uint32(b[dOffIndex:]),
		CmdSlots: le.Uint32(b[dOffCmdSlots:]), EvSlots: le.Uint32(b[dOffEvSlots:]),
		ReqSlots: le.Uint32(b[dOffReqSlots:]), RespSlots: le.Uint32(b[dOffRespSlots:]),
		ReqOff: le.Uint64(b[dOffReq:]), RespOff: le.Uint64(b[dOffResp:])}
	for i := range n {
		d.CmdOff = append(d.CmdOff, le.Uint64(b[dOffCore+16*i:]))
		d.EvOff = append(d.EvOff, le.Uint64(b[dOffCore+16*i+8:]))
	}
	return d, true
}

// Handle is a connection or listener handle: the service's slot index in
// the low 32 bits and a generation in the high 32 bits, so a stale handle
// never names a reused slot.
type Handle uint64

// MakeHandle builds a handle.
func MakeHandle(index, gen uint32) Handle { return Handle(uint64(gen)<<32 | uint64(index)) }

// Index is the slot index (for connections: the flow id).
func (h Handle) Index() uint32 { return uint32(h) }

// Gen is the generation.
func (h Handle) Gen() uint32 { return uint32(h >> 32) }

// Cmd is a fast-path command (app -> core). It says "look at flow Handle
// again": the byte counts are informative (the ring positions are the
// truth), the flags carry state changes.
//
//	0x00 u64 handle, 0x08 u32 tx bytes appended, 0x0C u32 rx bytes consumed,
//	0x10 u8 flags (CmdTxClose, CmdNagle)
type Cmd struct {
	Conn   Handle
	TxBump uint32
	RxBump uint32
	Flags  uint8
}

// Command flags.
const (
	// CmdTxClose: the application will append nothing more; send FIN
	// after the last TX byte.
	CmdTxClose = 1
	// CmdNagle: enable Nagle's algorithm (RFC 896) for this flow. It is a
	// level, not an edge: every command of a flow with Nagle on carries
	// it, and a command without it turns Nagle off (the default).
	CmdNagle = 2
)

// Put encodes c into a CmdSlot-byte slot.
func (c *Cmd) Put(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(c.Conn))
	le.PutUint32(b[8:], c.TxBump)
	le.PutUint32(b[12:], c.RxBump)
	b[16] = c.Flags
	clear(b[17:CmdSlot])
}

// Get decodes a slot (copying every field once, as docs/ABI.md requires).
func (c *Cmd) Get(b []byte) {
	le := binary.LittleEndian
	c.Conn = Handle(le.Uint64(b[0:]))
	c.TxBump = le.Uint32(b[8:])
	c.RxBump = le.Uint32(b[12:])
	c.Flags = b[16]
}

// Ev is a fast-path event (core -> app), at most one per flow per receive
// batch.
//
//	0x00 u64 handle, 0x08 u32 new in-order RX bytes, 0x0C u32 TX bytes
//	acknowledged (ring space freed), 0x10 u8 flags (EvRxFin, EvTxFinAcked)
type Ev struct {
	Conn   Handle
	RxBump uint32
	TxBump uint32
	Flags  uint8
}

// Event flags.
const (
	EvRxFin      = 1 // the peer's FIN arrived (after all its data)
	EvTxFinAcked = 2 // our FIN was acknowledged
)

// Put encodes e into an EvSlot-byte slot.
func (e *Ev) Put(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(e.Conn))
	le.PutUint32(b[8:], e.RxBump)
	le.PutUint32(b[12:], e.TxBump)
	b[16] = e.Flags
	clear(b[17:EvSlot])
}

// Get decodes a slot.
func (e *Ev) Get(b []byte) {
	le := binary.LittleEndian
	e.Conn = Handle(le.Uint64(b[0:]))
	e.RxBump = le.Uint32(b[8:])
	e.TxBump = le.Uint32(b[12:])
	e.Flags = b[16]
}

// Request types (app -> slow path).
const (
	ReqListen      = 1 // Cookie, LocalPort, Backlog
	ReqListenClose = 2 // Handle
	ReqConnect     = 3 // Cookie, RemoteIP, RemotePort
	ReqClose       = 4 // Handle; aborts (RST) unless both FINs are done
)

// Message types (slow path -> app).
const (
	MsgListenOpened = 1 // Cookie, Handle (listener), Status
	MsgListenClosed = 2 // Handle
	MsgAccepted     = 3 // Handle (listener) in Aux, Handle (conn), buffers, remote
	MsgConnOpened   = 4 // Cookie, Handle, Status, buffers, remote, local port
	MsgConnClosed   = 5 // Handle, Status (ECONNRESET, ETIMEDOUT); Close still required
)

// Ctl is a slow-path request or message; one 64-byte layout serves both:
//
//	0x00 u8 type, 0x01 u8 flags, 0x02 u16 local port, 0x04 i32 status (errno),
//	0x08 u64 cookie, 0x10 u64 handle, 0x18 u64 aux (listener handle),
//	0x20 [4]u8 remote IPv4, 0x24 u16 remote port, 0x26 u16 backlog,
//	0x28 u64 rx ring offset, 0x30 u64 tx ring offset,
//	0x38 u32 rx ring size, 0x3C u32 tx ring size
//
// In ReqConnect and ReqListen, flags is the connection's congestion
// control (cc.ID; 0: the stack's default); an unknown number fails the
// request with EINVAL.
type Ctl struct {
	Type       uint8
	Flags      uint8
	LocalPort  uint16
	Status     int32
	Cookie     uint64
	Handle     Handle
	Aux        Handle
	RemoteIP   [4]byte
	RemotePort uint16
	Backlog    uint16
	RxOff      uint64
	TxOff      uint64
	RxSize     uint32
	TxSize     uint32
}

// Put encodes m into a 64-byte slot.
func (m *Ctl) Put(b []byte) {
	le := binary.LittleEndian
	b[0], b[1] = m.Type, m.Flags
	le.PutUint16(b[2:], m.LocalPort)
	le.PutUint32(b[4:], uint32(m.Status))
	le.PutUint64(b[8:], m.Cookie)
	le.PutUint64(b[16:], uint64(m.Handle))
	le.PutUint64(b[24:], uint64(m.Aux))
	copy(b[32:36], m.RemoteIP[:])
	le.PutUint16(b[36:], m.RemotePort)
	le.PutUint16(b[38:], m.Backlog)
	le.PutUint64(b[40:], m.RxOff)
	le.PutUint64(b[48:], m.TxOff)
	le.PutUint32(b[56:], m.RxSize)
	le.PutUint32(b[60:], m.TxSize)
}

// Get decodes a slot.
func (m *Ctl) Get(b []byte) {
	le := binary.LittleEndian
	m.Type, m.Flags = b[0], b[1]
	m.LocalPort = le.Uint16(b[2:])
	m.Status = int32(le.Uint32(b[4:]))
	m.Cookie = le.Uint64(b[8:])
	m.Handle = Handle(le.Uint64(b[16:]))
	m.Aux = Handle(le.Uint64(b[24:]))
	copy(m.RemoteIP[:], b[32:36])
	m.RemotePort = le.Uint16(b[36:])
	m.Backlog = le.Uint16(b[38:])
	m.RxOff = le.Uint64(b[40:])
	m.TxOff = le.Uint64(b[48:])
	m.RxSize = le.Uint32(b[56:])
	m.TxSize = le.Uint32(b[60:])
}

// Ring gives raw access to a byte ring laid out as in docs/ABI.md §7, for
// the fast path, which writes out-of-order data beyond the head and reads
// unacknowledged data behind its private send position, which the
// RingWriter/RingReader API does not offer.
type Ring struct {
	Data       []byte
	Head, Tail *atomic.Uint32
	Mask       uint32
}

// OpenRing attaches to a formatted ring.
func OpenRing(r *shm.Region, off uint64, size uint32) (Ring, error) {
	if r == nil {
		return Ring{}, errors.New("appif: ring in no region")
	}
	if _, err := shm.NewRingReader(r, off, size); err != nil { // validates the header
		return Ring{}, err
	}
	data, err := r.Bytes(off+shm.RingHeaderSize, uint64(size))
	if err != nil {
		return Ring{}, err
	}
	h, err := r.Uint32(off + 0x40)
	if err != nil {
		return Ring{}, err
	}
	t, err := r.Uint32(off + 0x80)
	if err != nil {
		return Ring{}, err
	}
	return Ring{Data: data, Head: h, Tail: t, Mask: size - 1}, nil
}
