package shm

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// MaxFds bounds how many fds one message may carry (the kernel's limit per
// SCM_RIGHTS message is 253).
const MaxFds = 64

// ErrFds reports a message whose fds violate the receiver's expectations
// (too many, truncated control data). All fds it carried have been closed.
var ErrFds = errors.New("shm: unexpected fds in message")

// Socketpair returns a connected AF_UNIX SOCK_SEQPACKET pair (close-on-exec).
// SEQPACKET keeps message boundaries, so each message and its fds arrive
// together and a short read cannot split a control message.
func Socketpair() (a, b int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("shm: socketpair: %w", err)
	}
	return fds[0], fds[1], nil
}

// SendFds sends msg (at least one byte: a zero-length SEQPACKET message is
// indistinguishable from EOF) with fds attached as one SCM_RIGHTS control
// message. The kernel duplicates the fds into the receiver; the caller keeps
// its own copies.
func SendFds(sock int, msg []byte, fds ...int) error {
	if len(msg) == 0 {
		return errors.New("shm: SendFds needs a non-empty message")
	}
	if len(fds) > MaxFds {
		return fmt.Errorf("shm: %d fds exceed MaxFds", len(fds))
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err := unix.Sendmsg(sock, msg, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("shm: sendmsg: %w", err)
		}
		return nil
	}
}

// RecvFds receives one message into buf and returns its length and the fds
// it carried (close-on-exec), accepting at most maxFds of them. A message
// with more fds than maxFds, truncated data or truncated control data is
// refused with an error wrapping ErrFds, and every fd that did arrive is
// closed so a peer cannot leak descriptors into us. io.EOF means the peer
// closed the socket.
func RecvFds(sock int, buf []byte, maxFds int) (n int, fds []int, err error) {
	maxFds = min(max(maxFds, 0), MaxFds)
	// Room for one extra fd so that "too many" is detectable even when the
	// cmsg rounding would not leave space for it.
	oob := make([]byte, unix.CmsgSpace((maxFds+1)*4))
	var oobn, flags int
	for {
		n, oobn, flags, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("shm: recvmsg: %w", err)
	}
	fds, perr := parseRights(oob[:oobn])
	switch {
	case perr != nil:
		err = fmt.Errorf("%w: %v", ErrFds, perr)
	case flags&unix.MSG_CTRUNC != 0:
		err = fmt.Errorf("%w: control data truncated (more than %d fds?)", ErrFds, maxFds)
	case len(fds) > maxFds:
		err = fmt.Errorf("%w: %d fds, accept at most %d", ErrFds, len(fds), maxFds)
	case flags&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("%w: message longer than %d bytes", ErrFds, len(buf))
	case n == 0 && len(fds) == 0:
		err = io.EOF
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return 0, nil, err
	}
	return n, fds, nil
}

// parseRights collects the fds of every SCM_RIGHTS message in oob. It keeps
// going after an error so that the caller can close everything that arrived.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	var firstErr error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			if firstErr == nil {
				firstErr = fmt.Errorf("unexpected control message %d/%d", m.Header.Level, m.Header.Type)
			}
			continue
		}
		f, err := unix.ParseUnixRights(&m)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		fds = append(fds, f...)
	}
	return fds, firstErr
}
