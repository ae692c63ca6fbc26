package appif

import "time"

// ArmWait, Sleep and DisarmWait split Wait for callers that share a
// Context between goroutines under their own lock: they call ArmWait and
// DisarmWait with the lock held and Sleep without it, so other goroutines
// can send while this one sleeps. ArmWait announces the sleep on every
// queue the service writes to and reports whether an event is already
// pending, in which case the caller must not Sleep.
func (c *Context) ArmWait() (ready bool, err error) {
	if len(c.pend) > 0 || len(c.kicks) > 0 {
		return true, nil
	}
	if ok, err := c.resp.ArmSleep(); !ok {
		c.DisarmWait()
		return true, err
	}
	for _, q := range c.ev {
		if ok, err := q.ArmSleep(); !ok {
			c.DisarmWait()
			return true, err
		}
	}
	return false, nil
}

// Sleep blocks on the context's doorbell until the service rings it, Wake
// is called, or timeout passes. It touches no queue.
func (c *Context) Sleep(timeout time.Duration) error {
	_, err := c.bell.Wait(timeout)
	return err
}

// DisarmWait withdraws ArmWait's announcements.
func (c *Context) DisarmWait() {
	c.resp.Disarm()
	for _, q := range c.ev {
		q.Disarm()
	}
}

// Wake interrupts a Sleep from another goroutine.
func (c *Context) Wake() { c.bell.Ring() }

// DrainBell resets the context's doorbell and reports whether it had been
// rung, for callers that wait on WaitFD themselves.
func (c *Context) DrainBell() bool {
	ok, _ := c.bell.Drain()
	return ok
}
