// Package pkttx is a transmit-only AF_PACKET socket that puts a
// virtio_net_hdr in front of every frame (PACKET_VNET_HDR), so the kernel
// completes TCP checksums and cuts frames longer than the MTU into
// segments (GSO), or hands them to a device that does either itself: a
// veth passes a GSO frame to its peer whole, as one 64 KB sk_buff, which a
// Linux receiver takes as GRO's output. AF_XDP cannot send such frames
// (an XSK frame is one wire packet), so the afxdp back-end sends through
// this socket when asked to (afxdp.Config.Tx) and receives on its XSK.
//
// One sendmmsg(2) moves a batch. The socket is bound with protocol 0, so
// it receives nothing.
package pkttx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotas/internal/nic/virtio"
)

// Frame layout SendSegments accepts: Ethernet without VLAN tag, IPv4, TCP.
const (
	ethLen        = 14
	etherTypeOff  = 12
	etherTypeIPv4 = 0x0800
	ipMinLen      = 20
	ipProtoOff    = 9
	ipProtoTCP    = 6
	tcpMinLen     = 20
	tcpDataOff    = 12 // data offset, in the high nibble
	tcpFlagsOff   = 13
	tcpFlagCWR    = 0x80
	tcpCsumOff    = 16 // the checksum field, from the TCP header's start
)

// ErrSmallBuffer: the socket's send buffer could not be made as large as
// asked.
var ErrSmallBuffer = errors.New("send buffer too small")

// MaxFrame is the longest frame Send takes: an IPv4 packet's total length
// is 16 bits.
const MaxFrame = ethLen + 0xffff

// Result is what Send did with a batch.
type Result struct {
	Consumed int // frames from the front taken: sent, dropped or refused
	Sent     int
	// Segmented counts the sent frames whose payload the kernel cuts.
	Segmented int
	Bytes     uint64
	// Dropped counts frames the device refused (ENOBUFS: a veth whose
	// peer's backlog is full); Bad counts malformed frames, never sent.
	Dropped, Bad int
}

// Socket is the transmit socket. One goroutine at a time calls Send.
type Socket struct {
	fd   int
	hdrs []byte // virtio.NetHdrLen bytes a message
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
}

// Open makes a socket that sends on interface ifindex, batch frames per
// sendmmsg at most, with a send buffer of sndbuf bytes (frames in flight
// count against it until the device lets go of them).
func Open(ifindex, batch, sndbuf int) (_ *Socket, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pkttx: socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	// Not PACKET_QDISC_BYPASS: its dev_direct_xmit drops every frame the
	// device cannot take whole instead of cutting it (measured: ENOBUFS
	// for each 64 KB frame on a veth with TSO off).
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, fmt.Errorf("pkttx: PACKET_VNET_HDR: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbuf) != nil {
		// Without CAP_NET_ADMIN: net.core.wmem_max caps it, perhaps to
		// a few large frames, which would make Send stop short all the
		// time; the caller is better off without this socket.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
		if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err != nil || got < sndbuf {
			return nil, fmt.Errorf("pkttx: send buffer of %d bytes, %d wanted (net.core.wmem_max): %w", got, sndbuf, ErrSmallBuffer)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("pkttx: bind to ifindex %d: %w", ifindex, err)
	}
	s := &Socket{fd: fd, hdrs: make([]byte, batch*virtio.NetHdrLen),
		iov: make([]unix.Iovec, 2*batch), msgs: make([]unix.Mmsghdr, batch)}
	for j := range s.msgs {
		s.iov[2*j].Base = &s.hdrs[j*virtio.NetHdrLen]
		s.iov[2*j].SetLen(virtio.NetHdrLen)
		s.msgs[j].Hdr.Iov = &s.iov[2*j]
		s.msgs[j].Hdr.SetIovlen(2)
	}
	return s, nil
}

// Send sends frames in order, with segs as nic.SegmentSender.SendSegments
// defines (nil: all complete). It stops early when the kernel has no room
// (EAGAIN): the rest are the caller's to retry.
func (s *Socket) Send(frames [][]byte, segs []uint16) (Result, error) {
	var r Result
	for r.Consumed < len(frames) {
		n := s.fill(frames[r.Consumed:], segs[min(r.Consumed, len(segs)):])
		if n == 0 {
			r.Bad++ // malformed: consumed unsent
			r.Consumed++
			continue
		}
		done, err := s.sendmmsg(n)
		for j := range done {
			r.Sent++
			r.Bytes += uint64(len(frames[r.Consumed+j]))
			if s.hdrs[j*virtio.NetHdrLen+1]&^virtio.GSOECN != virtio.GSONone {
				r.Segmented++
			}
		}
		r.Consumed += done
		if done == n {
			continue
		}
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			return r, nil
		case errors.Is(err, unix.ENOBUFS):
			r.Dropped++
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EMSGSIZE):
			r.Bad++
		default:
			return r, fmt.Errorf("pkttx: sendmmsg: %w", err)
		}
		r.Consumed++ // the frame the kernel refused
	}
	return r, nil
}

// fill prepares messages for the well-formed frames at the front of
// frames, at most one batch, and returns how many.
func (s *Socket) fill(frames [][]byte, segs []uint16) int {
	n := 0
	for ; n < len(frames) && n < len(s.msgs); n++ {
		var seg uint16
		if segs != nil {
			seg = segs[n]
		}
		f := frames[n]
		if !header(virtio.NetHeader(s.hdrs[n*virtio.NetHdrLen:(n+1)*virtio.NetHdrLen]), f, seg) {
			break
		}
		s.iov[2*n+1].Base = unsafe.SliceData(f)
		s.iov[2*n+1].SetLen(len(f))
	}
	return n
}

// header writes the virtio_net_hdr for frame f: none for a complete frame
// (seg 0); else a partial checksum, and GSO when the payload is longer than
// seg. It reports false for a frame that breaks SendSegments' rules.
func header(h virtio.NetHeader, f []byte, seg uint16) bool {
	h.Clear()
	if len(f) == 0 || len(f) > MaxFrame {
		return false
	}
	if seg == 0 {
		return true
	}
	if len(f) < ethLen+ipMinLen+tcpMinLen ||
		binary.BigEndian.Uint16(f[etherTypeOff:]) != etherTypeIPv4 ||
		f[ethLen]>>4 != 4 || f[ethLen+ipProtoOff] != ipProtoTCP {
		return false
	}
	ihl := int(f[ethLen]&0xf) * 4
	tcpOff := ethLen + ihl
	if ihl < ipMinLen || len(f) < tcpOff+tcpMinLen ||
		int(binary.BigEndian.Uint16(f[ethLen+2:])) != len(f)-ethLen {
		return false
	}
	hdrLen := tcpOff + int(f[tcpOff+tcpDataOff]>>4)*4
	if hdrLen < tcpOff+tcpMinLen || hdrLen > len(f) {
		return false
	}
	h.SetFlags(virtio.FlagNeedsCsum)
	h.SetCsumStart(uint16(tcpOff))
	h.SetCsumOffset(tcpCsumOff)
	if len(f)-hdrLen > int(seg) {
		gso := uint8(virtio.GSOTCPv4)
		if f[tcpOff+tcpFlagsOff]&tcpFlagCWR != 0 {
			gso |= virtio.GSOECN
		}
		h.SetGSOType(gso)
		h.SetGSOSize(seg)
		h.SetHdrLen(uint16(hdrLen))
	}
	return true
}

// sendmmsg sends the first n prepared messages; it returns how many went
// and, when not all did, the error of the first that did not.
func (s *Socket) sendmmsg(n int) (int, error) {
	done := 0
	for done < n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[done])),
			uintptr(n-done), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			runtime.KeepAlive(s)
			return done, e
		}
		if r == 0 {
			runtime.KeepAlive(s)
			return done, unix.EAGAIN // not documented to happen; never spin on it
		}
		done += int(r)
	}
	runtime.KeepAlive(s)
	return done, nil
}

// Close closes the socket.
func (s *Socket) Close() error { return unix.Close(s.fd) }
