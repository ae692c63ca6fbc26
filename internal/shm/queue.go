package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

// Queue header layout (docs/ABI.md, "SPSC queue"). Each index sits on its
// own cache line so the producer's and the consumer's stores do not bounce
// one line between cores; the sleeping word has its own line too because
// the producer reads it after every commit and it changes rarely.
const (
	QueueMagic      = 0x51535447 // "GTSQ" as little-endian bytes
	QueueVersion    = 1
	QueueHeaderSize = 4 * CacheLine

	qOffMagic    = 0x00
	qOffVersion  = 0x04
	qOffSlotSize = 0x08
	qOffSlots    = 0x0C
	qOffProd     = 1 * CacheLine
	qOffCons     = 2 * CacheLine
	qOffSleeping = 3 * CacheLine

	// MaxQueueSlots keeps free-running uint32 indices unambiguous: the
	// distance prod-cons (mod 2^32) must be able to express 0..capacity.
	MaxQueueSlots = 1 << 30
	// MaxSlotSize is an arbitrary sanity bound.
	MaxSlotSize = 1 << 20
)

// ErrUsage reports a caller bug, such as committing more slots than were
// reserved.
var ErrUsage = errors.New("shm: invalid use")

// QueueSize returns the bytes a queue of slots slots of slotSize bytes
// occupies, header included.
func QueueSize(slotSize, slots uint32) uint64 {
	return QueueHeaderSize + uint64(slotSize)*uint64(slots)
}

func checkQueueParams(off uint64, slotSize, slots uint32) error {
	switch {
	case off%CacheLine != 0:
		return fmt.Errorf("%w: queue offset %d is not %d-aligned", ErrBounds, off, CacheLine)
	case slotSize == 0 || slotSize%8 != 0 || slotSize > MaxSlotSize:
		return fmt.Errorf("shm: slot size %d is not a multiple of 8 in [8, %d]", slotSize, MaxSlotSize)
	case bits.OnesCount32(slots) != 1 || slots > MaxQueueSlots:
		return fmt.Errorf("shm: slot count %d is not a power of two <= %d", slots, MaxQueueSlots)
	}
	return nil
}

// InitQueue formats a queue at off: writes the header and zeroes both
// indices and the sleeping word. Only the creator (the service) calls it,
// before telling either end about the queue.
func InitQueue(r *Region, off uint64, slotSize, slots uint32) error {
	if err := checkQueueParams(off, slotSize, slots); err != nil {
		return err
	}
	b, err := r.Bytes(off, QueueSize(slotSize, slots))
	if err != nil {
		return err
	}
	clear(b[:QueueHeaderSize])
	binary.LittleEndian.PutUint32(b[qOffMagic:], QueueMagic)
	binary.LittleEndian.PutUint32(b[qOffVersion:], QueueVersion)
	binary.LittleEndian.PutUint32(b[qOffSlotSize:], slotSize)
	binary.LittleEndian.PutUint32(b[qOffSlots:], slots)
	return nil
}

// queue is what both ends share: pointers into the mapping plus the
// geometry, which comes from the caller (trusted control plane), never from
// the header after attach.
type queue struct {
	prod, cons, sleeping *atomic.Uint32
	slots                []byte
	slotSize             uint32
	mask                 uint32
	off                  uint64
	err                  error // sticky: once corrupt, always corrupt
}

func openQueue(r *Region, off uint64, slotSize, slots uint32) (queue, error) {
	if err := checkQueueParams(off, slotSize, slots); err != nil {
		return queue{}, err
	}
	b, err := r.Bytes(off, QueueSize(slotSize, slots))
	if err != nil {
		return queue{}, err
	}
	le := binary.LittleEndian
	if le.Uint32(b[qOffMagic:]) != QueueMagic || le.Uint32(b[qOffVersion:]) != QueueVersion ||
		le.Uint32(b[qOffSlotSize:]) != slotSize || le.Uint32(b[qOffSlots:]) != slots {
		return queue{}, fmt.Errorf("%w: queue header at %d does not match %d x %d-byte slots",
			ErrCorrupt, off, slots, slotSize)
	}
	q := queue{slots: b[QueueHeaderSize:], slotSize: slotSize, mask: slots - 1, off: off}
	// These cannot fail: off is cache-line aligned and b is in bounds.
	q.prod, _ = r.Uint32(off + qOffProd)
	q.cons, _ = r.Uint32(off + qOffCons)
	q.sleeping, _ = r.Uint32(off + qOffSleeping)
	return q, nil
}

// used validates a prod/cons pair read (partly) from shared memory.
func (q *queue) used(prod, cons uint32) (uint32, error) {
	n := prod - cons
	if n > q.mask+1 {
		q.err = fmt.Errorf("%w: queue at %d: producer index %d, consumer index %d, capacity %d",
			ErrCorrupt, q.off, prod, cons, q.mask+1)
		return 0, q.err
	}
	return n, nil
}

func (q *queue) slot(pos uint32) []byte {
	o := int(pos&q.mask) * int(q.slotSize)
	return q.slots[o : o+int(q.slotSize) : o+int(q.slotSize)]
}

// Producer is the writing end of an SPSC queue. It is not safe for
// concurrent use; exactly one goroutine (in one process) may produce.
type Producer struct {
	q    queue
	bell *Doorbell
	pos  uint32 // our index: slots [cons, pos) are published
	peer uint32 // last consumer index read from shared memory
}

// NewProducer attaches to a queue formatted by InitQueue. bell is the
// consumer's doorbell, rung when the consumer has announced that it sleeps;
// nil is allowed for a consumer that never sleeps.
func NewProducer(r *Region, off uint64, slotSize, slots uint32, bell *Doorbell) (*Producer, error) {
	q, err := openQueue(r, off, slotSize, slots)
	if err != nil {
		return nil, err
	}
	p := &Producer{q: q, bell: bell, pos: q.prod.Load(), peer: q.cons.Load()}
	if _, err := p.q.used(p.pos, p.peer); err != nil {
		return nil, err
	}
	return p, nil
}

// Cap returns the number of slots.
func (p *Producer) Cap() int { return int(p.q.mask + 1) }

// SlotSize returns the slot size in bytes.
func (p *Producer) SlotSize() int { return int(p.q.slotSize) }

// Reserve returns how many slots, at most n, are free to be filled through
// Slot(0..k-1) and published with Commit. The consumer index is re-read from
// shared memory only when the cached copy says there is not enough room.
func (p *Producer) Reserve(n int) (int, error) {
	if p.q.err != nil {
		return 0, p.q.err
	}
	capacity := p.q.mask + 1
	free := capacity - (p.pos - p.peer)
	if uint(n) > uint(free) {
		cons := p.q.cons.Load()
		used, err := p.q.used(p.pos, cons)
		if err != nil {
			return 0, err
		}
		p.peer = cons
		free = capacity - used
	}
	return min(max(n, 0), int(free)), nil
}

// Slot returns the i-th reserved slot. i must be below the count returned by
// Reserve; the index is masked, so a bad i returns a wrong slot, never an
// out-of-bounds one.
func (p *Producer) Slot(i int) []byte { return p.q.slot(p.pos + uint32(i)) }

// Commit publishes the first n reserved slots with one store of the
// producer index and then, if the consumer announced it is going to sleep,
// clears that flag and rings its doorbell. The store must come before the
// check (both sequentially consistent): see docs/ABI.md, "Sleep and wake".
func (p *Producer) Commit(n int) error {
	if p.q.err != nil {
		return p.q.err
	}
	if n <= 0 {
		return nil
	}
	if uint(n) > uint(p.q.mask+1-(p.pos-p.peer)) {
		return fmt.Errorf("%w: commit of %d slots exceeds the reservation", ErrUsage, n)
	}
	p.pos += uint32(n)
	p.q.prod.Store(p.pos)
	// Load first so the common case (consumer awake) does not write the
	// shared line. Without a doorbell the flag is left alone: clearing it
	// without ringing would be the one way to lose a wakeup.
	if p.bell != nil && p.q.sleeping.Load() != 0 && p.q.sleeping.Swap(0) != 0 {
		return p.bell.Ring()
	}
	return nil
}

// Push copies msg into one slot (zero-filling the rest of it) and commits
// it. It returns false if the queue is full.
func (p *Producer) Push(msg []byte) (bool, error) {
	if len(msg) > int(p.q.slotSize) {
		return false, fmt.Errorf("%w: %d-byte message for %d-byte slots", ErrUsage, len(msg), p.q.slotSize)
	}
	if n, err := p.Reserve(1); n == 0 {
		return false, err
	}
	s := p.Slot(0)
	clear(s[copy(s, msg):])
	return true, p.Commit(1)
}

// Consumer is the reading end of an SPSC queue. It is not safe for
// concurrent use; exactly one goroutine (in one process) may consume.
type Consumer struct {
	q    queue
	bell *Doorbell
	pos  uint32 // our index: slots [pos, peer) are known to be published
	peer uint32 // last producer index read (and validated)
}

// NewConsumer attaches to a queue formatted by InitQueue. bell is this
// consumer's doorbell, which the producer rings (nil if Wait is not used).
func NewConsumer(r *Region, off uint64, slotSize, slots uint32, bell *Doorbell) (*Consumer, error) {
	q, err := openQueue(r, off, slotSize, slots)
	if err != nil {
		return nil, err
	}
	c := &Consumer{q: q, bell: bell, pos: q.cons.Load(), peer: q.prod.Load()}
	if _, err := c.q.used(c.peer, c.pos); err != nil {
		return nil, err
	}
	return c, nil
}

// Cap returns the number of slots.
func (c *Consumer) Cap() int { return int(c.q.mask + 1) }

// SlotSize returns the slot size in bytes.
func (c *Consumer) SlotSize() int { return int(c.q.slotSize) }

// refresh re-reads and validates the producer index.
func (c *Consumer) refresh() (uint32, error) {
	prod := c.q.prod.Load()
	n, err := c.q.used(prod, c.pos)
	if err == nil {
		c.peer = prod
	}
	return n, err
}

// Peek returns how many slots, at most n, are ready to be read through
// Slot(0..k-1). The producer index is re-read only when the cached copy
// shows fewer than n.
func (c *Consumer) Peek(n int) (int, error) {
	if c.q.err != nil {
		return 0, c.q.err
	}
	avail := c.peer - c.pos
	if uint(n) > uint(avail) {
		var err error
		if avail, err = c.refresh(); err != nil {
			return 0, err
		}
	}
	return min(max(n, 0), int(avail)), nil
}

// Slot returns the i-th readable slot. It aliases shared memory that a
// hostile producer can change at any time: copy fields out before
// validating them. i must be below the count returned by Peek.
func (c *Consumer) Slot(i int) []byte { return c.q.slot(c.pos + uint32(i)) }

// Release hands the first n readable slots back to the producer with one
// store of the consumer index. Slots must not be touched afterwards.
func (c *Consumer) Release(n int) error {
	if c.q.err != nil {
		return c.q.err
	}
	if n <= 0 {
		return nil
	}
	if uint(n) > uint(c.peer-c.pos) {
		return fmt.Errorf("%w: release of %d slots exceeds what Peek returned", ErrUsage, n)
	}
	c.pos += uint32(n)
	c.q.cons.Store(c.pos)
	return nil
}

// Pop copies the next message into dst (truncating it to len(dst)) and
// releases its slot. It returns false if the queue is empty.
func (c *Consumer) Pop(dst []byte) (bool, error) {
	if n, err := c.Peek(1); n == 0 {
		return false, err
	}
	copy(dst, c.Slot(0))
	return true, c.Release(1)
}

// ArmSleep announces that the consumer is about to block (sleeping = 1) and
// then re-checks the queue. It returns true if the queue is still empty, so
// that the caller may block on its doorbell; any message published from now
// on will ring it. Otherwise the announcement is withdrawn. A consumer of
// several queues sharing one doorbell arms all of them before blocking.
func (c *Consumer) ArmSleep() (bool, error) {
	if c.q.err != nil {
		return false, c.q.err
	}
	c.q.sleeping.Store(1) // seq-cst: ordered before the prod load below
	n, err := c.refresh()
	if err != nil || n > 0 {
		c.q.sleeping.Store(0)
		return false, err
	}
	return true, nil
}

// Disarm withdraws a sleep announcement after waking up, so that the
// producer stops ringing. Harmless if the producer already cleared it.
func (c *Consumer) Disarm() { c.q.sleeping.Store(0) }

// Wait blocks until the queue is non-empty, the doorbell rings or timeout
// passes (timeout < 0: no timeout). It can return early (spurious wakeup);
// callers loop around Peek. Spin with Peek for a while before calling Wait:
// blocking costs two system calls and tens of microseconds of latency.
func (c *Consumer) Wait(timeout time.Duration) error {
	if c.bell == nil {
		return fmt.Errorf("%w: Wait on a consumer without a doorbell", ErrUsage)
	}
	if n, err := c.Peek(1); n > 0 || err != nil {
		return err
	}
	ok, err := c.ArmSleep()
	if !ok {
		return err
	}
	_, err = c.bell.Wait(timeout)
	c.Disarm()
	return err
}
