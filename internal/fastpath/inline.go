package fastpath

import "gotas/internal/shm"

// A driven Core has no thread of its own. One goroutine, the driver,
// calls Turn in a loop and parks (PreparePark, then waits on Bells().Fd(),
// then Unpark) when idle; and a goroutine of this process that has just
// posted commands to the core calls Kick, which runs the iteration on that
// goroutine when the driver is parked. A request is then served on the
// goroutine that made it, with no thread woken for it: the response a
// handler writes leaves in the same system call as its Write, and the
// driver is woken only by the NIC, timers and other processes.
//
// No work is left behind: Kick's caller published its commands (a queue
// index store) before it reads parked, and the driver stores parked
// before PrepareSleep re-reads every queue, so one of them sees the other
// (sequentially consistent atomics). Two goroutines never run iterations
// at once: turnMu is taken with TryLock, and one that finds it held sets
// again, which the holder reads after it unlocks and serves: a turn runs
// another, PreparePark gives up the park (TestKickLosesNoPost).

// kickTurns bounds how many iterations a Kick runs on its caller's
// goroutine before handing what is left to the driver.
const kickTurns = 64

// Turn runs one iteration, or, if another goroutine is running one, makes
// that goroutine run another after it. It reports whether it did work.
func (c *Core) Turn() (bool, error) { return c.turn(1) }

// Kick serves the commands the caller just posted: on the caller's
// goroutine while the driver is parked (up to kickTurns iterations, for
// as long as there is work, then the driver is woken for the rest), not
// at all while the driver is awake, which will see them. It reports
// whether it ran an iteration, after which the caller should look for
// the events it may have produced.
func (c *Core) Kick() (bool, error) {
	if !c.parked.Load() {
		return false, nil
	}
	_, err := c.turn(kickTurns)
	return true, err
}

func (c *Core) turn(max int) (bool, error) {
	worked := false
	c.again.Store(true)
	for c.again.Load() && c.turnMu.TryLock() {
		if c.shut {
			c.turnMu.Unlock()
			return worked, nil
		}
		c.again.Store(false)
		var err error
		busy := true
		for i := 0; i < max && busy && err == nil; i++ {
			busy, err = c.Step()
			worked = worked || busy
		}
		if c.parked.Load() {
			c.wakeDriverIfLate(busy)
		}
		c.turnMu.Unlock()
		if err != nil {
			return worked, err
		}
	}
	return worked, nil
}

// wakeDriverIfLate rings the parked driver when an iteration run by
// another goroutine left work for it: more than Kick does at once, or a
// timer due before the driver's own wakeup. turnMu is held.
func (c *Core) wakeDriverIfLate(busy bool) {
	if c.parkUntil == 0 {
		return // already rung
	}
	late := busy
	if c.p != nil && !late {
		at, ok := c.p.NextDeadline()
		late = ok && at < c.parkUntil
	}
	if late {
		c.parkUntil = 0
		c.bells.Own().Ring()
	}
}

// Shut ends iterations on other goroutines: a Kick still running turns
// stops before its next, and none starts. The owner calls it after the
// driver returned and before it frees what the iterations use.
func (c *Core) Shut() {
	c.turnMu.Lock()
	c.shut = true
	c.turnMu.Unlock()
}

// Backlogged reports whether the last iteration's receive filled its
// batch: input is likely waiting.
func (c *Core) Backlogged() bool { return c.backlogged.Load() }

// Bells is the set the driver parks on: the core's doorbells and, after
// WatchQueue, its NIC queue.
func (c *Core) Bells() *shm.BellSet { return c.bells }

// WatchQueue makes the NIC queue's input ring the set, for a driver that
// parks on Bells().Fd(): once per PreparePark, so that frames arriving
// while the driver is awake wake nobody.
func (c *Core) WatchQueue() error {
	c.watched = true
	return c.bells.WatchOnce(c.q.PollFD())
}

// PreparePark announces that the driver is about to park, until limit
// (ns on the core's clock) at the latest: false means work arrived and it
// must not. Otherwise it returns the time (ns, 0 for none) by which the
// driver must be awake again, and the driver must call Unpark once awake.
func (c *Core) PreparePark(limit uint64) (uint64, bool) {
	c.parked.Store(true)
	c.turnMu.Lock()
	at, ok := c.preparePark(limit)
	c.turnMu.Unlock()
	// A Kick that saw parked and found the lock held by this very call
	// left its work to the holder (again): serve it rather than park.
	if ok && c.again.Load() {
		c.Unpark()
		return 0, false
	}
	return at, ok
}

// preparePark is PreparePark's part under turnMu.
func (c *Core) preparePark(limit uint64) (uint64, bool) {
	if c.p != nil && !c.p.PrepareSleep() {
		c.parked.Store(false)
		return 0, false
	}
	if c.watched {
		if err := c.bells.Rearm(c.q.PollFD()); err != nil {
			if c.p != nil {
				c.p.Woke()
			}
			c.parked.Store(false)
			return 0, false // cannot sleep on the queue: keep polling it
		}
	}
	var at uint64
	ok := false
	if c.p != nil {
		at, ok = c.p.NextDeadline()
	}
	// A timer a Kick arms is late only if it is due before the driver
	// wakes anyway.
	c.parkUntil = limit
	if !ok {
		at = 0
	} else if at < limit {
		c.parkUntil = at
	}
	c.sleeps.Add(1)
	return at, true
}

// Unpark ends a park PreparePark began. A Kick that finds the lock held
// here leaves its work to the driver, which turns next.
func (c *Core) Unpark() {
	c.turnMu.Lock()
	if c.p != nil {
		c.p.Woke()
	}
	c.parkUntil = 0
	c.turnMu.Unlock()
	c.parked.Store(false)
	c.wakeups.Add(1)
}
