package shm

import (
	"testing"
	"time"
)

func TestParkerWakesOnRingAndTimesOut(t *testing.T) {
	d, _ := NewDoorbell()
	defer d.Close()
	p, err := NewParker(d.Fd(), func() bool { ok, _ := d.Drain(); return ok })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if ok, err := p.Wait(5 * time.Millisecond); ok || err != nil {
		t.Fatalf("quiet doorbell: %v, %v", ok, err)
	}
	d.Ring() // before Wait: must not be lost
	if ok, _ := p.Wait(time.Second); !ok {
		t.Fatal("a ring before Wait was lost")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		d.Ring()
	}()
	start := time.Now()
	if ok, _ := p.Wait(5 * time.Second); !ok || time.Since(start) > 2*time.Second {
		t.Fatalf("ring during Wait: %v after %v", ok, time.Since(start))
	}
}

func TestParkerWaitDoesNotAllocate(t *testing.T) {
	d, _ := NewDoorbell()
	defer d.Close()
	p, _ := NewParker(d.Fd(), func() bool { ok, _ := d.Drain(); return ok })
	defer p.Close()
	if n := testing.AllocsPerRun(100, func() { d.Ring(); p.Wait(time.Second) }); n != 0 {
		t.Fatalf("%v allocations per Wait", n)
	}
}
