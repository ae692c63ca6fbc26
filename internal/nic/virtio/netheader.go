// Package virtio holds the virtio-net packet header (struct virtio_net_hdr)
// that a TAP device with IFF_VNET_HDR, an AF_PACKET socket with
// PACKET_VNET_HDR and a vhost-user-net device put in front of every frame,
// and the software checksum completion its NEEDS_CSUM flag asks for.
package virtio

import "encoding/binary"

// Header sizes.
const (
	NetHdrLen    = 10 // struct virtio_net_hdr
	NetHdrMrgLen = 12 // struct virtio_net_hdr_mrg_rxbuf: adds num_buffers
)

// Flags.
const (
	// FlagNeedsCsum: the L4 checksum at CsumStart+CsumOffset holds only the
	// pseudo-header sum; the rest must be summed from CsumStart on.
	FlagNeedsCsum = 1
	// FlagDataValid: the sender vouches for the checksums (received only).
	FlagDataValid = 2
)

// GSO types.
const (
	GSONone  = 0
	GSOTCPv4 = 1
	GSOUDP   = 3
	GSOTCPv6 = 4
	GSOUDPL4 = 5
	GSOECN   = 0x80
)

// NetHeader is a view of a virtio_net_hdr in memory: NetHdrLen bytes, or
// NetHdrMrgLen to include num_buffers. Fields are little endian as in virtio
// 1.0; a legacy (host-endian) header is the same on every little-endian
// platform, and the TAP back-end asks for little endian explicitly.
type NetHeader []byte

var le = binary.LittleEndian

func (h NetHeader) Flags() uint8       { return h[0] }
func (h NetHeader) GSOType() uint8     { return h[1] }
func (h NetHeader) HdrLen() uint16     { return le.Uint16(h[2:]) }
func (h NetHeader) GSOSize() uint16    { return le.Uint16(h[4:]) }
func (h NetHeader) CsumStart() uint16  { return le.Uint16(h[6:]) }
func (h NetHeader) CsumOffset() uint16 { return le.Uint16(h[8:]) }

// NumBuffers is only present in a NetHdrMrgLen header.
func (h NetHeader) NumBuffers() uint16 { return le.Uint16(h[10:]) }

func (h NetHeader) SetFlags(v uint8)       { h[0] = v }
func (h NetHeader) SetGSOType(v uint8)     { h[1] = v }
func (h NetHeader) SetHdrLen(v uint16)     { le.PutUint16(h[2:], v) }
func (h NetHeader) SetGSOSize(v uint16)    { le.PutUint16(h[4:], v) }
func (h NetHeader) SetCsumStart(v uint16)  { le.PutUint16(h[6:], v) }
func (h NetHeader) SetCsumOffset(v uint16) { le.PutUint16(h[8:], v) }
func (h NetHeader) SetNumBuffers(v uint16) { le.PutUint16(h[10:], v) }

// Clear zeroes the header: no offloads, nothing to complete.
func (h NetHeader) Clear() { clear(h) }

// CompleteCsum finishes the checksum of frame if h has FlagNeedsCsum, so a
// stack that verifies checksums sees a complete one. It reports false if the
// offsets h gives do not fit in frame.
func (h NetHeader) CompleteCsum(frame []byte) bool {
	if h.Flags()&FlagNeedsCsum == 0 {
		return true
	}
	return CompleteCsum(frame, int(h.CsumStart()), int(h.CsumOffset()))
}

// CompleteCsum does what a NIC does for CHECKSUM_PARTIAL: the 16-bit field
// at start+offset holds the pseudo-header sum, so summing everything from
// start on (that field included) and storing the complement yields the
// full TCP/UDP checksum. A zero result is stored as 0xffff, as the kernel
// does, because zero means "no checksum" to UDP.
func CompleteCsum(frame []byte, start, offset int) bool {
	field := start + offset
	if start < 0 || offset < 0 || field+2 > len(frame) {
		return false
	}
	c := ^Fold(Sum(frame[start:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
	return true
}

// Sum adds b to the running one's-complement sum acc as big-endian 16-bit
// words, padding an odd last byte with zero. Pass the result to Fold.
func Sum(b []byte, acc uint64) uint64 {
	// 32-bit words added into 64 bits cannot overflow for any frame size.
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// Fold folds a Sum into 16 bits (not complemented).
func Fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
