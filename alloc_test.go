package gotas

import (
	"io"
	"net"
	"testing"
	"time"

	"gotas/internal/impair"
)

// An echo round trip through net.Conn (Write, then Read until the echo is
// back) allocates nothing in steady state: not in Read or Write, not with
// deadlines set, not in the poller, the cores or the slow path of either
// stack. AllocsPerRun runs with one P, as slowpath's data-path test does,
// and counts every goroutine's allocations.
func TestConnEchoDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	a, b := pair(t, impair.Config{})
	ln, err := a.Listen("tcp", ":7200")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	c, err := b.Dial("tcp", "10.9.0.1:7200")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 1000)
	for i := range msg {
		msg[i] = byte(i)
	}
	buf := make([]byte, len(msg))
	roundTrip := func(c net.Conn) {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	// Deadlines set once, and set again before every round trip as
	// net/http does per request: neither may allocate (the timers are
	// made once per Conn and reused).
	perRequest := func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		c.SetWriteDeadline(time.Now().Add(time.Hour))
		roundTrip(c)
	}
	for _, tc := range []struct {
		name string
		once bool
		rt   func(net.Conn)
	}{{"no deadline", false, roundTrip}, {"deadline set once", true, roundTrip}, {"deadline per request", false, perRequest}} {
		if tc.once {
			c.SetDeadline(time.Now().Add(time.Hour))
		}
		for range 500 { // warm up: lazily grown buffers reach their size
			tc.rt(c)
		}
		if n := testing.AllocsPerRun(500, func() { tc.rt(c) }); n != 0 {
			t.Errorf("echo round trip (%s): %v allocations, want 0", tc.name, n)
		}
	}
}
