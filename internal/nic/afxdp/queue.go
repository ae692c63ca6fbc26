package afxdp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"gotas/internal/nic"
)

// chunkMask turns a descriptor address (chunk + headroom offset) back into
// its chunk address.
const chunkMask = ^uint64(frameSize - 1)

// kickTries bounds the sendto retries of one Send. EAGAIN means the kernel
// stopped early (TX budget spent, or the device pushed back); what is left
// on the TX ring goes out with the next kick.
const kickTries = 16

// Recv implements nic.Queue. The frames are views into the UMEM; their
// chunks go back to the fill ring on the next Recv.
func (q *Queue) Recv(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	if q.nheld > 0 {
		// The fill ring is as large as the RX chunk count, so it always
		// has room for every chunk the caller held.
		for i, a := range q.held[:q.nheld] {
			*q.fill.at(q.fill.local + uint32(i)) = a
		}
		q.fill.submit(uint32(q.nheld))
		q.nheld = 0
	}
	want := uint32(min(len(frames), len(q.held)))
	if q.sg {
		// A batch may end inside a multi-buffer packet: look at all.
		want = q.rx.size
	}
	n := q.rx.avail(want)
	if n == 0 {
		// Only zero-copy drivers ever ask for this; copy mode never sets
		// the fill ring's flag.
		if q.fill.needWakeup() {
			_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		return 0, nil
	}
	if q.sg {
		q.nunits = 0
		return q.recvSG(frames, n), nil
	}
	mem := q.umem.mem
	var bytes uint64
	for i := range n {
		d := q.rx.at(q.rx.local + i)
		end := d.Addr + uint64(d.Len)
		frames[i] = mem[d.Addr:end:end]
		q.held[i] = d.Addr & chunkMask
		bytes += uint64(d.Len)
	}
	q.rx.release(n)
	q.nheld = int(n)
	q.counters.RxFrames.Add(uint64(n))
	q.counters.RxBytes.Add(bytes)
	return int(n), nil
}

// Send implements nic.Queue: it copies frames into free TX chunks, posts
// them and kicks the kernel, which copy mode needs after every batch.
func (q *Queue) Send(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	q.reap()
	slots := q.tx.free(uint32(min(len(frames), q.nfree)))
	mem := q.umem.mem
	var posted uint32
	var bytes, bad uint64
	n := 0
	for ; n < len(frames); n++ {
		f := frames[n]
		if len(f) == 0 || len(f) > nic.MaxFrame {
			bad++
			continue
		}
		if posted == slots {
			break
		}
		q.nfree--
		addr := q.free[q.nfree] + txOffset
		copy(mem[addr:], f)
		*q.tx.at(q.tx.local + posted) = unix.XDPDesc{Addr: addr, Len: uint32(len(f))}
		posted++
		bytes += uint64(len(f))
	}
	var err error
	if posted > 0 || n < len(frames) {
		// Kick also when blocked on a full ring: descriptors a previous
		// kick left behind must drain for completions to come back.
		q.tx.submit(posted)
		err = q.kick()
	}
	if posted > 0 {
		q.counters.TxFrames.Add(uint64(posted))
		q.counters.TxBytes.Add(bytes)
	}
	if bad > 0 {
		q.counters.TxErrors.Add(bad)
	}
	return n, err
}

// kick asks the kernel to transmit the TX ring (sendto with no data).
func (q *Queue) kick() error {
	if !q.tx.needWakeup() {
		return nil
	}
	for range kickTries {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
			q.reap()
		default:
			return fmt.Errorf("afxdp: sendto on queue %d: %w", q.id, e)
		}
	}
	return nil
}

// reap moves completed TX chunks back to the free list. The completion
// ring is as large as the TX chunk count, so it never overflows either.
func (q *Queue) reap() {
	n := q.comp.avail(q.comp.size)
	for i := range n {
		q.free[q.nfree] = *q.comp.at(q.comp.local + i) & chunkMask
		q.nfree++
	}
	if n > 0 {
		q.comp.release(n)
	}
}
