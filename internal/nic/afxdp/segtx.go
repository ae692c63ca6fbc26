package afxdp

import (
	"errors"
	"fmt"

	"gotas/internal/nic"
	"gotas/internal/nic/pkttx"
)

// ErrNoSegmentTx is returned by SendSegments on a queue that transmits
// on its XSK's TX ring (TxRing, or the packet socket refused).
var ErrNoSegmentTx = errors.New("afxdp: no segment offload on this queue")

// TxPath is how a queue transmits.
type TxPath int

const (
	// TxRing: the XSK's TX ring, one frame a packet.
	TxRing TxPath = iota
	// TxSegments: the TX ring for frames of one packet, and a packet
	// socket (package pkttx) for TCP frames of up to 64 KB, which the
	// kernel cuts into segments (GSO) and completes the checksums of, or
	// which a veth hands to its peer whole, as Linux's own TCP sends with
	// TSO. (Small frames through the packet socket cost 10 % of the RPC
	// rate against the ring, measured: docs/PERF.md, "Segment offload".)
	TxSegments
)

func (t TxPath) String() string {
	if t == TxSegments {
		return "gso"
	}
	return "ring"
}

// Segment transmit socket sizing: a core's batch (fastpath.BatchSize
// frames and its large buffers) fits one sendmmsg; the send buffer holds
// a few dozen 64 KB frames in flight, where the device has not let go of
// them yet.
const (
	segTxBatch  = 64
	segTxSndbuf = 8 << 20
)

// openSegmentTx gives q a packet socket for large frames on interface
// ifindex (TxSegments). A zero-copy socket keeps its TX ring only: large
// frames need a copy, which zero-copy exists to avoid; so does every
// queue where the kernel refuses the packet socket.
//
// On a veth both paths reach the one peer queue in the order sent. A
// device with a qdisc and several TX queues may hold a large frame in
// the qdisc, or pick another queue for it than the XSK's, and let the
// flow's next small frames overtake it; there (all) every frame goes
// through the packet socket, whose frames of one flow keep their order.
func (q *Queue) openSegmentTx(ifindex int, path TxPath, all bool) {
	if path != TxSegments || q.zc {
		return
	}
	if s, err := pkttx.Open(ifindex, segTxBatch, segTxSndbuf); err == nil {
		q.seg, q.segAll = s, all
	}
}

// MaxSegmentFrame implements nic.SegmentSender: 0 when the queue sends
// on its XSK only.
func (q *Queue) MaxSegmentFrame() int {
	if q.seg == nil {
		return 0
	}
	return pkttx.MaxFrame
}

// SendSegments implements nic.SegmentSender: complete frames go on the
// TX ring, the others through the packet socket, a run of each at a time
// so that frames leave in the order given. (A kick the kernel leaves
// undone, EAGAIN, lets a later large frame overtake what stays on the
// ring; TCP takes that as reordering.)
func (q *Queue) SendSegments(frames [][]byte, segs []uint16) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	if q.segAll {
		return q.sendLarge(frames, segs)
	}
	done := 0
	for done < len(frames) {
		run := 1
		large := segs[done] != 0
		for done+run < len(frames) && (segs[done+run] != 0) == large {
			run++
		}
		var n int
		var err error
		if large {
			n, err = q.sendLarge(frames[done:done+run], segs[done:done+run])
		} else {
			n, err = q.Send(frames[done : done+run])
		}
		done += n
		if err != nil || n < run {
			return done, err
		}
	}
	return done, nil
}

// sendLarge sends frames on the packet socket.
func (q *Queue) sendLarge(frames [][]byte, segs []uint16) (int, error) {
	if q.seg == nil {
		return 0, fmt.Errorf("queue %d: %w", q.id, ErrNoSegmentTx)
	}
	r, err := q.seg.Send(frames, segs)
	if r.Sent > 0 {
		q.counters.TxFrames.Add(uint64(r.Sent))
		q.counters.TxBytes.Add(r.Bytes)
	}
	if r.Segmented > 0 {
		q.counters.TxSegmented.Add(uint64(r.Segmented))
	}
	if r.Dropped > 0 {
		q.counters.TxDropped.Add(uint64(r.Dropped))
	}
	if r.Bad > 0 {
		q.counters.TxErrors.Add(uint64(r.Bad))
	}
	return r.Consumed, err
}
