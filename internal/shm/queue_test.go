package shm

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// testQueue formats a queue at offset 64 of a fresh region (so that offsets
// other than 0 are exercised) and attaches both ends.
func testQueue(tb testing.TB, slotSize, slots uint32, bell *Doorbell) (*Region, *Producer, *Consumer) {
	tb.Helper()
	r := newRegion(tb, CacheLine+QueueSize(slotSize, slots))
	if err := InitQueue(r, CacheLine, slotSize, slots); err != nil {
		tb.Fatal(err)
	}
	p, err := NewProducer(r, CacheLine, slotSize, slots, bell)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewConsumer(r, CacheLine, slotSize, slots, bell)
	if err != nil {
		tb.Fatal(err)
	}
	return r, p, c
}

func newBell(tb testing.TB) *Doorbell {
	tb.Helper()
	d, err := NewDoorbell()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func TestQueueParams(t *testing.T) {
	r := newRegion(t, 1<<16)
	for _, c := range []struct {
		off         uint64
		size, slots uint32
		wantOK      bool
	}{
		{0, 8, 1, true}, {0, 64, 512, true}, {64, 16, 8, true},
		{0, 12, 8, false}, {0, 0, 8, false}, {0, 8, 0, false}, {0, 8, 6, false},
		{32, 8, 8, false}, {0, 64, 1024 * 1024, false}, {1 << 16, 8, 1, false},
	} {
		err := InitQueue(r, c.off, c.size, c.slots)
		if (err == nil) != c.wantOK {
			t.Errorf("InitQueue(%d, %d, %d): %v", c.off, c.size, c.slots, err)
		}
	}
	// Attaching with a geometry other than the one formatted is refused.
	if err := InitQueue(r, 0, 64, 16); err != nil {
		t.Fatal(err)
	}
	if _, err := NewConsumer(r, 0, 64, 32, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("geometry mismatch: %v", err)
	}
	if _, err := NewProducer(r, 0, 32, 16, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("geometry mismatch: %v", err)
	}
	if _, err := NewConsumer(r, 4096, 64, 16, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unformatted area: %v", err)
	}
}

func TestQueueHeaderLayout(t *testing.T) {
	r, p, c := testQueue(t, 16, 4, nil)
	h, _ := r.Bytes(CacheLine, QueueHeaderSize)
	le := binary.LittleEndian
	if string(h[0:4]) != "GTSQ" || le.Uint32(h[4:]) != 1 || le.Uint32(h[8:]) != 16 || le.Uint32(h[12:]) != 4 {
		t.Fatalf("header % x", h[:16])
	}
	p.Push([]byte{1})
	p.Push([]byte{2})
	c.Pop(nil)
	if le.Uint32(h[64:]) != 2 || le.Uint32(h[128:]) != 1 {
		t.Fatalf("prod %d cons %d", le.Uint32(h[64:]), le.Uint32(h[128:]))
	}
	// Slot i of the data area holds message number i (mod 4).
	d, _ := r.Bytes(CacheLine+QueueHeaderSize, 64)
	if d[0] != 1 || d[16] != 2 {
		t.Fatalf("slots % x", d)
	}
}

func TestQueuePushPop(t *testing.T) {
	_, p, c := testQueue(t, 16, 8, nil)
	buf := make([]byte, 16)
	if ok, err := c.Pop(buf); ok || err != nil {
		t.Fatalf("pop from empty: %v %v", ok, err)
	}
	// Run the indices around the ring many times with varying fill levels.
	next, want := uint64(0), uint64(0)
	for round := 0; round < 1000; round++ {
		for k := round % 11; k > 0; k-- {
			msg := binary.LittleEndian.AppendUint64(nil, next)
			ok, err := p.Push(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if next-want != 8 {
					t.Fatalf("full with %d queued", next-want)
				}
				break
			}
			next++
		}
		for k := round % 7; k > 0; k-- {
			ok, err := c.Pop(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if next != want {
					t.Fatalf("empty with %d queued", next-want)
				}
				break
			}
			if got := binary.LittleEndian.Uint64(buf); got != want {
				t.Fatalf("got message %d, want %d", got, want)
			}
			if buf[8] != 0 || buf[15] != 0 {
				t.Fatal("slot tail not zeroed")
			}
			want++
		}
	}
	if _, err := p.Push(make([]byte, 17)); !errors.Is(err, ErrUsage) {
		t.Errorf("oversized push: %v", err)
	}
}

func TestQueueBatch(t *testing.T) {
	_, p, c := testQueue(t, 8, 16, nil)
	n, err := p.Reserve(100)
	if n != 16 || err != nil {
		t.Fatalf("Reserve: %d %v", n, err)
	}
	for i := range 10 {
		binary.LittleEndian.PutUint64(p.Slot(i), uint64(i))
	}
	if err := p.Commit(17); !errors.Is(err, ErrUsage) {
		t.Errorf("over-commit: %v", err)
	}
	if err := p.Commit(10); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Reserve(100); n != 6 {
		t.Fatalf("free after commit: %d", n)
	}
	n, err = c.Peek(32)
	if n != 10 || err != nil {
		t.Fatalf("Peek: %d %v", n, err)
	}
	for i := range n {
		if got := binary.LittleEndian.Uint64(c.Slot(i)); got != uint64(i) {
			t.Fatalf("slot %d holds %d", i, got)
		}
	}
	if err := c.Release(11); !errors.Is(err, ErrUsage) {
		t.Errorf("over-release: %v", err)
	}
	if err := c.Release(4); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Peek(32); n != 6 || binary.LittleEndian.Uint64(c.Slot(0)) != 4 {
		t.Fatalf("after release: %d", n)
	}
	if n, _ := p.Reserve(100); n != 10 {
		t.Fatalf("free after release: %d", n)
	}
}

// TestQueueHostileIndices writes impossible values into the indices and
// checks both ends report ErrCorrupt (sticky) instead of misbehaving.
func TestQueueHostileIndices(t *testing.T) {
	for _, c := range []struct {
		name       string
		prod, cons uint32
	}{
		{"prod past capacity", 9, 0},
		{"prod behind cons", 0, 1},
		{"huge", 0x80000000, 0},
		{"wrap past capacity", 5, 0xfffffffc},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, p, cons := testQueue(t, 8, 8, nil)
			// The consumer's view: the producer wrote prod; our own
			// index is cons.
			cons.pos, cons.peer = c.cons, c.cons
			cons.q.prod.Store(c.prod)
			if n, err := cons.Peek(1); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Peek: %d %v", n, err)
			}
			if ok, err := cons.Pop(nil); ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("sticky: %v %v", ok, err)
			}
			if ok, err := cons.ArmSleep(); ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ArmSleep: %v", err)
			}
			// The producer's view: the consumer wrote cons.
			// Our cached copy says "full", forcing a re-read.
			p.pos, p.peer = c.prod, c.prod-8
			p.q.cons.Store(c.cons)
			if n, err := p.Reserve(1); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Reserve: %d %v", n, err)
			}
			if err := p.Commit(1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("sticky: %v", err)
			}
		})
	}
	// A corrupt queue is also refused at attach time.
	r, _, _ := testQueue(t, 8, 8, nil)
	w, _ := r.Uint32(CacheLine + qOffProd)
	w.Store(100)
	if _, err := NewConsumer(r, CacheLine, 8, 8, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("attach: %v", err)
	}
	if _, err := NewProducer(r, CacheLine, 8, 8, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("attach: %v", err)
	}
}

// FuzzQueueConsumer lets a "peer" write arbitrary producer indices; the
// consumer must never read out of bounds, panic or report more than the
// capacity.
func FuzzQueueConsumer(f *testing.F) {
	f.Add(uint32(0), uint32(0), uint32(3))
	f.Add(uint32(0xffffffff), uint32(7), uint32(0))
	f.Add(uint32(17), uint32(1), uint32(17))
	r, _, c := testQueue(f, 8, 16, nil)
	_ = r
	f.Fuzz(func(t *testing.T, cons, prod1, prod2 uint32) {
		c.q.err = nil
		c.pos, c.peer = cons, cons
		for _, prod := range []uint32{prod1, prod2} {
			c.q.prod.Store(prod)
			n, err := c.Peek(1 << 20)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || prod-c.pos <= 16 {
					t.Fatalf("cons %d prod %d: %v", cons, prod, err)
				}
				return
			}
			if n > 16 || uint32(n) != prod-c.pos {
				t.Fatalf("cons %d prod %d: %d readable", cons, prod, n)
			}
			for i := range n {
				_ = c.Slot(i)[7]
			}
			c.Release(n / 2)
		}
	})
}

func TestQueueZeroAllocs(t *testing.T) {
	bell := newBell(t)
	_, p, c := testQueue(t, 64, 256, bell)
	msg := make([]byte, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		p.Push(msg)
		c.Pop(msg)
		n, _ := p.Reserve(32)
		for i := range n {
			p.Slot(i)[0] = byte(i)
		}
		p.Commit(n)
		n, _ = c.Peek(32)
		for i := range n {
			_ = c.Slot(i)[0]
		}
		c.Release(n)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
	// The wake path (sleeping consumer: Swap + eventfd write) too.
	allocs = testing.AllocsPerRun(100, func() {
		c.ArmSleep()
		p.Push(msg)
		bell.Drain()
		c.Pop(msg)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per wake", allocs)
	}
}

// pause delays the calling goroutine for a random time: mostly a yield,
// sometimes a busy wait of a few microseconds, rarely (1 in sleepOdds) a
// real sleep, which costs about a millisecond (timer slack) and lets the
// other side run dry or fill up.
func pause(rng *rand.Rand, sleepOdds int) {
	switch r := rng.IntN(sleepOdds); {
	case r == 0:
		time.Sleep(time.Microsecond)
	case r%4 == 1:
		d := time.Duration(rng.IntN(5000))
		for t0 := time.Now(); time.Since(t0) < d; {
		}
	default:
		runtime.Gosched()
	}
}

// TestQueueSleeperIsWoken: a consumer that decided to sleep (ArmSleep
// returned true) is woken by the next publish, and one that was overtaken
// by a publish does not sleep at all.
func TestQueueSleeperIsWoken(t *testing.T) {
	bell := newBell(t)
	_, p, c := testQueue(t, 8, 8, bell)

	ok, err := c.ArmSleep()
	if !ok || err != nil {
		t.Fatalf("ArmSleep on empty queue: %v %v", ok, err)
	}
	if rung, _ := bell.Wait(0); rung {
		t.Fatal("doorbell rung before any publish")
	}
	p.Push([]byte{1})
	if rung, _ := bell.Wait(0); !rung {
		t.Fatal("publish after ArmSleep did not ring")
	}
	if c.q.sleeping.Load() != 0 {
		t.Fatal("producer did not clear sleeping")
	}
	// Awake consumer: the producer does not ring.
	p.Push([]byte{2})
	if rung, _ := bell.Wait(0); rung {
		t.Fatal("rang an awake consumer")
	}
	// Data already there: ArmSleep refuses and withdraws the flag.
	if ok, _ := c.ArmSleep(); ok || c.q.sleeping.Load() != 0 {
		t.Fatal("ArmSleep with queued messages")
	}

	// The same across goroutines, many times with random delays: the
	// blocked consumer must come back well before the (long) timeout.
	c.Pop(nil)
	c.Pop(nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		seed := rng.Uint64()
		var wg sync.WaitGroup
		wg.Go(func() {
			pause(rand.New(rand.NewPCG(seed, 0)), 50)
			p.Push([]byte{byte(i)})
		})
		t0 := time.Now()
		for {
			if n, err := c.Peek(1); n > 0 || err != nil {
				break
			}
			if err := c.Wait(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("round %d: consumer woke after %v", i, d)
		}
		c.Pop(nil)
		wg.Wait()
	}
}

// TestQueueNoLostWakeup streams 1e6 messages between two goroutines with
// random pauses on both sides, random batch sizes and a consumer that
// spins only briefly before sleeping. A lost wakeup shows up as a Wait that
// runs into its timeout while messages are queued.
func TestQueueNoLostWakeup(t *testing.T) {
	total := 1_000_000
	if testing.Short() {
		total = 100_000
	}
	bell := newBell(t)
	_, p, c := testQueue(t, 16, 64, bell)
	const timeout = 3 * time.Second

	var wg sync.WaitGroup
	var perr error
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for seq := 0; seq < total; {
			n, err := p.Reserve(1 + rng.IntN(32))
			if err != nil {
				perr = err
				return
			}
			n = min(n, total-seq)
			for i := range n {
				binary.LittleEndian.PutUint64(p.Slot(i), uint64(seq+i))
			}
			if err := p.Commit(n); err != nil {
				perr = err
				return
			}
			seq += n
			// Pause often enough that the consumer regularly
			// finds the queue empty and goes to sleep.
			if n == 0 || rng.IntN(8) == 0 {
				pause(rng, 10000)
			}
		}
	})

	rng := rand.New(rand.NewPCG(7, 8))
	waits, lost := 0, 0
	for want := 0; want < total; {
		n, err := c.Peek(1 + rng.IntN(32))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			// Half the time spin a little first (the producer
			// may publish while we spin), half the time go
			// straight to sleep.
			if rng.IntN(2) == 0 {
				for range rng.IntN(20) {
					runtime.Gosched()
				}
				continue
			}
			waits++
			t0 := time.Now()
			if err := c.Wait(timeout); err != nil {
				t.Fatal(err)
			}
			if time.Since(t0) >= timeout {
				if n, _ := c.Peek(1); n > 0 {
					lost++
				}
			}
			continue
		}
		for i := range n {
			if got := binary.LittleEndian.Uint64(c.Slot(i)); got != uint64(want) {
				t.Fatalf("got %d, want %d", got, want)
			}
			want++
		}
		if err := c.Release(n); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(200) == 0 {
			pause(rng, 1000)
		}
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
	if lost > 0 {
		t.Fatalf("%d lost wakeups", lost)
	}
	t.Logf("%d messages, consumer blocked %d times", total, waits)
}

// TestQueueNoBellLeavesFlag: a producer without a doorbell must not clear
// the sleeping flag (that would swallow the wakeup without delivering it).
func TestQueueNoBellLeavesFlag(t *testing.T) {
	_, p, c := testQueue(t, 8, 8, nil)
	if ok, _ := c.ArmSleep(); !ok {
		t.Fatal("ArmSleep on empty queue")
	}
	p.Push([]byte{1})
	if c.q.sleeping.Load() != 1 {
		t.Fatal("flag cleared without a ring")
	}
	if err := c.Wait(0); !errors.Is(err, ErrUsage) {
		t.Fatalf("Wait without doorbell: %v", err)
	}
}
