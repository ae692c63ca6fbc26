package interop

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"gotas"
	"gotas/internal/slowpath"
	"gotas/internal/testnet"
)

const (
	gotasIP = "10.220.0.1"
	linuxIP = "10.220.0.2"
	// linuxSvcIP is a Linux-owned address on the service host's
	// interface, for reference transfers beside gotas.
	linuxSvcIP = "10.220.0.3"
)

// topo is gotas on AF_XDP on one end of a veth and the Linux kernel on the
// other, each in its own namespace.
type topo struct {
	lab   *testnet.Lab
	svc   *testnet.Host // where gotas's interface lives
	peer  *testnet.Host // the Linux host
	stack *gotas.Stack
}

type topoOpt func(*gotas.Config)

func newTopo(t *testing.T, opts ...topoOpt) *topo {
	t.Helper()
	lab := testnet.NewT(t)
	tp := &topo{lab: lab}
	var err error
	if tp.svc, err = lab.Host("svc"); err != nil {
		t.Fatal(err)
	}
	if tp.peer, err = lab.Host("peer"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(tp.svc, "s0", tp.peer, "p0"); err != nil {
		t.Fatal(err)
	}
	if err := tp.peer.Addr("p0", linuxIP+"/24"); err != nil {
		t.Fatal(err)
	}
	tp.startGotas(t, "afxdp:s0", opts...)
	return tp
}

func (tp *topo) startGotas(t *testing.T, nic string, opts ...topoOpt) {
	t.Helper()
	cfg := gotas.Config{Addr: netip.MustParsePrefix(gotasIP + "/24"), NIC: nic}
	cfg.Stack.MSL = 100 * time.Millisecond // TIME_WAIT must not outlive a test
	for _, o := range opts {
		o(&cfg)
	}
	err := tp.svc.Do(func() (err error) {
		tp.stack, err = gotas.New(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("gotas.New: %v", err)
	}
	t.Cleanup(func() { tp.stack.Close() })
}

func withStack(f func(*slowpath.Config)) topoOpt {
	return func(c *gotas.Config) { f(&c.Stack) }
}

// sysctl sets a kernel setting inside the Linux peer's namespace.
func (tp *topo) sysctl(t *testing.T, key, value string) {
	t.Helper()
	if _, err := tp.peer.Run(t.Context(), "sysctl", "-qw", key+"="+value); err != nil {
		t.Fatal(err)
	}
}

// linuxListen listens in the Linux namespace.
func (tp *topo) linuxListen(t *testing.T, port string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := tp.peer.Do(func() (err error) { ln, err = net.Listen("tcp4", linuxIP+":"+port); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// linuxDial connects from the Linux namespace.
func (tp *topo) linuxDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := tp.linuxDialErr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (tp *topo) linuxDialErr(addr string) (c net.Conn, err error) {
	err = tp.peer.Do(func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return })
	return
}

func (tp *topo) gotasListen(t *testing.T, port string) net.Listener {
	t.Helper()
	ln, err := tp.stack.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// linuxToGotas opens a connection from the Linux host to a gotas listener
// on port and returns both ends.
func (tp *topo) linuxToGotas(t *testing.T, port string) (linux, gts net.Conn) {
	t.Helper()
	ln := tp.gotasListen(t, port)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	linux = tp.linuxDial(t, gotasIP+":"+port)
	t.Cleanup(func() { linux.Close() })
	select {
	case gts = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("gotas did not accept the connection")
	}
	t.Cleanup(func() { gts.Close() })
	return linux, gts
}

func (tp *topo) gotasDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := tp.stack.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed; scripts/setup.sh installs it", name)
	}
}

// stream is a deterministic pseudo-random byte source of n bytes.
func stream(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

func sum(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, n, err
}

func expectSum(seed uint64, n int64) [32]byte {
	s, _, _ := sum(stream(seed, n))
	return s
}

// transfer sends n pseudo-random bytes from w's side and checks what r's
// side receives: sender writes then half-closes, receiver reads to EOF.
func transfer(t *testing.T, from, to net.Conn, seed uint64, n int64, timeout time.Duration) {
	t.Helper()
	to.SetReadDeadline(time.Now().Add(timeout))
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(from, stream(seed, n))
		if err == nil {
			err = from.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	start := time.Now()
	got, m, err := sum(to)
	if err != nil {
		t.Fatalf("receiving after %d of %d bytes: %v", m, n, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if m != n || got != expectSum(seed, n) {
		t.Fatalf("received %d bytes with sha256 %x, sent %d with %x", m, got[:8], n, expectSum(seed, n))
	}
	el := time.Since(start)
	t.Logf("%d MiB in %v: %.2f Gbit/s", n>>20, el.Round(time.Millisecond), float64(n)*8/el.Seconds()/1e9)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// echoAll echoes every connection ln accepts until it is closed.
func echoAll(ln net.Listener) { acceptEach(ln, func(c net.Conn) { io.Copy(c, c) }) }

// acceptEach runs handle on its own goroutine for every connection ln
// accepts, and closes the connection after it, until ln is closed.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
