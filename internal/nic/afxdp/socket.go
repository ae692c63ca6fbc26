package afxdp

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotas/internal/nic"
	"gotas/internal/nic/pkttx"
)

// Queue is one AF_XDP socket (XSK) bound to one RX/TX queue of the device,
// with its own UMEM. It implements nic.Queue: one goroutine drives Recv and
// Send; Stats and XDPStats may be called from others. Close unmaps the
// rings and UMEM, so the driving goroutine must have stopped first.
type Queue struct {
	fd        int
	id        int
	zc        bool
	busyBinds int // EBUSY answers bind got before it succeeded
	umem      *umem

	fill, comp addrRing
	rx, tx     descRing

	held  []uint64 // chunks of the last Recv batch, refilled on the next Recv
	nheld int

	// sg: bound with XDP_USE_SG, so frames may span chunks; units are
	// the buffers Recv reassembles them in, nunits used by its last batch.
	sg     bool
	units  [][]byte
	nunits int
	free   []uint64 // TX chunks not in flight (a stack)
	nfree  int

	// seg, when set, sends the large frames (segtx.go), and with segAll
	// every frame.
	seg    *pkttx.Socket
	segAll bool

	counters nic.Counters
	closed   atomic.Bool
	mu       sync.Mutex // serialises Close against Stats' getsockopt
}

// queueConfig is what newQueue needs from Config, already defaulted.
type queueConfig struct {
	ifindex            int
	queue              int
	rxFrames, txFrames uint32 // also the ring sizes: powers of two
	zeroCopy           bool
	multiBuffer        bool // try XDP_USE_SG first
}

// bindRetry is how long bind keeps retrying EBUSY: the kernel tears a
// closed XSK down asynchronously, so a queue stays busy for some
// milliseconds after its previous owner (another port, a restarted
// daemon) closed it.
const bindRetry = time.Second

// newQueue creates, maps and binds one XSK.
func newQueue(c queueConfig) (q *Queue, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afxdp: socket: %w", err)
	}
	q = &Queue{fd: fd, id: c.queue}
	defer func() {
		if err != nil {
			q.release()
			q = nil
		}
	}()
	if q.umem, err = newUmem(c.rxFrames, c.txFrames); err != nil {
		return q, err
	}
	if err = q.umem.register(fd); err != nil {
		return q, err
	}
	// Fill and RX hold every RX chunk at most, completion and TX every TX
	// chunk, so refilling and reaping can never find their ring full.
	for _, o := range []struct {
		opt  int
		size uint32
	}{
		{unix.XDP_UMEM_FILL_RING, c.rxFrames},
		{unix.XDP_RX_RING, c.rxFrames},
		{unix.XDP_UMEM_COMPLETION_RING, c.txFrames},
		{unix.XDP_TX_RING, c.txFrames},
	} {
		if err = unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, int(o.size)); err != nil {
			return q, fmt.Errorf("afxdp: set ring size: %w", err)
		}
	}
	var off unix.XDPMmapOffsets
	if err = getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return q, fmt.Errorf("afxdp: XDP_MMAP_OFFSETS: %w", err)
	}
	if q.fill, err = newAddrRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, c.rxFrames, true); err != nil {
		return q, fmt.Errorf("afxdp: mmap fill ring: %w", err)
	}
	if q.comp, err = newAddrRing(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, c.txFrames, false); err != nil {
		return q, fmt.Errorf("afxdp: mmap completion ring: %w", err)
	}
	if q.rx, err = newDescRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, c.rxFrames, false); err != nil {
		return q, fmt.Errorf("afxdp: mmap RX ring: %w", err)
	}
	if q.tx, err = newDescRing(fd, unix.XDP_PGOFF_TX_RING, off.Tx, c.txFrames, true); err != nil {
		return q, fmt.Errorf("afxdp: mmap TX ring: %w", err)
	}

	// The kernel may deliver as soon as bind returns, so post every RX
	// chunk to the fill ring first.
	for i := range c.rxFrames {
		*q.fill.at(q.fill.local + i) = uint64(i) * frameSize
	}
	q.fill.submit(c.rxFrames)
	q.held = make([]uint64, c.rxFrames)
	q.free = make([]uint64, c.txFrames)
	for i := range c.txFrames {
		q.free[i] = uint64(c.rxFrames+i) * frameSize
	}
	q.nfree = int(c.txFrames)

	// Copy-mode TX sends at most XDP_MAX_TX_SKB_BUDGET (32) descriptors
	// per sendto; allow a whole ring so one kick drains a batch. Kernels
	// without the option keep 32 and Send loops on EAGAIN instead.
	_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, int(c.txFrames))

	if err = q.bind(c); err != nil {
		return q, err
	}
	if q.sg {
		q.units = make([][]byte, unitBufs)
		for i := range q.units {
			q.units[i] = make([]byte, 0, maxUnit)
		}
	}
	return q, nil
}

// bind binds the socket, trying zero-copy first if asked (veth and most
// virtual devices refuse it with EOPNOTSUPP; a refused bind leaves the
// socket reusable) and retrying EBUSY for up to bindRetry. With
// multiBuffer it tries XDP_USE_SG first and falls back without it where
// the kernel refuses it (EINVAL before Linux 6.6, EOPNOTSUPP from drivers
// without multi-buffer support).
func (q *Queue) bind(c queueConfig) error {
	modes := []uint16{unix.XDP_COPY}
	if c.zeroCopy {
		modes = []uint16{unix.XDP_ZEROCOPY, unix.XDP_COPY}
	}
	sgs := []uint16{0}
	if c.multiBuffer {
		sgs = []uint16{unix.XDP_USE_SG, 0}
	}
	var err error
	for _, sg := range sgs {
		for _, f := range modes {
			if err = q.bindRetry(c, f|sg|unix.XDP_USE_NEED_WAKEUP); err == nil {
				q.zc, q.sg = f == unix.XDP_ZEROCOPY, sg != 0
				return nil
			}
			if !errors.Is(err, unix.EOPNOTSUPP) && !(sg != 0 && errors.Is(err, unix.EINVAL)) {
				return fmt.Errorf("afxdp: bind to ifindex %d queue %d: %w", c.ifindex, c.queue, err)
			}
		}
	}
	return fmt.Errorf("afxdp: bind to ifindex %d queue %d: %w", c.ifindex, c.queue, err)
}

// bindRetry binds with flags, retrying EBUSY for up to bindRetry.
func (q *Queue) bindRetry(c queueConfig, flags uint16) error {
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(c.ifindex), QueueID: uint32(c.queue)}
	deadline := time.Now().Add(bindRetry)
	for {
		err := unix.Bind(q.fd, sa)
		if err != unix.EBUSY || time.Now().After(deadline) {
			return err
		}
		q.busyBinds++
		time.Sleep(5 * time.Millisecond)
	}
}

// release unmaps and closes whatever newQueue managed to set up.
func (q *Queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fd >= 0 {
		_ = unix.Close(q.fd)
		q.fd = -1
	}
	if q.seg != nil {
		_ = q.seg.Close()
		q.seg = nil
	}
	for _, r := range []*ring{&q.fill.ring, &q.comp.ring, &q.rx.ring, &q.tx.ring} {
		r.unmap()
	}
	if q.umem != nil {
		q.umem.free()
	}
}

// Close closes the socket and frees its memory. Frames returned by the
// last Recv become invalid.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	q.release()
	return nil
}

// MultiBuffer reports whether the socket is bound with XDP_USE_SG.
func (q *Queue) MultiBuffer() bool { return q.sg }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (q *Queue) ZeroCopy() bool { return q.zc }

// ID is the device queue the socket is bound to.
func (q *Queue) ID() int { return q.id }

// PollFD is the XSK descriptor; it polls readable when the RX ring holds
// frames.
func (q *Queue) PollFD() int { return q.fd }

// XDPStats reads the kernel's XDP_STATISTICS for the socket.
func (q *Queue) XDPStats() (unix.XDPStatistics, error) {
	var s unix.XDPStatistics
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fd < 0 {
		return s, nic.ErrClosed
	}
	err := getsockopt(q.fd, unix.XDP_STATISTICS, unsafe.Pointer(&s), unsafe.Sizeof(s))
	return s, err
}

// Stats returns the queue's counters with the kernel's drop counters
// folded in: frames lost before the RX ring (no fill chunk, oversize,
// RX ring full) count as RxDropped, TX descriptors the kernel refused as
// TxDropped, bad fill addresses as RxErrors.
func (q *Queue) Stats() nic.Stats {
	s := q.counters.Snapshot()
	if x, err := q.XDPStats(); err == nil {
		s.RxDropped += x.Rx_dropped + x.Rx_ring_full
		s.TxDropped += x.Tx_invalid_descs
		s.RxErrors += x.Rx_invalid_descs
	}
	return s
}
