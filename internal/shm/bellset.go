package shm

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// BellSet lets one waiter sleep on many doorbells: its own, and one per
// application. Each application rings only doorbells of its own, so one
// that drains a doorbell (stealing the wakeup) or never rings it delays
// only itself, never the waiter's work for another application.
//
// The set is an epoll instance, itself pollable, so a waiter can sleep on
// it next to other descriptors (a NIC queue). Add, Remove and Drain belong
// to the waiter's goroutine: a doorbell removed there is never read again
// and may then be closed, so its fd number cannot be reused under a read.
type BellSet struct {
	epfd int
	own  *Doorbell
	evs  [bellBatch]unix.EpollEvent
	buf  [8]byte
}

// bellBatch is how many rung doorbells one epoll_wait collects; more wait
// for the next Drain, which the level-triggered epoll fd keeps readable.
const bellBatch = 64

// NewBellSet makes a set holding own, which the set does not take over.
func NewBellSet(own *Doorbell) (*BellSet, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shm: epoll_create1: %w", err)
	}
	s := &BellSet{epfd: fd, own: own}
	if err := s.Add(own); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// Own is the waiter's own doorbell.
func (s *BellSet) Own() *Doorbell { return s.own }

// Fd is readable while a doorbell of the set has been rung and not drained.
func (s *BellSet) Fd() int { return s.epfd }

// Add puts d in the set (level-triggered).
func (s *BellSet) Add(d *Doorbell) error { return s.add(d.Fd(), 0) }

// Watch adds a descriptor that is not a doorbell (a NIC queue): readable
// while it has input, it makes the set readable, and Drain leaves it
// alone.
func (s *BellSet) Watch(fd int) error { return s.add(fd, watchOnly) }

// watchOnly marks, in an event's spare word, a member Drain must not read.
const watchOnly = 1

func (s *BellSet) add(fd int, mark int32) error {
	return s.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, mark)
}

// WatchOnce is Watch for a descriptor that makes the set readable once
// per Rearm: a busy NIC queue then does not wake whoever polls the set
// (and, nested, every thread blocked in Go's netpoller) for each frame
// while its consumer is awake and polling it anyway.
func (s *BellSet) WatchOnce(fd int) error {
	return s.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLONESHOT, watchOnly)
}

// Rearm re-enables a WatchOnce descriptor; input already there makes the
// set readable at once, so none is missed.
func (s *BellSet) Rearm(fd int) error {
	return s.ctl(unix.EPOLL_CTL_MOD, fd, unix.EPOLLIN|unix.EPOLLONESHOT, watchOnly)
}

func (s *BellSet) ctl(op, fd int, events uint32, mark int32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: mark}
	if err := unix.EpollCtl(s.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("shm: epoll_ctl %d on descriptor %d: %w", op, fd, err)
	}
	return nil
}

// Remove takes d out of the set; the caller may close d afterwards.
func (s *BellSet) Remove(d *Doorbell) error {
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, d.Fd(), nil); err != nil {
		return fmt.Errorf("shm: remove doorbell %d from set: %w", d.Fd(), err)
	}
	return nil
}

// Drain resets every rung doorbell and reports whether any was rung or a
// watched descriptor is readable.
func (s *BellSet) Drain() bool {
	rung := false
	for {
		n, err := unix.EpollWait(s.epfd, s.evs[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return rung
		}
		for i := range n {
			if s.evs[i].Pad == watchOnly {
				continue
			}
			for {
				_, err := unix.Read(int(s.evs[i].Fd), s.buf[:])
				if err != unix.EINTR {
					break
				}
			}
		}
		rung = true
		if n < bellBatch {
			return rung
		}
	}
}

// Wait blocks until a doorbell of the set rings or timeout passes (< 0:
// forever), then drains the set. Wakeups can be spurious: callers re-check
// their queues after every Wait.
func (s *BellSet) Wait(timeout time.Duration) (bool, error) {
	fds := [1]unix.PollFd{{Fd: int32(s.epfd), Events: unix.POLLIN}}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		var ts *unix.Timespec
		if timeout >= 0 {
			t := unix.NsecToTimespec(int64(max(time.Until(deadline), 0)))
			if timeout == 0 {
				t = unix.Timespec{}
			}
			ts = &t
		}
		n, err := unix.Ppoll(fds[:], ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("shm: poll doorbell set: %w", err)
		}
		if n == 0 {
			return false, nil
		}
		return s.Drain(), nil
	}
}

// Close closes the epoll instance (not the doorbells).
func (s *BellSet) Close() error {
	if s.epfd < 0 {
		return nil
	}
	err := unix.Close(s.epfd)
	s.epfd = -1
	return err
}
