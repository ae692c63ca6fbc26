package shm

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDoorbell(t *testing.T) {
	d := newBell(t)
	if rung, err := d.Wait(0); rung || err != nil {
		t.Fatalf("fresh doorbell: %v %v", rung, err)
	}
	t0 := time.Now()
	if rung, _ := d.Wait(20 * time.Millisecond); rung || time.Since(t0) < 15*time.Millisecond {
		t.Fatalf("timeout: rung %v after %v", rung, time.Since(t0))
	}
	// Rings coalesce into one wakeup.
	for range 3 {
		if err := d.Ring(); err != nil {
			t.Fatal(err)
		}
	}
	if rung, _ := d.Wait(-1); !rung {
		t.Fatal("not rung")
	}
	if rung, _ := d.Drain(); rung {
		t.Fatal("second wakeup from coalesced rings")
	}
	// A waiter blocked without timeout is woken from another goroutine.
	done := make(chan bool)
	go func() {
		rung, _ := d.Wait(-1)
		done <- rung
	}()
	time.Sleep(10 * time.Millisecond)
	d.Ring()
	select {
	case rung := <-done:
		if !rung {
			t.Fatal("woke without ring")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked waiter not woken")
	}
}

func TestDoorbellFromFd(t *testing.T) {
	d := newBell(t)
	fd, _ := unix.Dup(d.Fd())
	d2, err := DoorbellFromFd(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	d2.Ring()
	if rung, _ := d.Wait(0); !rung {
		t.Fatal("ring through the adopted fd not seen")
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	if _, err := DoorbellFromFd(p[1]); err == nil {
		t.Fatal("accepted a pipe as a doorbell")
	}
}
