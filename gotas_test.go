package gotas

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
)

// pair makes two embedded stacks joined by an in-memory link.
func pair(t *testing.T, link impair.Config) (a, b *Stack) { return pairWith(t, link, Config{}) }

// pairWith is pair with bcfg (its Addr and Port set here) for stack b.
func pairWith(t *testing.T, link impair.Config, bcfg Config) (a, b *Stack) {
	t.Helper()
	pa, pb := memnic.Pair(link, link)
	var err error
	a, err = New(Config{Addr: netip.MustParsePrefix("10.9.0.1/24"), Port: pa})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	bcfg.Addr, bcfg.Port = netip.MustParsePrefix("10.9.0.2/24"), pb
	b, err = New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestConnEchoAndHalfClose(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // echo until EOF, then close
		c.Close()
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != "10.9.0.1:7000" || c.LocalAddr().(*net.TCPAddr).IP.String() != "10.9.0.2" {
		t.Fatalf("addresses %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	msg := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(msg)
	go func() {
		c.Write(msg)
		c.(*Conn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back after %d bytes: %v", len(got), err)
	}
	if sha256.Sum256(got) != sha256.Sum256(msg) {
		t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(msg))
	}
}

func TestDialClosedPortIsRefused(t *testing.T) {
	_, b := pair(t, impair.Config{})
	start := time.Now()
	_, err := b.Dial("tcp", "10.9.0.1:9")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want ECONNREFUSED", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v", d)
	}
}

func TestReadDeadline(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	// Writing still works after a read timeout.
	if _, err := c.Write([]byte("still alive")); err != nil {
		t.Fatal(err)
	}
}

func TestPeerResetSurfacesAsECONNRESET(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7002")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7002")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	// The server closes with data left unread, which resets the
	// connection (RFC 1122 4.2.2.13), as Linux does.
	c.Write([]byte("unread"))
	time.Sleep(50 * time.Millisecond)
	sc.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the peer reset: %v, want ECONNRESET", err)
	}
}

func TestDialContextGivesUpWhenTheContextEnds(t *testing.T) {
	_, b := pair(t, impair.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.DialContext(ctx, "tcp", "10.9.0.77:80") // nobody answers ARP
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial past its context: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

// The fast path paces a flow at the rate the slow path sets in its
// counters (congestion control will set it): a transfer cannot finish
// faster than its rate allows.
func TestPacingHoldsAFlowToItsRate(t *testing.T) {
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7003")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7003")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const kbps, size = 16000, 1 << 20 // 16 Mbit/s: 1 MiB takes 0.52 s
	b.Engine().FlowCounters(c.(*Conn).h.Index()).RateKbps.Store(kbps)
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.(*Conn).CloseWrite()
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("received %d bytes, sent %d", n, size)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("paced transfer did not finish")
	}
	want := time.Duration(float64(size*8) / (kbps * 1000) * float64(time.Second))
	if el := time.Since(start); el < want*9/10 {
		t.Fatalf("1 MiB at %d kbit/s took %v, less than the %v the rate allows: pacing is not enforced", kbps, el, want)
	}
}

// TestThreadedCoresEcho: with a thread per core (Config.Threads, the
// service's model) instead of inline, a request/response exchange of many
// small messages completes with every byte.
func TestThreadedCoresEcho(t *testing.T) {
	pa, pb := memnic.Pair(impair.Config{}, impair.Config{})
	mk := func(addr string, port *memnic.Port) *Stack {
		cfg := Config{Addr: netip.MustParsePrefix(addr), Port: port, Threads: true}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk("10.9.0.1/24", pa), mk("10.9.0.2/24", pb)
	c := echoConn(t, a, b, "7300")
	buf := make([]byte, 64)
	for i := range 2000 {
		msg := []byte(fmt.Sprintf("%064d", i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != string(msg) {
			t.Fatalf("message %d: %q, %v", i, buf, err)
		}
	}
}

// TestIdleRingsReleased: after an exchange of 200 KiB each way, both
// ends' idle rings give their pages back (TX by the application, RX by
// the core), and the connection carries on with every byte intact.
func TestIdleRingsReleased(t *testing.T) {
	old := txSweepInterval
	txSweepInterval = 20 * time.Millisecond
	defer func() { txSweepInterval = old }()
	a, b := pair(t, impair.Config{})
	c := echoConn(t, a, b, "7400")
	echo := func(n int) {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		go c.Write(msg)
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo of %d bytes: %v", n, err)
		}
	}
	echo(200 << 10)
	deadline := time.Now().Add(10 * time.Second)
	for a.RingBytesReleased() < 100<<10 || b.RingBytesReleased() < 100<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("released %d and %d bytes", a.RingBytesReleased(), b.RingBytesReleased())
		}
		time.Sleep(20 * time.Millisecond)
	}
	echo(100 << 10)
}

// A connection chooses its congestion control: const-rate at 16 Mbit/s
// (the stack's CCParams) holds a 1 MiB transfer to about 0.52 s, the
// default (reno) does not; an unknown name fails the dial.
func TestDialOptionsChoosesCongestionControl(t *testing.T) {
	var cfg Config
	cfg.Stack.CCParams.ConstBps = 16_000_000
	a, b := pairWith(t, impair.Config{}, cfg)
	ln, err := a.Listen("tcp", ":7004")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := b.DialOptions(context.Background(), "tcp", "10.9.0.1:7004", Options{CC: "cubic"}); err == nil {
		t.Fatal("dial with cc cubic succeeded")
	}
	send := func(o Options) time.Duration {
		go func() { // the server: read the stream to its end, then close
			if c, err := ln.Accept(); err == nil {
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
		c, err := b.DialOptions(context.Background(), "tcp", "10.9.0.1:7004", o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		c.(*Conn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, c) // the server's FIN: everything arrived
		return time.Since(start)
	}
	paced := send(Options{CC: "const-rate"})
	if paced < 470*time.Millisecond {
		t.Fatalf("const-rate 16 Mbit/s: 1 MiB in %v, want about 0.52 s", paced)
	}
	if d := send(Options{}); d > paced/2 {
		t.Fatalf("default (reno): 1 MiB in %v, want well under the paced %v", d, paced)
	}
}

// echoConn connects b to an echo server on a's port (a at 10.9.0.1), with
// a 20-second deadline; the connection closes with the test.
func echoConn(t *testing.T, a, b *Stack, port string) net.Conn {
	t.Helper()
	ln, err := a.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := b.Dial("tcp", "10.9.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}
