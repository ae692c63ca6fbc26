package ctlsock

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
	"gotas/internal/slowpath"
)

func newServer(t *testing.T) (*Server, *slowpath.Stack, *slowpath.Stack) {
	t.Helper()
	pa, pb := memnic.Pair(impair.Config{}, impair.Config{})
	cfg := func(p string) slowpath.Config {
		return slowpath.Config{Prefix: netip.MustParsePrefix(p), MaxFlows: 64, RegionSize: 64 << 20}
	}
	a, err := slowpath.NewStack(pa, cfg("10.9.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := slowpath.NewStack(pb, cfg("10.9.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	b.Start()
	srv, err := Listen(filepath.Join(t.TempDir(), "tas.sock"), a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		a.Stop()
		b.Stop()
		pa.Close()
		pb.Close()
	})
	return srv, a, b
}

// waitEvent polls ctx until an event of type typ arrives.
func waitEvent(t *testing.T, ctx *appif.Context, typ appif.EventType) appif.Event {
	t.Helper()
	evs := make([]appif.Event, 16)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := ctx.Poll(evs)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs[:n] {
			if e.Type == typ {
				return e
			}
			if e.Type == appif.EvData {
				ctx.RxDone(e.Conn, e.N)
			}
		}
		ctx.Wait(time.Millisecond)
	}
	t.Fatalf("no event %d", typ)
	return appif.Event{}
}

// TestRegisterServeAndCleanupOnClose: a client registers over the control
// socket, gets a context in its own region, listens and accepts a
// connection from the peer stack; when its connection closes (as when
// the process dies) the service frees its flows, listener and memory.
func TestRegisterServeAndCleanupOnClose(t *testing.T) {
	srv, a, b := newServer(t)
	cl, err := Dial(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if w := cl.Welcome(); w.Cores != 1 || w.Addr != a.Addr() || w.RegionSize == 0 {
		t.Fatalf("welcome %+v", w)
	}
	ctx, err := cl.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	ctx.Listen(7, 4)
	waitEvent(t, ctx, appif.EvListenOpened)
	peer, _ := b.NewContext()
	peer.Connect(netip.AddrPortFrom(a.Addr(), 7))
	acc := waitEvent(t, ctx, appif.EvAccepted)
	opened := waitEvent(t, peer, appif.EvConnOpened)
	if opened.Err != 0 {
		t.Fatal(opened.Err)
	}
	peer.Send(opened.Conn, []byte("hello"))
	if ev := waitEvent(t, ctx, appif.EvData); ev.Conn != acc.Conn || string(ev.Data[0]) != "hello" {
		t.Fatalf("data %q on %v", ev.Data[0], ev.Conn)
	}
	apps := srv.Apps()
	if len(apps) != 1 || apps[0].Contexts != 1 || apps[0].Pid == 0 {
		t.Fatalf("apps %+v", apps)
	}
	app := apps[0].App
	start := time.Now()
	cl.Close()
	select {
	case <-app.Freed():
	case <-time.After(time.Second):
		t.Fatal("application not freed within a second of its connection closing")
	}
	if ev := waitEvent(t, peer, appif.EvClosed); ev.Err == 0 {
		t.Fatal("peer connection not reset")
	}
	t.Logf("freed %v after close", time.Since(start))
	if r := a.Resources(); r.Flows != 0 || r.Ports != 0 {
		t.Fatalf("left behind: %+v", r)
	}
}

// TestVersionMismatchIsRefusedWithAMessage: a client of another ABI
// version gets a Refused message that says which versions, and the
// socket is closed.
func TestVersionMismatchIsRefusedWithAMessage(t *testing.T) {
	srv, _, _ := newServer(t)
	c, err := net.Dial("unixpacket", srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hello [helloLen]byte
	putHeader(hello[:], typeHello)
	binary.LittleEndian.PutUint16(hello[offVersion:], Version+1)
	c.Write(hello[:])
	buf := make([]byte, maxMsg)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	typ, _, _ := header(buf[:n])
	rerr := refusal(buf[:n])
	if typ != typeRefused || !errors.Is(rerr, ErrVersion) || !strings.Contains(rerr.Error(), "version 2") {
		t.Fatalf("reply type %d: %v", typ, rerr)
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("socket still open after the refusal")
	}
	if srv.Refused() != 1 || len(srv.Apps()) != 0 {
		t.Fatalf("refused %d, apps %d", srv.Refused(), len(srv.Apps()))
	}
}

// TestGarbageHelloIsRefused: random bytes as the first message.
func TestGarbageHelloIsRefused(t *testing.T) {
	srv, _, _ := newServer(t)
	for _, msg := range [][]byte{{1}, make([]byte, 300), []byte("GTAS\x01\x00\x04\x00")} {
		c, err := net.Dial("unixpacket", srv.Path())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(msg)
		buf := make([]byte, maxMsg)
		n, _ := c.Read(buf)
		if typ, _, _ := header(buf[:n]); typ != typeRefused {
			t.Fatalf("hello %q: reply type %d", msg, typ)
		}
		c.Close()
	}
	if len(srv.Apps()) != 0 {
		t.Fatal("a garbage hello registered an application")
	}
}

// TestServiceGone: when the service closes, the client learns it, and
// the peers of its applications' connections get a reset before Close
// returns.
func TestServiceGone(t *testing.T) {
	srv, a, b := newServer(t)
	cl, err := Dial(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, err := cl.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	ctx.Listen(9, 4)
	waitEvent(t, ctx, appif.EvListenOpened)
	peer, _ := b.NewContext()
	peer.Connect(netip.AddrPortFrom(a.Addr(), 9))
	if ev := waitEvent(t, peer, appif.EvConnOpened); ev.Err != 0 {
		t.Fatal(ev.Err)
	}
	srv.Close()
	if ev := waitEvent(t, peer, appif.EvClosed); ev.Err == 0 {
		t.Fatal("peer not reset")
	}
	select {
	case <-cl.Gone():
	case <-time.After(time.Second):
		t.Fatal("client did not learn the service closed")
	}
	if _, err := cl.NewContext(); !errors.Is(err, ErrServiceGone) {
		t.Fatalf("NewContext after the service went: %v", err)
	}
}

// TestUIDNotAllowedIsRefused: with AllowUIDs set, an application of
// another user is refused with EACCES, saying why.
func TestUIDNotAllowedIsRefused(t *testing.T) {
	srv, a, _ := newServer(t)
	other, err := Listen(filepath.Join(t.TempDir(), "only.sock"), a, Options{AllowUIDs: []uint32{uint32(os.Getuid()) + 12345}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Dial(other.Path()); !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "may not register") {
		t.Fatalf("Dial as a user not allowed: %v", err)
	}
	cl, err := Dial(srv.Path()) // no list: anyone
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}
