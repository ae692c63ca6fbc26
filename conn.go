package gotas

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"gotas/internal/appif"
)

// Listener accepts connections on a port. It implements net.Listener.
type Listener struct {
	s    *Stack
	h    appif.Handle
	addr netip.AddrPort

	// Guarded by s.mu.
	backlog []*Conn
	err     error
	ready   chan struct{}
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.s.mu.Lock()
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			l.backlog = l.backlog[1:]
			l.s.mu.Unlock()
			return c, nil
		}
		err := l.err
		l.s.mu.Unlock()
		if err != nil {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
		}
		<-l.ready
	}
}

// fail ends the listener; s.mu is held.
func (l *Listener) fail(err error) {
	if l.err == nil {
		l.err = err
	}
	notify(l.ready)
}

// Close stops listening; connections already accepted stay open, those
// still in the backlog are closed.
func (l *Listener) Close() error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	l.closeLocked()
	return nil
}

// closeLocked is Close with s.mu held.
func (l *Listener) closeLocked() {
	s := l.s
	if l.err != nil {
		return
	}
	l.fail(net.ErrClosed)
	delete(s.listeners, l.h)
	for _, c := range l.backlog {
		c.closeLocked()
	}
	l.backlog = nil
	s.closeHandle(l.h, true)
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return tcpAddr(l.addr) }

// Conn is a TCP connection on a gotas stack. It implements net.Conn and
// CloseWrite, like *net.TCPConn.
type Conn struct {
	s             *Stack
	h             appif.Handle
	local, remote netip.AddrPort

	readMu, writeMu sync.Mutex // one reader and one writer at a time

	// Guarded by s.mu.
	rx            [][]byte // rx[rxHead:]: received bytes not yet read, views into the RX ring
	rxHead        int
	gone          bool // released to the stack: rx holds private copies, the ring is not ours
	rxEOF         bool
	txFinAcked    bool
	err           error // set once the connection is dead
	closed        bool
	writeShut     bool
	readDeadline  time.Time
	writeDeadline time.Time

	rxReady, txReady chan struct{}

	// Deadline timers, made on first use and reused (under readMu and
	// writeMu), so that a Read or Write with a deadline does not allocate.
	rdTimer, wrTimer *time.Timer
}

var _ net.Conn = (*Conn)(nil)

// fail marks the connection dead with err; s.mu is held.
func (c *Conn) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	notify(c.rxReady)
	notify(c.txReady)
}

func (c *Conn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(pick(op == "read", "read", "write"), errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: tcpAddr(c.local), Addr: tcpAddr(c.remote), Err: err}
}

// wait blocks until ch is signalled or the deadline passes; *t is the
// caller's timer, made on first use.
func wait(ch chan struct{}, deadline time.Time, t **time.Timer) error {
	if deadline.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d) // Go >= 1.23 timers: no stale tick survives Stop or Reset
	}
	select {
	case <-ch:
		(*t).Stop()
		return nil
	case <-(*t).C:
		return os.ErrDeadlineExceeded
	}
}

// unread reports whether received bytes wait to be read; s.mu is held.
func (c *Conn) unread() bool { return c.rxHead < len(c.rx) }

// Read reads received bytes, blocking until some arrive, the peer closes
// its side (io.EOF), the connection fails, or the read deadline passes.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	s := c.s
	for {
		s.mu.Lock()
		if c.closed {
			s.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.unread() {
			n := 0
			for n < len(p) && c.unread() {
				d := c.rx[c.rxHead]
				k := copy(p[n:], d)
				n += k
				if k == len(d) {
					c.rx[c.rxHead] = nil
					c.rxHead++
				} else {
					c.rx[c.rxHead] = d[k:]
				}
			}
			switch {
			case !c.unread(): // reuse the array from its start
				c.rx, c.rxHead = c.rx[:0], 0
			case c.rxHead >= 32: // a reader that never drains: move the rest down
				k := copy(c.rx, c.rx[c.rxHead:])
				clear(c.rx[k:])
				c.rx, c.rxHead = c.rx[:k], 0
			}
			var err error
			if !c.gone { // after release the bytes are copies: nothing to return
				err = s.ctx.RxDone(c.h, n)
			}
			s.unlock()
			if err != nil {
				return n, c.opErr("read", err)
			}
			return n, nil
		}
		if c.err != nil {
			err := c.err
			s.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		if c.rxEOF {
			s.mu.Unlock()
			return 0, io.EOF
		}
		deadline := c.readDeadline
		s.mu.Unlock()
		if err := wait(c.rxReady, deadline, &c.rdTimer); err != nil {
			return 0, c.opErr("read", err)
		}
	}
}

// Write sends p, blocking while the send buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	s := c.s
	written := 0
	for {
		s.mu.Lock()
		switch {
		case c.closed:
			s.mu.Unlock()
			return written, c.opErr("write", net.ErrClosed)
		case c.err != nil:
			err := c.err
			s.mu.Unlock()
			return written, c.opErr("write", err)
		case c.writeShut:
			s.mu.Unlock()
			return written, c.opErr("write", syscall.EPIPE)
		}
		n, err := s.ctx.Send(c.h, p[written:])
		written += n
		deadline := c.writeDeadline
		s.unlock()
		if err != nil && err != appif.ErrAgain {
			return written, c.opErr("write", err)
		}
		if written == len(p) {
			return written, nil
		}
		if n > 0 {
			continue
		}
		if err := wait(c.txReady, deadline, &c.wrTimer); err != nil {
			return written, c.opErr("write", err)
		}
	}
}

// CloseWrite sends FIN: the peer reads EOF, and this side can still read.
func (c *Conn) CloseWrite() error {
	s := c.s
	s.mu.Lock()
	defer s.unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	if c.writeShut || c.err != nil {
		return nil
	}
	c.writeShut = true
	if err := s.ctx.Shutdown(c.h); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// Close closes the connection the way the Linux kernel closes an orphaned
// socket: data already written is still delivered, then FIN, and the
// connection is released once both FINs are acknowledged. If received data
// was left unread, or the peer keeps sending, it is reset instead.
func (c *Conn) Close() error {
	c.s.mu.Lock()
	defer c.s.unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.closeLocked()
	return nil
}

// lingerTimeout bounds how long a closed connection waits for the peer's
// FIN (Linux's tcp_fin_timeout default).
const lingerTimeout = 60 * time.Second

// closeLocked closes the application's side; s.mu is held.
func (c *Conn) closeLocked() {
	s := c.s
	unread := c.unread()
	c.closed = true
	c.rx, c.rxHead = nil, 0
	notify(c.rxReady)
	notify(c.txReady)
	if _, ok := s.conns[c.h]; !ok || s.closed {
		return
	}
	if unread || c.err != nil {
		c.release()
		return
	}
	if !c.writeShut {
		c.writeShut = true
		if s.ctx.Shutdown(c.h) != nil {
			c.release()
			return
		}
	}
	if c.finished() {
		return
	}
	time.AfterFunc(lingerTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conns[c.h] == c && !s.closed {
			c.release()
		}
	})
}

// finished releases a closed connection once both directions have ended
// with acknowledged FINs, and reports whether it did; s.mu is held.
func (c *Conn) finished() bool {
	if c.closed && c.rxEOF && c.txFinAcked {
		c.release()
		return true
	}
	return false
}

// release gives the connection back to the stack: gracefully if both FINs
// were exchanged, with a RST otherwise; s.mu is held. The stack frees the
// rings on Close and gives them to the next connection, so unread bytes
// are first copied out of the RX ring: from here on the Conn never
// touches the ring again.
func (c *Conn) release() {
	if c.gone {
		return
	}
	c.gone = true
	if c.unread() {
		n := 0
		for _, d := range c.rx[c.rxHead:] {
			n += len(d)
		}
		buf := make([]byte, 0, n)
		for _, d := range c.rx[c.rxHead:] {
			buf = append(buf, d...)
		}
		clear(c.rx)
		c.rx, c.rxHead = append(c.rx[:0], buf), 0
	}
	delete(c.s.conns, c.h)
	c.s.closeHandle(c.h, false)
}

// LocalAddr is the local address.
func (c *Conn) LocalAddr() net.Addr { return tcpAddr(c.local) }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return tcpAddr(c.remote) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline makes blocked and future Reads fail with
// os.ErrDeadlineExceeded after t; zero means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.s.mu.Lock()
	c.readDeadline = t
	c.s.mu.Unlock()
	notify(c.rxReady) // a blocked Read re-checks its deadline
	return nil
}

// SetWriteDeadline is SetReadDeadline for Writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.s.mu.Lock()
	c.writeDeadline = t
	c.s.mu.Unlock()
	notify(c.txReady)
	return nil
}

// SetNoDelay controls Nagle's algorithm, as on *net.TCPConn: true (the
// default) sends small segments at once; false asks the fast path to hold
// a small segment while earlier data is unacknowledged (appif.CmdNagle).
func (c *Conn) SetNoDelay(noDelay bool) error {
	s := c.s
	s.mu.Lock()
	defer s.unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	if c.gone || s.closed {
		return nil
	}
	if err := s.ctx.SetNagle(c.h, !noDelay); err != nil {
		return c.opErr("set", err)
	}
	return nil
}
