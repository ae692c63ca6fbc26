package gotas

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"gotas/internal/impair"
)

// setHook installs testHookOpened for one test.
func setHook(t *testing.T, f func(listener bool)) {
	t.Helper()
	testHookOpened = f
	t.Cleanup(func() { testHookOpened = nil })
}

// A server that speaks first: its bytes can reach the dialer before Dial
// returns. They must be read, not lost to a Conn not yet registered.
func TestDialGetsDataThatArrivesBeforeItReturns(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7100")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from the server"))
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	// Hold Dial after its answer long enough for the greeting to arrive
	// and be dispatched.
	setHook(t, func(listener bool) {
		if !listener {
			time.Sleep(50 * time.Millisecond)
		}
	})
	c, err := b.Dial("tcp", "10.9.0.1:7100")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("hello from the server"))
	if err != nil || string(buf[:n]) != "hello from the server" {
		t.Fatalf("read %q, %v; want the server's greeting", buf[:n], err)
	}
}

// A connection accepted right after the listener opened, before Listen
// returned, must be in the backlog, not reset.
func TestListenKeepsConnectionsAcceptedBeforeItReturns(t *testing.T) {
	a, b := pair(t, impair.Config{})
	dialed := make(chan net.Conn, 1)
	setHook(t, func(listener bool) {
		if !listener {
			return
		}
		// The listener is open in the stack: a client can connect now.
		c, err := b.Dial("tcp", "10.9.0.1:7101")
		if err != nil {
			t.Errorf("dial during Listen: %v", err)
			close(dialed)
			return
		}
		time.Sleep(50 * time.Millisecond) // the accept is dispatched
		dialed <- c
	})
	ln, err := a.Listen("tcp", ":7101")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	testHookOpened = nil
	cc := <-dialed
	if cc == nil {
		t.FailNow()
	}
	defer cc.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- c
		}
	}()
	var sc net.Conn
	select {
	case sc = <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("the connection made while Listen returned was never accepted")
	}
	defer sc.Close()
	if _, err := cc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("accepted connection read %q, %v", buf, err)
	}
}

// A connection reset with bytes still unread must never hand out bytes
// from its RX ring after the ring went back to the stack, where the next
// connection reuses it.
func TestResetConnDoesNotReadAReusedRing(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7102")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 16 << 10
	fill := func(c byte) []byte { return bytes.Repeat([]byte{c}, size) }
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// Connection A: the server sends size bytes of 'A' that the client
	// leaves unread, then resets (closing with unread data of its own).
	ca, err := b.Dial("tcp", "10.9.0.1:7102")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	sa := <-accepted
	if _, err := ca.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Write(fill('A')); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A's data to arrive", func() bool { return buffered(b, ca) == size })
	time.Sleep(20 * time.Millisecond) // "unread" has reached the server
	sa.Close()                        // RST
	waitFor(t, "A's reset", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return ca.(*Conn).err != nil
	})
	// Connection B gets a ring, very likely A's, and fills it with 'B'.
	cb, err := b.Dial("tcp", "10.9.0.1:7102")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	sb := <-accepted
	defer sb.Close()
	if _, err := sb.Write(fill('B')); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B's data to arrive", func() bool { return buffered(b, cb) == size })

	ca.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(ca)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("A's read ended with %v, want ECONNRESET", err)
	}
	if i := bytes.IndexFunc(got, func(r rune) bool { return r != 'A' }); i >= 0 {
		t.Fatalf("A read %q at offset %d of %d bytes: bytes that are not A's", got[i:min(i+8, len(got))], i, len(got))
	}
	cb.SetReadDeadline(time.Now().Add(3 * time.Second))
	gb := make([]byte, size)
	if _, err := io.ReadFull(cb, gb); err != nil || !bytes.Equal(gb, fill('B')) {
		t.Fatalf("B read %d bytes, %v, or wrong bytes", len(gb), err)
	}
}

// buffered is how many received bytes c holds unread.
func buffered(s *Stack, c net.Conn) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	cc := c.(*Conn)
	for _, d := range cc.rx[cc.rxHead:] {
		n += len(d)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// SetNoDelay(false) asks for Nagle (appif.CmdNagle on the flow's
// commands, tested in appif); the connection keeps working either way,
// and a closed Conn reports net.ErrClosed as *net.TCPConn does.
func TestSetNoDelay(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7103")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	nc, err := b.Dial("tcp", "10.9.0.1:7103")
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*Conn)
	for _, noDelay := range []bool{false, false, true, false} {
		if err := c.SetNoDelay(noDelay); err != nil {
			t.Fatalf("SetNoDelay(%v): %v", noDelay, err)
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo with SetNoDelay(%v): %q, %v", noDelay, buf, err)
		}
	}
	c.Close()
	if err := c.SetNoDelay(true); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetNoDelay on a closed Conn: %v", err)
	}
}

// Many dials to a server that speaks first, without any hook: every
// greeting is read (4 of ~130 used to hang).
func TestManyServerSpeaksFirstDials(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7104")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Write([]byte("220 ready\r\n"))
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	buf := make([]byte, 11)
	for i := range 150 {
		c, err := b.Dial("tcp", "10.9.0.1:7104")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "220 ready\r\n" {
			t.Fatalf("dial %d: greeting %q, %v", i, buf, err)
		}
		c.Close()
	}
}

// Bytes a peer sent and the stack acknowledged before the peer reset the
// connection are still read, then ECONNRESET, even when the poller sees
// the reset before their data event (the two come on different queues:
// the slow path's and the core's). The client's poller is held off while
// both arrive, which is the order that used to lose the data.
func TestResetAfterDataKeepsTheData(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7103")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7103")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	if _, err := c.Write([]byte("unread")); err != nil { // so the server's Close resets
		t.Fatal(err)
	}
	waitFor(t, "the server to receive", func() bool { return buffered(a, sc) == 6 })
	const size = 8 << 10
	rxBefore := b.Engine().EngineStats(0).RxBytes
	b.mu.Lock()
	if _, err := sc.Write(bytes.Repeat([]byte{'A'}, size)); err != nil {
		b.mu.Unlock()
		t.Fatal(err)
	}
	for b.Engine().EngineStats(0).RxBytes < rxBefore+size { // placed and acknowledged
		time.Sleep(time.Millisecond)
	}
	sc.Close() // RST
	time.Sleep(20 * time.Millisecond)
	b.mu.Unlock()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read ended with %v, want ECONNRESET", err)
	}
	if len(got) != size {
		t.Fatalf("read %d of the %d acknowledged bytes before the reset", len(got), size)
	}
}

// A Kick whose iterations receive more frames than one dispatch takes (64
// events) dispatches them all, or wakes the driver for the rest: the
// driver is parked and the Kick's Recv ate its NIC wakeup, so anything
// left would wait for the driver's 100 ms timeout (found in review).
func TestKickDispatchesEverything(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7300")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 300
	srv := make([]*Conn, 0, n)
	cli := make([]*Conn, 0, n)
	for range n {
		c, err := b.Dial("tcp", "10.9.0.1:7300")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cli = append(cli, c.(*Conn))
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		srv = append(srv, s.(*Conn))
	}
	dispatched := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		k := 0
		for _, c := range cli {
			if c.unread() {
				k++
			}
		}
		return k
	}
	stalls := 0
	for round := range 5 {
		time.Sleep(30 * time.Millisecond) // both drivers park
		a.mu.Lock()
		for _, s := range srv {
			if _, err := a.ctx.Send(s.h, []byte{'x'}); err != nil {
				t.Fatal(err)
			}
		}
		a.unlock() // one Kick on a: the 300 segments leave at once
		b.mu.Lock()
		b.unlock() // a Kick on b, as any Write or Read would do
		time.Sleep(50 * time.Millisecond)
		got := dispatched()
		if got < n {
			stalls++
			t.Logf("round %d: 50 ms later %d of %d connections have their byte dispatched", round, got, n)
		}
		waitFor(t, "every byte", func() bool { return dispatched() == n })
		b.mu.Lock() // read it all, for the next round

		for _, c := range cli {
			c.rx, c.rxHead = c.rx[:0], 0
			b.ctx.RxDone(c.h, 1)
		}
		b.unlock()
	}
	if stalls > 0 {
		t.Errorf("%d of 5 rounds left events undispatched for 50 ms", stalls)
	}
}
