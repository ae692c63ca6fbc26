package gotas

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gotas/internal/ctlsock"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
)

// servicePair is a stack serving a control socket (as tas does) and an
// embedded peer stack, joined by an in-memory link.
func servicePair(t *testing.T) (socket string, srv *ctlsock.Server, svc, peer *Stack) {
	t.Helper()
	pa, pb := memnic.Pair(impair.Config{}, impair.Config{})
	svc, err := New(Config{Addr: netip.MustParsePrefix("10.9.0.1/24"), Port: pa})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if peer, err = New(Config{Addr: netip.MustParsePrefix("10.9.0.2/24"), Port: pb}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	socket = filepath.Join(t.TempDir(), "tas.sock")
	if srv, err = ctlsock.Listen(socket, svc.Engine(), ctlsock.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return socket, srv, svc, peer
}

// TestServiceClientSameAPI: the same code runs on the service through
// Config.Service as embedded: a listener, a Dialer, echo, CloseWrite;
// when the service goes, connections fail with ErrServiceGone, which also
// matches ECONNRESET.
func TestServiceClientSameAPI(t *testing.T) {
	socket, srv, _, peer := servicePair(t)
	app, err := New(Config{Service: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if app.Engine() != nil || app.Addr() != netip.MustParseAddr("10.9.0.1") {
		t.Fatalf("service client: engine %v addr %v", app.Engine(), app.Addr())
	}
	ln, err := app.Listen("tcp", ":7100")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	d := &Dialer{Stack: peer, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", "10.9.0.1:7100")
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("across the process boundary "), 10000)
	go func() {
		c.Write(msg)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the service: %d of %d bytes, %v", len(got), len(msg), err)
	}
	c.Close()

	// An application's connection outlives nothing of the service.
	c2, err := peer.Dial("tcp", "10.9.0.1:7100")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ln2, _ := app.Listen("tcp", ":7101")
	srv.Close()
	if _, err := ln2.Accept(); !errors.Is(err, ErrServiceGone) {
		t.Fatalf("Accept after the service went: %v, want ErrServiceGone", err)
	}
	if _, err := app.Dial("tcp", "10.9.0.2:1"); !errors.Is(err, ErrServiceGone) {
		t.Fatalf("Dial after the service went: %v", err)
	}
}

// TestServiceConnFailsWithServiceGone: an open connection of an
// application fails with ErrServiceGone and ECONNRESET when the service
// closes.
func TestServiceConnFailsWithServiceGone(t *testing.T) {
	socket, srv, _, peer := servicePair(t)
	app, err := New(Config{Service: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	pl, _ := peer.Listen("tcp", ":7200")
	go func() {
		c, err := pl.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	c, err := app.Dial("tcp", "10.9.0.2:7200")
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, ErrServiceGone) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read on the service after it went: %v", err)
	}
}
