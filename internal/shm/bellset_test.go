package shm

import (
	"testing"
	"time"
)

func TestBellSetWakesOnAnyMemberAndDrainsIt(t *testing.T) {
	own, _ := NewDoorbell()
	app, _ := NewDoorbell()
	gone, _ := NewDoorbell()
	defer own.Close()
	defer app.Close()
	defer gone.Close()
	s, err := NewBellSet(own)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(app); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(gone); err != nil {
		t.Fatal(err)
	}
	if rung, _ := s.Wait(0); rung {
		t.Fatal("Wait(0) on a quiet set reported a ring")
	}
	app.Ring()
	if rung, err := s.Wait(time.Second); !rung || err != nil {
		t.Fatalf("Wait after an application rang = %v, %v; want true", rung, err)
	}
	// Drained: the application's doorbell no longer keeps the set ready.
	if rung, _ := s.Wait(0); rung {
		t.Fatal("set still ready after Wait drained it")
	}
	if err := s.Remove(gone); err != nil {
		t.Fatal(err)
	}
	gone.Ring()
	if rung, _ := s.Wait(10 * time.Millisecond); rung {
		t.Fatal("a removed doorbell woke the set")
	}
	own.Ring()
	if !s.Drain() {
		t.Fatal("Drain missed the set's own doorbell")
	}
}

// An application that drains its own doorbell steals only its own wakeup:
// the waiter's doorbell for another application still wakes it.
func TestBellSetAppDrainingItsBellCannotStealAnothersWakeup(t *testing.T) {
	own, _ := NewDoorbell()
	a, _ := NewDoorbell()
	b, _ := NewDoorbell()
	defer own.Close()
	defer a.Close()
	defer b.Close()
	s, _ := NewBellSet(own)
	defer s.Close()
	s.Add(a)
	s.Add(b)
	a.Ring()
	b.Ring()
	a.Drain() // hostile application a reads its eventfd
	if rung, _ := s.Wait(time.Second); !rung {
		t.Fatal("b's ring was lost")
	}
}
