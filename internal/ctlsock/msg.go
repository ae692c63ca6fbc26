// Package ctlsock is the bootstrap of an application on the tas service:
// the messages on the control socket, a server that registers
// applications on a stack, and the client end. The formats are in
// docs/ABI.md, "Bootstrap".
package ctlsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Version is the ABI version this code speaks: of these messages, the
// context descriptor and the queue and ring layouts. A peer of another
// version is refused.
const Version = 1

// magic starts every message: "GTAS" in memory order.
const magic = 0x53415447

// Message types.
const (
	typeHello      = 1 // app -> service
	typeWelcome    = 2 // service -> app; fds: region, slow-path doorbell, one doorbell per core
	typeRefused    = 3 // service -> app, then the service closes the socket
	typeNewContext = 4 // app -> service
	typeContext    = 5 // service -> app; fd: the context's doorbell when Status is 0
)

// Message offsets and sizes. Every message starts with the 8-byte header.
const (
	offMagic   = 0x00 // u32
	offVersion = 0x04 // u16
	offType    = 0x06 // u16
	headerLen  = 0x08

	helloLen = 0x10 // header, u32 flags (0), u32 reserved

	offWCores      = 0x08 // u32
	offWAppID      = 0x0C // u32
	offWRegionSize = 0x10 // u64
	offWAddr       = 0x18 // 4 bytes, the service's IPv4 address
	offWRxBuf      = 0x1C // u32
	offWTxBuf      = 0x20 // u32
	offWMaxFlows   = 0x24 // u32
	offWAppPollUs  = 0x28 // u32: µs an application should poll before it blocks (0: its choice)
	welcomeLen     = 0x30

	offRErrno   = 0x08 // i32
	offRTextLen = 0x0C // u16
	offRText    = 0x10
	maxText     = 240
	refusedLen  = offRText + maxText

	newContextLen = 0x10 // header, u32 reserved, u32 reserved

	offCStatus = 0x08 // i32: 0 or an errno
	// 0x0C u32 reserved (0); the index is in the descriptor
	offCDesc   = 0x10 // u64: offset of the appif.Desc in the region
	contextLen = 0x18

	maxMsg = refusedLen
	// maxCores bounds the doorbells a Welcome carries (one per core).
	maxCores = 64
)

// ErrVersion means the peer speaks another ABI version.
var ErrVersion = errors.New("ABI version mismatch")

// ErrProtocol means a malformed message.
var ErrProtocol = errors.New("control protocol violation")

func putHeader(b []byte, typ uint16) {
	binary.LittleEndian.PutUint32(b[offMagic:], magic)
	binary.LittleEndian.PutUint16(b[offVersion:], Version)
	binary.LittleEndian.PutUint16(b[offType:], typ)
}

// header checks a message's header and returns its type and version. A
// wrong version is reported with the type, so a Refused message of
// another version can still be read.
func header(b []byte) (typ, version uint16, err error) {
	if len(b) < headerLen || binary.LittleEndian.Uint32(b[offMagic:]) != magic {
		return 0, 0, fmt.Errorf("message of %d bytes without the GTAS magic: %w", len(b), ErrProtocol)
	}
	return binary.LittleEndian.Uint16(b[offType:]), binary.LittleEndian.Uint16(b[offVersion:]), nil
}

// Welcome is what a registered application learns.
type Welcome struct {
	Cores        uint32
	AppID        uint32
	RegionSize   uint64
	Addr         netip.Addr
	RxBuf, TxBuf uint32
	MaxFlows     uint32
	AppPollUs    uint32
}

func (w *Welcome) put(b []byte) []byte {
	b = b[:welcomeLen]
	clear(b)
	putHeader(b, typeWelcome)
	le := binary.LittleEndian
	le.PutUint32(b[offWCores:], w.Cores)
	le.PutUint32(b[offWAppID:], w.AppID)
	le.PutUint64(b[offWRegionSize:], w.RegionSize)
	a := w.Addr.As4()
	copy(b[offWAddr:], a[:])
	le.PutUint32(b[offWRxBuf:], w.RxBuf)
	le.PutUint32(b[offWTxBuf:], w.TxBuf)
	le.PutUint32(b[offWMaxFlows:], w.MaxFlows)
	le.PutUint32(b[offWAppPollUs:], w.AppPollUs)
	return b
}

func parseWelcome(b []byte) (Welcome, error) {
	if len(b) < welcomeLen {
		return Welcome{}, fmt.Errorf("welcome of %d bytes: %w", len(b), ErrProtocol)
	}
	le := binary.LittleEndian
	w := Welcome{Cores: le.Uint32(b[offWCores:]), AppID: le.Uint32(b[offWAppID:]),
		RegionSize: le.Uint64(b[offWRegionSize:]), Addr: netip.AddrFrom4([4]byte(b[offWAddr : offWAddr+4])),
		RxBuf: le.Uint32(b[offWRxBuf:]), TxBuf: le.Uint32(b[offWTxBuf:]), MaxFlows: le.Uint32(b[offWMaxFlows:]),
		AppPollUs: le.Uint32(b[offWAppPollUs:])}
	if w.Cores == 0 || w.Cores > maxCores {
		return Welcome{}, fmt.Errorf("welcome names %d cores: %w", w.Cores, ErrProtocol)
	}
	return w, nil
}

func putRefused(b []byte, errno syscall.Errno, text string) []byte {
	b = b[:refusedLen]
	clear(b)
	putHeader(b, typeRefused)
	binary.LittleEndian.PutUint32(b[offRErrno:], uint32(errno))
	n := copy(b[offRText:], text)
	binary.LittleEndian.PutUint16(b[offRTextLen:], uint16(n))
	return b
}

// refusal decodes a Refused message into an error.
func refusal(b []byte) error {
	if len(b) < offRText {
		return fmt.Errorf("refused message of %d bytes: %w", len(b), ErrProtocol)
	}
	errno := syscall.Errno(binary.LittleEndian.Uint32(b[offRErrno:]))
	n := min(int(binary.LittleEndian.Uint16(b[offRTextLen:])), len(b)-offRText)
	text := string(b[offRText : offRText+n])
	if errno == syscall.EPROTONOSUPPORT {
		return fmt.Errorf("service refused registration: %s: %w", text, ErrVersion)
	}
	return fmt.Errorf("service refused registration: %s: %w", text, errno)
}

func putContextReply(b []byte, status syscall.Errno, desc uint64) []byte {
	b = b[:contextLen]
	clear(b)
	putHeader(b, typeContext)
	binary.LittleEndian.PutUint32(b[offCStatus:], uint32(status))
	binary.LittleEndian.PutUint64(b[offCDesc:], desc)
	return b
}

func putSimple(b []byte, typ uint16, n int) []byte {
	b = b[:n]
	clear(b)
	putHeader(b, typ)
	return b
}

func leUint32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
