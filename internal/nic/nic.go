// Package nic defines how gotas moves Ethernet frames: a Port owns one
// interface, each of its Queues receives and sends frames in batches.
//
// Back-ends live in sub-packages (afxdp, afpacket, tap, memnic); package
// nic/open picks one from a "kind:name" spec.
package nic

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MaxFrame is the largest frame (without FCS) any back-end takes from the
// stack, and hands to it unless it reassembles: MTU 1500 plus an Ethernet
// header and one VLAN tag. AF_XDP with multi-buffer hands on frames of up
// to 64 KiB (a Linux peer's GSO packets), counted in RxMultiBuffer.
const MaxFrame = 1518

// ErrClosed is returned by queue operations after Close.
var ErrClosed = errors.New("nic: queue closed")

// Queue is one receive/transmit queue. A queue is driven by one goroutine at
// a time (the fast-path core that owns it); only Stats may be called
// concurrently.
type Queue interface {
	// Recv stores up to len(frames) received frames in frames and returns
	// how many. The slices are views into back-end memory that stay valid
	// until the next Recv on this queue, so a caller handles a whole batch
	// before asking for the next. Recv never blocks: 0 means nothing waits.
	Recv(frames [][]byte) (int, error)

	// Send copies frames into the back-end and starts transmitting them, in
	// order. It returns how many frames from the front it consumed; the rest
	// did not fit (a full ring) and are the caller's to retry or drop, and
	// are counted in TxDropped only if the caller drops them. A malformed
	// frame (empty, or longer than MaxFrame) is consumed without being sent
	// and counted in TxErrors, so a bad frame can never stall a caller.
	Send(frames [][]byte) (int, error)

	// PollFD is a descriptor that polls readable when Recv may return
	// frames; Wait uses it to sleep in interrupt mode.
	PollFD() int

	Stats() Stats
	Close() error
}

// SegmentSender is a Queue whose transmit side finishes TCP/IPv4 frames
// for the stack: it completes their checksums and cuts frames longer than
// the MTU into segments, as a NIC's checksum offload and TSO do (in
// software below the back-end, or in the device).
type SegmentSender interface {
	Queue
	// SendSegments is Send for frames described by segs, one entry a
	// frame. segs[i] == 0: frame i is complete, as Send takes it.
	// Otherwise frame i is an Ethernet, IPv4 (no options) and TCP frame
	// of at most MaxSegmentFrame bytes whose TCP checksum field holds the
	// pseudo-header sum over the whole frame's TCP length (Linux's
	// CHECKSUM_PARTIAL convention); a payload longer than segs[i] goes
	// out as segments of segs[i] bytes, each with the frame's headers,
	// IPv4 IDs counting up, and FIN and PSH on the last one only. A frame
	// that breaks these rules is consumed unsent and counted in TxErrors.
	SendSegments(frames [][]byte, segs []uint16) (int, error)
	// MaxSegmentFrame is the longest frame SendSegments takes.
	MaxSegmentFrame() int
}

// Port is an opened interface with one or more queues.
type Port interface {
	Queues() []Queue
	Info() Info
	// Close closes every queue and undoes what opening did (detaches the
	// XDP program, deletes a TAP device it created).
	Close() error
}

// Info describes a port.
type Info struct {
	Name    string // interface name
	Kind    string // afxdp, afpacket, tap, mem
	MAC     [6]byte
	MTU     int
	Mode    string // back-end detail, e.g. "native" or "generic" XDP
	Ifindex int

	// PartialRxCsum says received TCP/UDP checksums may hold only the
	// pseudo-header sum (CHECKSUM_PARTIAL leaking from a veth peer); the
	// stack must then treat that value as valid. See docs/ARCHITECTURE.md.
	PartialRxCsum bool
}

// Stats are a queue's counters since it was opened.
type Stats struct {
	RxFrames, RxBytes uint64
	TxFrames, TxBytes uint64
	// RxDropped counts frames the back-end lost before the stack saw them
	// (kernel ring overflow, oversize frames, impairment loss).
	RxDropped uint64
	// TxDropped counts frames the back-end itself had to drop on transmit.
	TxDropped uint64
	// TxErrors counts frames refused as malformed (too long, empty).
	TxErrors uint64
	// TxSegmented counts frames SendSegments handed on to be cut into
	// segments (in TxFrames too, once each).
	TxSegmented uint64
	// RxErrors counts frames the back-end received but could not hand on
	// (bad virtio header, truncated block, bad multi-buffer descriptors).
	RxErrors uint64
	// RxMultiBuffer counts received frames that arrived in more than one
	// buffer and were handed on as one (AF_XDP XDP_USE_SG); they are in
	// RxFrames too.
	RxMultiBuffer uint64
}

// Add returns the element-wise sum, for totals over queues.
func (s Stats) Add(o Stats) Stats {
	s.RxFrames += o.RxFrames
	s.RxBytes += o.RxBytes
	s.TxFrames += o.TxFrames
	s.TxBytes += o.TxBytes
	s.RxDropped += o.RxDropped
	s.TxDropped += o.TxDropped
	s.TxErrors += o.TxErrors
	s.RxErrors += o.RxErrors
	s.RxMultiBuffer += o.RxMultiBuffer
	s.TxSegmented += o.TxSegmented
	return s
}

// Counters is the concurrency-safe form of Stats that back-ends embed. The
// owning goroutine adds once per batch, so the atomics cost little.
type Counters struct {
	RxFrames, RxBytes, TxFrames, TxBytes     atomic.Uint64
	RxDropped, TxDropped, TxErrors, RxErrors atomic.Uint64
	RxMultiBuffer, TxSegmented               atomic.Uint64
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() Stats {
	return Stats{
		RxFrames: c.RxFrames.Load(), RxBytes: c.RxBytes.Load(),
		TxFrames: c.TxFrames.Load(), TxBytes: c.TxBytes.Load(),
		RxDropped: c.RxDropped.Load(), TxDropped: c.TxDropped.Load(),
		TxErrors: c.TxErrors.Load(), RxErrors: c.RxErrors.Load(),
		RxMultiBuffer: c.RxMultiBuffer.Load(), TxSegmented: c.TxSegmented.Load(),
	}
}

// PortStats sums the stats of all queues of p.
func PortStats(p Port) Stats {
	var s Stats
	for _, q := range p.Queues() {
		s = s.Add(q.Stats())
	}
	return s
}

// Wait blocks until q may have frames, one of extra becomes readable, or
// timeout passes (a negative timeout waits forever). It reports whether
// something became ready. The fast path calls it after spinning idle, with
// its doorbell eventfd in extra, so an application's kick wakes it too.
func Wait(q Queue, timeout time.Duration, extra ...int) (bool, error) {
	var fds [8]unix.PollFd
	if len(extra) > len(fds)-1 {
		return false, errors.New("nic: too many descriptors to wait on")
	}
	fds[0] = unix.PollFd{Fd: int32(q.PollFD()), Events: unix.POLLIN}
	for i, fd := range extra {
		fds[i+1] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	// ppoll, not poll: pacing and timers sleep for fractions of a
	// millisecond, which poll's millisecond timeout would round up.
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	for {
		n, err := unix.Ppoll(fds[:1+len(extra)], ts, nil)
		if err == unix.EINTR {
			continue
		}
		return n > 0, err
	}
}
