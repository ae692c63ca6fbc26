// Package fastpath runs the per-core poll loops that move frames between a
// NIC queue and the stack. Each Core owns one nic.Queue. A Core either runs
// on its own locked OS thread (Run): it receives a batch, hands every frame
// to its Handler, sends what the handler produced in one batch, and, when
// there is no work, spins briefly before blocking on the queue and a
// doorbell; or it is driven (Turn, Kick, PreparePark): its iterations run
// on the goroutines of the process that embeds it (inline.go).
package fastpath

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gotas/internal/nic"
	"gotas/internal/shm"
)

// BatchSize is how many frames one loop iteration receives at most.
const BatchSize = 32

// Handler processes received frames. It may write replies into tx.
type Handler interface {
	HandleFrame(frame []byte, tx *TxBatch)
}

// Poller is a Handler with work of its own besides received frames (the
// TCP Engine): queues, timers, transmission. The Core calls Begin before
// each receive batch and Poll after it, and sleeps no longer than
// NextDeadline, after PrepareSleep agreed.
type Poller interface {
	Handler
	Begin()
	Poll(tx *TxBatch) bool
	NextDeadline() (ns uint64, ok bool)
	PrepareSleep() bool
	Woke()
}

// Config tunes a Core.
type Config struct {
	// BusyPoll never blocks (--fp-no-ints): lowest latency, one core burnt.
	BusyPoll bool
	// SpinBeforeBlock is how long an idle loop keeps polling before it
	// blocks; blocking costs a wakeup of tens of microseconds. The loop
	// spins up to 8 times longer (maxSpin) while its sleeps keep ending
	// early, and yields the CPU to other threads at every idle turn.
	SpinBeforeBlock time.Duration
	// CPU pins the loop's thread to one CPU when >= 0.
	CPU int
	// Bells, if set, are the doorbells the loop sleeps on (the Core does
	// not own them): its own and one per application. Otherwise the Core
	// makes a set with a doorbell of its own.
	Bells *shm.BellSet
	// Clock returns monotonic nanoseconds, for sleep timeouts (default:
	// time since the Core was made).
	Clock func() uint64
}

// Stats counts what a Core did.
type Stats struct {
	Iterations, Sleeps, Wakeups uint64
	// TxRetryDropped counts frames dropped after the queue stayed full.
	TxRetryDropped uint64
}

// Core is one fast-path poll loop.
type Core struct {
	q       nic.Queue
	segq    nic.SegmentSender // q, when it takes SendSegments frames
	h       Handler
	cfg     Config
	rx      [][]byte
	tx      *TxBatch
	stopped atomic.Bool
	bells   *shm.BellSet
	ownBell bool
	p       Poller // h as a Poller, or nil

	// Driven cores (inline.go): turnMu is held while an iteration runs,
	// by whichever goroutine runs it; again asks the holder for one more;
	// parked is set while the driver sleeps, so that a goroutine that
	// posts work runs the iteration itself; parkUntil is when the parked
	// driver wakes on its own (guarded by turnMu).
	turnMu    sync.Mutex
	again     atomic.Bool
	parked    atomic.Bool
	parkUntil uint64
	watched   bool // WatchQueue: the queue is in the set, armed per park
	shut      bool // Shut: no more iterations (guarded by turnMu)
	// backlogged: the last receive filled its batch, so more input may
	// be waiting.
	backlogged atomic.Bool

	iterations, sleeps, wakeups, txRetryDropped atomic.Uint64
}

// NewCore makes a loop over q; Run starts it.
func NewCore(q nic.Queue, h Handler, cfg Config) (*Core, error) {
	bells, own := cfg.Bells, false
	if bells == nil {
		bell, err := shm.NewDoorbell()
		if err != nil {
			return nil, err
		}
		if bells, err = shm.NewBellSet(bell); err != nil {
			bell.Close()
			return nil, err
		}
		own = true
	}
	if cfg.SpinBeforeBlock == 0 {
		cfg.SpinBeforeBlock = DefaultSpin
	}
	if cfg.Clock == nil {
		start := time.Now()
		cfg.Clock = func() uint64 { return uint64(time.Since(start)) }
	}
	c := &Core{q: q, h: h, cfg: cfg, rx: make([][]byte, BatchSize), bells: bells, ownBell: own}
	if sq, ok := q.(nic.SegmentSender); ok && sq.MaxSegmentFrame() > 0 {
		c.segq = sq
		c.tx = newSegmentBatch(BatchSize, sq.MaxSegmentFrame())
	} else {
		c.tx = NewTxBatch(BatchSize)
	}
	c.p, _ = h.(Poller)
	c.tx.flush = c.flush
	return c, nil
}

// Doorbell wakes a blocked loop when rung.
func (c *Core) Doorbell() *shm.Doorbell { return c.bells.Own() }

// Stop makes Run return after its current iteration.
func (c *Core) Stop() {
	c.stopped.Store(true)
	c.bells.Own().Ring()
}

// Close releases the doorbells the Core made; call it after Run has
// returned.
func (c *Core) Close() error {
	if !c.ownBell {
		return nil
	}
	c.bells.Close()
	return c.bells.Own().Close()
}

// Stats reads the loop's counters.
func (c *Core) Stats() Stats {
	return Stats{Iterations: c.iterations.Load(), Sleeps: c.sleeps.Load(),
		Wakeups: c.wakeups.Load(), TxRetryDropped: c.txRetryDropped.Load()}
}

// Run polls until Stop. It locks its goroutine to an OS thread so the loop
// keeps its CPU and its cache.
func (c *Core) Run() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if c.cfg.CPU >= 0 {
		var set unix.CPUSet
		set.Set(c.cfg.CPU)
		_ = unix.SchedSetaffinity(0, &set) // best effort: containers may forbid it
	}
	idleSince := time.Time{}
	spin := c.cfg.SpinBeforeBlock
	for !c.stopped.Load() {
		worked, err := c.Step()
		if err != nil {
			return err
		}
		if worked || c.cfg.BusyPoll {
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
			continue
		}
		if time.Since(idleSince) < spin {
			// Spin politely: on a machine with few CPUs the threads that
			// will produce our next work (the application, a local peer,
			// the kernel) may be waiting for this very CPU.
			osYield()
			continue
		}
		start := time.Now()
		slept, err := c.sleep()
		if err != nil {
			return err
		}
		if slept {
			spin = c.adapt(spin, time.Since(start))
		}
		idleSince = time.Time{}
	}
	return nil
}

// DefaultSpin is how long an idle loop polls before it blocks, unless
// configured: blocking costs a wakeup of tens of microseconds.
const DefaultSpin = 50 * time.Microsecond

// maxSpin bounds the adaptive spin (unless SpinBeforeBlock is larger).
const maxSpin = 400 * time.Microsecond

// adapt sets the next spin from how long the last sleep lasted: a sleep
// cut short by work soon after it began means the spin stopped just before
// the work came (a request/response rhythm slower than the spin), so the
// wakeup was avoidable: spin longer next time. A long sleep means the
// queue really was idle: back to the configured spin.
func (c *Core) adapt(spin, slept time.Duration) time.Duration {
	return AdaptSpin(spin, slept, c.cfg.SpinBeforeBlock)
}

// AdaptSpin is adapt for any idle loop that spins base at least.
func AdaptSpin(spin, slept, base time.Duration) time.Duration {
	if slept < spin {
		return min(2*spin, max(maxSpin, base))
	}
	if slept > 4*spin {
		return base
	}
	return spin
}

// sleep blocks until a frame, a doorbell or the next deadline; it reports
// whether it blocked at all.
func (c *Core) sleep() (bool, error) {
	timeout := 100 * time.Millisecond
	if c.p != nil {
		if !c.p.PrepareSleep() {
			return false, nil
		}
		defer c.p.Woke()
		if at, ok := c.p.NextDeadline(); ok {
			now := c.cfg.Clock()
			if at <= now {
				return false, nil
			}
			timeout = min(timeout, time.Duration(at-now))
		}
	}
	c.sleeps.Add(1)
	// Level-triggered: a frame that arrived after the last poll keeps
	// the queue's fd readable, so no wakeup is lost.
	if _, err := nic.Wait(c.q, timeout, c.bells.Fd()); err != nil {
		return false, err
	} else {
		c.bells.Drain()
	}
	c.wakeups.Add(1)
	return true, nil
}

// osYield gives the CPU to another runnable thread, if any (sched_yield;
// raw, so the Go scheduler does not hand off the core's P for it).
func osYield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// OSYield is osYield, for the inline driver.
func OSYield() { osYield() }

// Step runs one iteration: receive a batch, handle it, let a Poller do
// its other work, send what was produced. Tests drive a Core with Step
// instead of Run to stay on one goroutine (and deterministic).
func (c *Core) Step() (bool, error) {
	c.iterations.Add(1)
	if c.p != nil {
		c.p.Begin()
	}
	n, err := c.q.Recv(c.rx)
	if err != nil {
		return false, err
	}
	c.backlogged.Store(n == len(c.rx))
	for _, f := range c.rx[:n] {
		c.h.HandleFrame(f, c.tx)
	}
	worked := n > 0
	if c.p != nil {
		worked = c.p.Poll(c.tx) || worked
	}
	c.flush()
	return worked, nil
}

// flush sends the batch; a queue that stays full for a few tries loses the
// rest, counted, rather than stalling receive.
func (c *Core) flush() {
	frames, segs := c.tx.frames, c.tx.segs
	for tries := 0; len(frames) > 0 && tries < 64; tries++ {
		var n int
		var err error
		if c.segq != nil {
			n, err = c.segq.SendSegments(frames, segs)
			segs = segs[n:]
		} else {
			n, err = c.q.Send(frames)
		}
		if errors.Is(err, nic.ErrClosed) {
			break
		}
		frames = frames[n:]
	}
	if len(frames) > 0 {
		c.txRetryDropped.Add(uint64(len(frames)))
	}
	c.tx.Reset()
}
