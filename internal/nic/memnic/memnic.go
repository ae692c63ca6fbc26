// Package memnic is an in-memory nic back-end: Pair returns two Ports wired
// back to back through an impair.Link per direction, so the stack can be
// tested without root, under loss, delay, reordering, rate limits and ECN.
//
// A pair runs in real time by default, or in virtual time with WithClock: a
// ManualClock the test advances, which makes a whole run replayable from
// the links' seeds.
//
// Wakeups: each Queue's PollFD is an eventfd written when a frame becomes
// deliverable (on Send for an undelayed frame, when the clock passes the
// next deadline otherwise) and drained by Recv before it looks, so no
// wakeup is lost and an idle queue never polls readable. A delayed frame in
// real time needs something to notice its deadline while nobody calls into
// the port: a runtime timer (time.AfterFunc) per direction, armed for the
// earliest deadline. It costs no goroutine while idle; evaluating
// deadlines in Recv alone would not wake nic.Wait. Close the ports to
// release their eventfds. In virtual time ManualClock.Advance checks the deadlines
// instead, and nothing runs on its own.
package memnic

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gotas/internal/impair"
	"gotas/internal/nic"
)

// Port is one end of a pair. It has a single queue.
type Port struct {
	info nic.Info
	q    *Queue
}

// Queue is the port's only queue. Frames returned by Recv are views into
// the link's slots, valid until the next Recv; Send copies.
type Queue struct {
	tx, rx   *dir
	efd      int // rx.efd, readable when Recv has frames
	closed   atomic.Bool
	counters nic.Counters
}

// dir is one direction: the link and the receiving queue's wakeup.
type dir struct {
	mu       sync.Mutex
	link     *impair.Link
	clock    *ManualClock // nil in real time
	fixed    time.Time    // the time a timeless real-time link always reads
	efd      int
	signaled bool        // efd holds an unread wakeup
	timer    *time.Timer // real time only
	armed    time.Time   // when timer fires; zero if it is not set
	closed   bool        // the receiving queue is closed
	scratch  [8]byte
}

// Option configures Pair.
type Option func(*options)

type options struct {
	macA, macB [6]byte
	macs       bool
	clock      *ManualClock
}

// WithMACs sets the ports' MAC addresses; by default they are locally
// administered addresses unique to the pair.
func WithMACs(a, b [6]byte) Option {
	return func(o *options) { o.macA, o.macB, o.macs = a, b, true }
}

// WithClock runs the pair in virtual time on c.
func WithClock(c *ManualClock) Option {
	return func(o *options) { o.clock = c }
}

var pairs atomic.Uint32

// one is what signal writes to an eventfd; shared so writing allocates
// nothing.
var one = [8]byte{1}

// Pair makes two connected ports: frames a sends go through a link
// configured by ab to b, and b's through ba to a. It panics if a config is
// invalid (see impair.Config.Validate) or no eventfd can be made, as it is
// meant for tests with fixed settings.
func Pair(ab, ba impair.Config, opts ...Option) (a, b *Port) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	n := pairs.Add(1)
	if !o.macs {
		o.macA = [6]byte{0x02, 'm', byte(n >> 16), byte(n >> 8), byte(n), 0x0a}
		o.macB = o.macA
		o.macB[5] = 0x0b
	}
	dab, dba := newDir(ab, o.clock), newDir(ba, o.clock)
	mode := "realtime"
	if o.clock != nil {
		mode = "virtual"
	}
	mk := func(tx, rx *dir, mac [6]byte, side string) *Port {
		return &Port{
			info: nic.Info{Name: fmt.Sprintf("mem%d%s", n, side), Kind: "mem", MAC: mac, MTU: 1500, Mode: mode},
			q:    &Queue{tx: tx, rx: rx, efd: rx.efd},
		}
	}
	return mk(dab, dba, o.macA, "a"), mk(dba, dab, o.macB, "b")
}

func newDir(cfg impair.Config, clock *ManualClock) *dir {
	link, err := impair.New(cfg)
	if err != nil {
		panic("memnic: " + err.Error())
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		panic("memnic: eventfd: " + err.Error())
	}
	d := &dir{link: link, clock: clock, efd: efd}
	if cfg.Timeless() {
		// Reading the clock costs more than the rest of a Send (clock
		// reads can be slow in VMs) and such a link does not need it.
		d.fixed = time.Now()
	}
	if clock != nil {
		clock.add(d)
	} else {
		d.timer = time.AfterFunc(time.Hour, d.fire)
		d.timer.Stop()
	}
	return d
}

func (d *dir) now() time.Time {
	switch {
	case d.clock != nil:
		return d.clock.Now()
	case !d.fixed.IsZero():
		return d.fixed
	}
	return time.Now()
}

// update makes the eventfd readable if a frame is due, or else arms the
// timer for the next deadline. Called with d.mu held.
func (d *dir) update(now time.Time) {
	next, ok := d.link.NextDeadline()
	if !ok || d.closed {
		return
	}
	if !next.After(now) {
		if !d.signaled {
			d.signaled = true
			_, _ = unix.Write(d.efd, one[:])
		}
		return
	}
	if d.timer != nil && (d.armed.IsZero() || next.Before(d.armed)) {
		d.armed = next
		d.timer.Reset(next.Sub(now))
	}
}

// fire runs when the timer expires, and poke when a virtual clock moves.
func (d *dir) fire() {
	d.mu.Lock()
	d.armed = time.Time{}
	d.update(time.Now())
	d.mu.Unlock()
}

func (d *dir) poke() {
	d.mu.Lock()
	d.update(d.clock.Now())
	d.mu.Unlock()
}

// Recv implements nic.Queue.
func (q *Queue) Recv(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	d := q.rx
	d.mu.Lock()
	if d.signaled {
		// Drain before looking: a frame that becomes due after this read
		// signals again.
		_, _ = unix.Read(d.efd, d.scratch[:])
		d.signaled = false
	}
	var now time.Time // read only if there is something to deliver
	if d.link.Len() > 0 {
		now = d.now()
	}
	n := d.link.Dequeue(now, frames)
	if d.link.Len() > 0 {
		d.update(now) // more due than fitted, or a later deadline to arm
	}
	d.mu.Unlock()
	if n > 0 {
		var bytes uint64
		for _, f := range frames[:n] {
			bytes += uint64(len(f))
		}
		q.counters.RxFrames.Add(uint64(n))
		q.counters.RxBytes.Add(bytes)
	}
	return n, nil
}

// Send implements nic.Queue. It stops early only when the link holds
// Capacity frames, because the peer is not receiving; frames the link
// drops by its model count as sent. Frames to a closed peer are consumed
// and counted in TxDropped.
func (q *Queue) Send(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	d := q.tx
	var sent, bytes, bad, dropped uint64
	d.mu.Lock()
	var now time.Time // read only once a frame is enqueued
	n := 0
	for ; n < len(frames); n++ {
		f := frames[n]
		if len(f) == 0 || len(f) > nic.MaxFrame {
			bad++
			continue
		}
		if d.closed {
			dropped++
			continue
		}
		if d.link.Room() == 0 {
			break
		}
		if now.IsZero() {
			now = d.now()
		}
		d.link.Enqueue(f, now)
		sent++
		bytes += uint64(len(f))
	}
	if sent > 0 {
		d.update(now)
	}
	d.mu.Unlock()
	q.counters.TxFrames.Add(sent)
	q.counters.TxBytes.Add(bytes)
	if bad > 0 {
		q.counters.TxErrors.Add(bad)
	}
	if dropped > 0 {
		q.counters.TxDropped.Add(dropped)
	}
	return n, nil
}

// PollFD implements nic.Queue.
func (q *Queue) PollFD() int {
	if q.closed.Load() {
		return -1
	}
	return q.efd
}

// Stats implements nic.Queue. RxDropped counts the frames the incoming
// link dropped: loss, tail drops, overflow and oversize.
func (q *Queue) Stats() nic.Stats {
	s := q.counters.Snapshot()
	ls := q.LinkStats()
	s.RxDropped += ls.Lost + ls.TailDropped + ls.Overflow + ls.Oversize
	return s
}

// LinkStats returns the counters of the link into this queue.
func (q *Queue) LinkStats() impair.Stats {
	q.rx.mu.Lock()
	defer q.rx.mu.Unlock()
	return q.rx.link.Stats()
}

// NextDeadline is when the next frame into this queue is due, and false if
// none is on its way.
func (q *Queue) NextDeadline() (time.Time, bool) {
	q.rx.mu.Lock()
	defer q.rx.mu.Unlock()
	return q.rx.link.NextDeadline()
}

// Close implements nic.Queue. Frames the peer sends afterwards are dropped.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	d := q.rx
	d.mu.Lock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	err := unix.Close(d.efd)
	d.mu.Unlock()
	if d.clock != nil {
		d.clock.remove(d)
	}
	return err
}

// Queues implements nic.Port.
func (p *Port) Queues() []nic.Queue { return []nic.Queue{p.q} }

// Queue returns the port's queue.
func (p *Port) Queue() *Queue { return p.q }

// Info implements nic.Port.
func (p *Port) Info() nic.Info { return p.info }

// Close implements nic.Port.
func (p *Port) Close() error { return p.q.Close() }

// ManualClock is a virtual clock for pairs made WithClock. Time stands
// still until the test moves it; moving it wakes the queues whose frames
// came due. It is safe for concurrent use.
type ManualClock struct {
	mu   sync.Mutex
	now  time.Time
	dirs []*dir
}

// NewManualClock returns a clock that reads start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// AdvanceTo moves the clock to t; a t in the past leaves it where it is.
func (c *ManualClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	dirs := c.dirs
	c.mu.Unlock()
	// The list is only ever replaced, never changed in place, so it can be
	// walked unlocked; a queue's lock is never taken under the clock's.
	for _, d := range dirs {
		d.poke()
	}
}

// NextDeadline is the earliest time a frame on any link driven by the
// clock comes due, and false if all are empty: a test that has nothing
// else to do advances the clock to it.
func (c *ManualClock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	dirs := c.dirs
	c.mu.Unlock()
	var next time.Time
	found := false
	for _, d := range dirs {
		d.mu.Lock()
		t, ok := d.link.NextDeadline()
		d.mu.Unlock()
		if ok && (!found || t.Before(next)) {
			next, found = t, true
		}
	}
	return next, found
}

func (c *ManualClock) add(d *dir) {
	c.mu.Lock()
	c.dirs = append(c.dirs[:len(c.dirs):len(c.dirs)], d)
	c.mu.Unlock()
}

func (c *ManualClock) remove(d *dir) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := make([]*dir, 0, len(c.dirs))
	for _, x := range c.dirs {
		if x != d {
			kept = append(kept, x)
		}
	}
	c.dirs = kept
}

// TxBacklog is what the link out of this queue holds now and has not
// finished serializing: for a port standing in for a switch's egress, its
// queue (the congestion-control simulator samples it).
func (q *Queue) TxBacklog() (frames, bytes int) {
	d := q.tx
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Queue(d.now())
}
