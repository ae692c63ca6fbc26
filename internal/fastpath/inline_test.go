package fastpath

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
)

// countingPoller is a Poller whose work is a counter that posters raise
// and Poll serves; PrepareSleep re-reads it, as the Engine re-reads its
// queues, which is the driver's half of the Kick protocol.
type countingPoller struct {
	posted, served atomic.Uint64
	steps          int // only under the Core's turn lock: races show here
}

func (p *countingPoller) HandleFrame([]byte, *TxBatch) {}
func (p *countingPoller) Begin()                       {}
func (p *countingPoller) Poll(*TxBatch) bool {
	p.steps++
	n := p.posted.Load()
	if n == p.served.Load() {
		return false
	}
	p.served.Store(n)
	return true
}
func (p *countingPoller) NextDeadline() (uint64, bool) { return 0, false }
func (p *countingPoller) PrepareSleep() bool {
	idle := p.posted.Load() == p.served.Load()
	// Hold the Core's lock a little after the re-check: a post now finds
	// the driver parked and the lock taken, the case the holder must
	// serve for it (again), which is otherwise a window of nanoseconds.
	if p.served.Load()%8 == 0 {
		time.Sleep(time.Microsecond)
	}
	return idle
}
func (p *countingPoller) Woke() {}

// No post is left behind by the driver parking: two goroutines post and
// Kick while a driver turns and parks with a 30 s timeout, the way
// slowpath's driver does, and a third keeps waking it. A post the protocol lost would wait for that
// timeout; the test bounds each wait at 5 s, far from both.
func TestKickLosesNoPost(t *testing.T) {
	pa, _ := memnic.Pair(impair.Config{}, impair.Config{})
	p := &countingPoller{}
	c, err := NewCore(pa.Queues()[0], p, Config{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WatchQueue(); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	driverDone := make(chan struct{})
	go func() {
		defer close(driverDone)
		for !stop.Load() {
			if w, _ := c.Turn(); w {
				continue
			}
			if _, ok := c.PreparePark(^uint64(0)); !ok {
				continue
			}
			c.Bells().Wait(30 * time.Second)
			c.Unpark()
		}
	}()
	// Something else (a frame, another process) wakes the driver often,
	// so that posts keep meeting it on its way into and out of a park;
	// but never while a post waits, which a ring would rescue.
	var outstanding atomic.Int32
	go func() {
		for !stop.Load() {
			if outstanding.Load() == 0 {
				c.Bells().Own().Ring()
			}
			time.Sleep(10 * time.Microsecond)
		}
	}()
	const posters, posts = 2, 8000
	var wg sync.WaitGroup
	stuck := make(chan uint64, posters)
	for range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range posts {
				outstanding.Add(1)
				mine := p.posted.Add(1)
				c.Kick()
				deadline := time.Now().Add(5 * time.Second)
				for p.served.Load() < mine {
					if time.Now().After(deadline) {
						stuck <- mine
						return
					}
					time.Sleep(time.Microsecond)
				}
				outstanding.Add(-1)
				if i%4 == 0 {
					time.Sleep(time.Duration(i%16) * time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	c.Bells().Own().Ring()
	<-driverDone
	close(stuck)
	for n := range stuck {
		t.Fatalf("post %d was not served within 5 s: a lost wakeup", n)
	}
	if got := p.served.Load(); got != posters*posts {
		t.Fatalf("served %d of %d posts", got, posters*posts)
	}
	if c.Stats().Sleeps < 100 {
		t.Fatalf("the driver parked %d times: the test did not exercise the protocol", c.Stats().Sleeps)
	}
	t.Logf("%d iterations, %d parks", p.steps, c.Stats().Sleeps)
}

// timerPoller arms a timer `in` from now whenever it serves a post, as a
// Send arms its retransmission timer.
type timerPoller struct {
	countingPoller
	in    time.Duration
	at    atomic.Uint64
	clock func() uint64
}

func (p *timerPoller) Poll(tx *TxBatch) bool {
	w := p.countingPoller.Poll(tx)
	if w {
		p.at.Store(p.clock() + uint64(p.in))
	}
	return w
}

func (p *timerPoller) NextDeadline() (uint64, bool) { at := p.at.Load(); return at, at != 0 }

// A Kick that arms a timer rings the parked driver only if the timer is
// due before the driver wakes anyway (PreparePark's limit); a far one
// would cost a wakeup per request after every idle spell (found in
// review).
func TestKickRingsOnlyForEarlyTimers(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		ring bool
	}{{time.Second, false}, {10 * time.Millisecond, true}} {
		pa, _ := memnic.Pair(impair.Config{}, impair.Config{})
		start := time.Now()
		clock := func() uint64 { return uint64(time.Since(start)) }
		p := &timerPoller{in: tc.in, clock: clock}
		c, err := NewCore(pa.Queues()[0], p, Config{CPU: -1, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.PreparePark(clock() + uint64(100*time.Millisecond)); !ok {
			t.Fatal("could not park")
		}
		p.posted.Add(1)
		c.Kick()
		rung, _ := c.Bells().Wait(0)
		c.Unpark()
		c.Close()
		if rung != tc.ring {
			t.Errorf("timer in %v: driver rung %v, want %v (it wakes within 100 ms anyway)", tc.in, rung, tc.ring)
		}
	}
}

// closedPoller counts iterations that begin after the Core was Shut.
type closedPoller struct {
	countingPoller
	shut atomic.Bool
	late atomic.Int64
}

func (p *closedPoller) Begin() {
	if p.shut.Load() {
		p.late.Add(1)
	}
}

// After Shut no iteration begins, even from a Kick that saw the driver
// parked just before it left: Stop frees what iterations use right after
// (found in review: a Kick's again loop outlived the driver).
func TestShutStopsKicks(t *testing.T) {
	pa, _ := memnic.Pair(impair.Config{}, impair.Config{})
	p := &closedPoller{}
	c, err := NewCore(pa.Queues()[0], p, Config{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				p.posted.Add(1)
				c.Kick()
			}
		}()
	}
	for range 10 { // the driver parks and wakes, then leaves for good
		for {
			c.Turn()
			if _, ok := c.PreparePark(^uint64(0)); ok {
				break
			}
		}
		time.Sleep(20 * time.Microsecond)
		c.Unpark()
	}
	for {
		c.Turn()
		if _, ok := c.PreparePark(^uint64(0)); ok {
			break
		}
	}
	c.Shut() // the driver has returned; Stop is about to free everything
	p.shut.Store(true)
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if n := p.late.Load(); n > 0 {
		t.Errorf("%d iterations began after Shut", n)
	}
}
