package testnet

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
)

func TestLinkCarriesTCPAndCloseDeletesEverything(t *testing.T) {
	lab, err := New("tnet")
	if err == ErrNotRoot {
		t.Skip("skipping: needs root for network namespaces")
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			lab.Close()
		}
	}()
	a, err := lab.Host("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.Host("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(a, "va", b, "vb"); err != nil {
		t.Fatal(err)
	}
	if err := a.Addr("va", "10.77.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := b.Addr("vb", "10.77.0.2/24"); err != nil {
		t.Fatal(err)
	}

	var ln net.Listener
	if err := a.Do(func() (err error) { ln, err = net.Listen("tcp", "10.77.0.1:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello from a"))
			c.Close()
		}
	}()
	var c net.Conn
	if err := b.Do(func() (err error) { c, err = net.Dial("tcp", "10.77.0.1:7000"); return }); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello from a" {
		t.Fatalf("read %q over the veth", got)
	}
	// The address lives only inside the lab: the root namespace has no such
	// local address.
	if out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); strings.Contains(string(out), "10.77.0.1/") {
		t.Fatal("the host's address leaked into the root namespace")
	}

	sleeper := b.CommandContext(t.Context(), "sleep", "300")
	if err := b.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), lab.Prefix()) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
	if sleeper.ProcessState == nil {
		t.Fatal("Close did not stop the process started in the lab")
	}
}
