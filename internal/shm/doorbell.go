package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Doorbell is an eventfd used to wake a consumer blocked waiting for work.
// Ringing adds 1 to the eventfd counter; waiting blocks until the counter is
// non-zero and then resets it, so rings that happen while nobody waits are
// coalesced into one wakeup and never lost. The fd is non-blocking: blocking
// happens only in poll, so Ring can never stall a producer. Ring may be
// called from any goroutine; Wait and Drain belong to the one waiter.
type Doorbell struct {
	fd  int
	buf [8]byte // Drain's read buffer, here so it does not escape per call
}

// NewDoorbell creates an eventfd with EFD_NONBLOCK|EFD_CLOEXEC.
func NewDoorbell() (*Doorbell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shm: eventfd: %w", err)
	}
	return &Doorbell{fd: fd}, nil
}

// DoorbellFromFd adopts an eventfd received from a peer and takes ownership
// of fd (closed on error too). It checks that fd really is an eventfd, so a
// hostile peer cannot make Ring write into, say, a pipe or a file, and makes
// it non-blocking (a peer may have created it blocking; O_NONBLOCK is shared
// with the peer's descriptor, which is fine since this ABI requires it).
func DoorbellFromFd(fd int) (*Doorbell, error) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || link != "anon_inode:[eventfd]" {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: fd %d is not an eventfd (%q, %v)", fd, link, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: set eventfd non-blocking: %w", err)
	}
	return &Doorbell{fd: fd}, nil
}

// Fd is the eventfd, to be sent to a peer. It stays owned by the Doorbell.
func (d *Doorbell) Fd() int { return d.fd }

// Close closes the eventfd.
func (d *Doorbell) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// one is the eventfd increment, in the host byte order the kernel expects.
var one = binary.NativeEndian.AppendUint64(nil, 1)

// Ring wakes the waiter. It never blocks: EAGAIN means the counter is at its
// maximum, so the waiter is going to wake up anyway.
func (d *Doorbell) Ring() error {
	for {
		_, err := unix.Write(d.fd, one)
		switch err {
		case nil, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("shm: ring doorbell: %w", err)
	}
}

// Drain resets the counter and reports whether the doorbell had been rung.
func (d *Doorbell) Drain() (bool, error) {
	for {
		_, err := unix.Read(d.fd, d.buf[:])
		switch err {
		case nil:
			return true, nil
		case unix.EAGAIN:
			return false, nil
		case unix.EINTR:
			continue
		}
		return false, fmt.Errorf("shm: drain doorbell: %w", err)
	}
}

// Wait blocks until the doorbell rings or timeout passes (timeout < 0 waits
// forever, 0 only checks), then drains it. It reports whether it was rung.
// Wakeups can be spurious (a ring left over from an earlier round), so
// callers re-check their queues after every Wait.
func (d *Doorbell) Wait(timeout time.Duration) (bool, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	fds := [1]unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	for {
		var ts *unix.Timespec
		if timeout >= 0 {
			left := time.Duration(0)
			if timeout > 0 {
				left = max(time.Until(deadline), 0)
			}
			t := unix.NsecToTimespec(int64(left))
			ts = &t
		}
		n, err := unix.Ppoll(fds[:], ts, nil)
		if err == unix.EINTR {
			// Go's preemption signals interrupt poll; poll is not
			// restarted by SA_RESTART.
			continue
		}
		if err != nil {
			return false, fmt.Errorf("shm: poll doorbell: %w", err)
		}
		if n == 0 {
			return false, nil
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return false, errors.New("shm: poll doorbell: fd error")
		}
		rung, err := d.Drain()
		if err != nil || rung {
			return rung, err
		}
		// Someone else drained it between poll and read: keep waiting.
		if timeout == 0 || (timeout > 0 && time.Now().After(deadline)) {
			return false, nil
		}
	}
}
