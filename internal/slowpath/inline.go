package slowpath

import (
	"runtime"
	"time"

	"gotas/internal/fastpath"
	"gotas/internal/shm"
)

// Inline mode (Config.Inline) runs the cores and the slow path on one
// goroutine, the driver, instead of a locked thread per core and a
// goroutine for the slow path; and the goroutines of this process that
// post commands run the cores' iterations themselves while the driver is
// parked (Kick, fastpath/inline.go). The driver calls the hook set with
// SetAfterTurn after each turn: the embedding process's event dispatch,
// so events reach the goroutines waiting for them with no thread woken in
// between. When idle it spins a little, yielding to the goroutines it
// made runnable, then parks in Go's netpoller on one set that holds the
// NIC queue, the cores' doorbells and the slow path's.

// SetAfterTurn sets what the driver runs after each turn (Inline only;
// call before Start). It reports whether it did anything.
func (s *Stack) SetAfterTurn(f func() bool) { s.after = f }

// Inline reports whether the stack runs in inline mode.
func (s *Stack) Inline() bool { return s.cfg.Inline }

// initInline builds the driver's set: the first core's, which then also
// watches every NIC queue, the other cores' sets and the slow path's.
func (s *Stack) initInline() error {
	set := s.cores[0].Bells()
	for i, c := range s.cores {
		if err := c.WatchQueue(); err != nil {
			return err
		}
		if i > 0 {
			if err := set.Watch(c.Bells().Fd()); err != nil {
				return err
			}
		}
	}
	if err := set.Watch(s.slowBells.Fd()); err != nil {
		return err
	}
	var err error
	s.park, err = shm.NewParker(set.Fd(), s.drainAll)
	return err
}

// drainAll resets every doorbell the driver parks on and reports whether
// any was rung or a queue has input.
func (s *Stack) drainAll() bool {
	rung := s.slowBells.Drain()
	for _, c := range s.cores {
		rung = c.Bells().Drain() || rung
	}
	return rung
}

// Kick serves commands this process's goroutine just posted to the cores
// (fastpath.Core.Kick); true means it ran iterations, whose events the
// caller should now dispatch.
func (s *Stack) Kick() bool {
	ran := false
	for _, c := range s.cores {
		r, err := c.Kick()
		if err != nil {
			s.setErr(err)
		}
		ran = ran || r
	}
	return ran
}

// WakeDriver rings the driver, for a caller that left it work.
func (s *Stack) WakeDriver() { s.cores[0].Doorbell().Ring() }

// yieldAfterIdle: every this long of an idle spell, the driver's thread
// also gives its CPU to other threads (sched_yield). The spin otherwise
// starves a thread the kernel woke on this CPU, ksoftirqd finishing the
// driver's own transmissions or a local peer, until the spin ends: an
// HTTP server's p99 then tracked the longest spin (460 µs at 400, 2 ms at
// 2 ms, 4 ms never parking), and fell to 220-320 µs with the yield
// (docs/PERF.md, "Inline"). Shorter spells, a gotas peer answering in
// microseconds, never yield: yielding at every idle turn cost gotas <->
// gotas two thirds of its requests.
const yieldAfterIdle = 50 * time.Microsecond

// drive is the driver's loop.
func (s *Stack) drive() {
	base := s.cfg.SpinBeforeBlock
	if base == 0 {
		base = fastpath.DefaultSpin
	}
	spin, idleSince, nextYield := base, time.Time{}, time.Duration(0)
	for !s.stopped.Load() {
		if s.driveTurn() {
			// Let the goroutines the turn made runnable run before the
			// next: what they post then leaves in one batch, their
			// answers carrying the ACKs the engine held for them.
			runtime.Gosched()
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince, nextYield = time.Now(), yieldAfterIdle
			continue
		}
		if idle := time.Since(idleSince); idle < spin || s.cfg.BusyPoll {
			// Gosched, not a busy loop: the goroutines this turn made
			// runnable are on this P and run now, on this thread.
			runtime.Gosched()
			if idle > nextYield {
				nextYield += yieldAfterIdle
				fastpath.OSYield()
			}
			continue
		}
		start := time.Now()
		if s.parkDriver() {
			spin = fastpath.AdaptSpin(spin, time.Since(start), base)
		}
		idleSince = time.Time{}
	}
}

// driveTurn runs iterations of every core, then the slow path and the
// hook. A core whose last receive filled its batch (input is waiting)
// gets up to coreTurns iterations per slow-path turn: under a SYN flood
// the slow path's work per frame is the larger, and were it to keep the
// core from draining its NIC queue, the kernel would drop frames of
// established connections along with the flood, where the core drops
// (and counts) only punts the slow path has no room for. Otherwise one:
// the application must run between two iterations for its answers to
// carry the held ACKs.
func (s *Stack) driveTurn() bool {
	worked := false
	for _, c := range s.cores {
		for i := 0; i == 0 || i < coreTurns && c.Backlogged(); i++ {
			w, err := c.Turn()
			if err != nil {
				s.setErr(err)
				s.stopped.Store(true)
			}
			worked = worked || w
		}
	}
	worked = s.sp.poll() || worked
	if s.after != nil {
		worked = s.after() || worked
	}
	return worked
}

// parkDriver parks until a doorbell, input or the next deadline; it
// reports whether it parked.
func (s *Stack) parkDriver() bool {
	timeout := driverMaxPark
	now := s.cfg.Clock()
	deadline := func(at uint64) bool {
		if at == 0 {
			return true
		}
		if at <= now {
			return false
		}
		timeout = min(timeout, time.Duration(at-now))
		return true
	}
	parked := 0
	defer func() {
		for _, c := range s.cores[:parked] {
			c.Unpark()
		}
	}()
	limit := now + uint64(driverMaxPark)
	for _, c := range s.cores {
		at, ok := c.PreparePark(limit)
		if !ok {
			return false
		}
		parked++
		if !deadline(at) {
			return false
		}
	}
	if !s.sp.prepareSleep() {
		return false
	}
	defer s.sp.woke()
	if s.sp.retrySoon {
		timeout = min(timeout, respRetrySleep)
	}
	if !deadline(s.sp.nextTimer) {
		return false
	}
	s.park.Wait(timeout)
	return true
}

// coreTurns bounds the iterations a busy core runs per driver turn.
const coreTurns = 4

// driverMaxPark bounds a park with no deadline, as the threads' sleeps.
const driverMaxPark = 100 * time.Millisecond
