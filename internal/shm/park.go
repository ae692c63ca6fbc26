package shm

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parker waits for a descriptor (a doorbell, a doorbell set) by parking
// the goroutine in Go's netpoller instead of blocking its thread in
// poll(2). A parked goroutine holds no thread and no P: the goroutines it
// wakes run at once on the P that took the wakeup, with no futex handoff,
// and the thread that polls the network (an idle P's) is the one that
// would have run them anyway. On two vCPUs that is the difference between
// one runnable thread per request and three.
type Parker struct {
	f     *os.File
	rc    syscall.RawConn
	check func() bool
	ready bool
	onFn  func(uintptr) bool // p.on, bound once so Wait does not allocate
}

// NewParker makes a Parker for fd, which it duplicates (the caller keeps
// fd). check reports, without blocking, whether what the caller waits
// for is there (draining a doorbell, say); Wait parks until it does.
func NewParker(fd int, check func() bool) (*Parker, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: dup %d: %w", fd, err)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("shm: set non-blocking: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with the netpoller.
	f := os.NewFile(uintptr(nfd), "gotas-parker")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &Parker{f: f, rc: rc, check: check}
	p.onFn = p.on
	return p, nil
}

func (p *Parker) on(uintptr) bool {
	p.ready = p.check()
	return p.ready
}

// Wait returns once check reports true (true), or when timeout passes
// (false; timeout < 0 waits for ever). check runs first without waiting,
// so a ring that came before Wait is not lost.
func (p *Parker) Wait(timeout time.Duration) (bool, error) {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := p.f.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	p.ready = false
	err := p.rc.Read(p.onFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return p.ready, err
}

// Close releases the duplicate descriptor.
func (p *Parker) Close() error { return p.f.Close() }
