// Package impair models one direction of a network link: random loss,
// duplication and reordering, a bounded FIFO queue in front of a rate
// limiter, ECN marking, and a propagation delay with jitter. The same model
// drives the in-memory NIC (nic/memnic, in virtual or real time) and the
// namespace bridge (internal/testnet, in real time), so tests on either see
// the same link.
//
// The model never reads a clock: every call takes the current time, so a
// test can drive it with virtual time and replay a run exactly from its
// seed. A frame goes through these steps, all decided when it arrives:
//
//  1. Arrival (Enqueue at time now). Frames longer than MaxFrame are
//     dropped (Oversize).
//  2. Loss: with probability Loss the frame vanishes (Lost).
//  3. Duplication: with probability Duplicate a second copy follows the
//     frame through the remaining steps (Duplicated).
//  4. Queue: the queue holds every frame whose serialization has not yet
//     ended, including the one on the wire. A frame that does not fit
//     (QueueLimit.Frames already queued, or QueueLimit.Bytes would be
//     exceeded) is dropped (TailDropped). One that finds more than
//     ECNThreshold queued is CE-marked if it is ECN-capable IPv4 (CEMarked)
//     and queued like any other; non-ECT frames are just queued.
//  5. Departure (end of serialization) = max(now, previous departure) +
//     len(frame)*8/RateBps; with RateBps 0 it is now and nothing ever queues.
//  6. Delivery = departure + Delay + a uniform draw from [0, Jitter]. Jitter
//     never lets a frame overtake an earlier one: reordering comes only from
//     step 7, so each knob acts alone.
//  7. Reordering: with probability Reorder the frame is held ReorderDelay
//     longer, letting later frames pass it. Frames delivered after a frame
//     that arrived later are counted Reordered.
//
// Dequeue(now) then hands out every frame whose delivery time has come, in
// delivery-time order (arrival order among equal times).
//
// Times passed to Enqueue must not decrease. Dequeue may run at any time,
// also later than the next Enqueue's time: a driver that stamps frames on
// arrival may learn of an arrival after it last delivered.
//
// Frames are copied into slots that are allocated lazily, in chunks, up to
// Config.Capacity and then reused, so the steady state allocates nothing.
// A Link is not safe for concurrent use.
package impair

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"

	"gotas/internal/nic"
)

// Config describes one direction of a link. The zero value is a perfect,
// infinitely fast link.
type Config struct {
	// Seed seeds the random draws: the same seed, config and sequence of
	// calls give the same outcome for every frame.
	Seed int64

	// Loss, Duplicate and Reorder are probabilities in [0, 1].
	Loss, Duplicate, Reorder float64
	// ReorderDelay is how much longer a frame picked by Reorder is held.
	// It must be positive when Reorder is.
	ReorderDelay time.Duration

	// Delay is the fixed one-way propagation delay; Jitter adds a uniform
	// random extra in [0, Jitter] that keeps frames in order.
	Delay, Jitter time.Duration

	// RateBps is the link rate in bits per second; 0 means unlimited. A
	// frame takes len(frame)*8/RateBps to serialize (the Ethernet frame
	// without preamble or FCS).
	RateBps uint64

	// QueueLimit bounds the FIFO in front of the rate limiter; arrivals
	// that do not fit are tail-dropped. Zero fields mean no limit.
	QueueLimit Limit
	// ECNThreshold is the occupancy above which an arriving ECT(0)/ECT(1)
	// IPv4 frame is CE-marked (a DCTCP-style step marking at K). Zero
	// fields mean no marking.
	ECNThreshold Limit

	// Capacity bounds the frames the link holds at once: queued, in
	// flight, and handed out by the last Dequeue. An arrival beyond it is
	// dropped as Overflow: storage ran out, the modeled link did not lose
	// it. 0 means DefaultCapacity.
	Capacity int
	// MaxFrame is the largest frame accepted; 0 means nic.MaxFrame.
	MaxFrame int
}

// Limit is a queue size in frames, bytes or both; a zero field is unlimited.
type Limit struct {
	Frames int
	Bytes  int
}

// DefaultCapacity is the Capacity used when Config.Capacity is 0.
const DefaultCapacity = 8192

// Stats counts what happened to frames. Every arrival and every duplicate
// ends up counted once: Arrived + Duplicated = Lost + Oversize + TailDropped
// + Overflow + Delivered + Link.Len().
type Stats struct {
	Arrived        uint64 // frames offered to Enqueue
	Delivered      uint64 // frames handed out by Dequeue, duplicates included
	DeliveredBytes uint64
	Lost           uint64 // dropped by the Loss draw
	Duplicated     uint64 // extra copies made
	Reordered      uint64 // delivered after a frame that arrived later
	TailDropped    uint64 // found the queue full
	CEMarked       uint64 // ECT frames marked CE
	Oversize       uint64 // longer than MaxFrame
	Overflow       uint64 // no free slot (Capacity reached)

	QueueHighFrames int // queue high-water mark, in frames
	QueueHighBytes  int // and in bytes

	// MaxLate is the longest a frame waited past its delivery time for
	// the Dequeue that handed it out: how promptly the link is driven.
	MaxLate time.Duration
}

// Outcome tells what Enqueue did with a frame; with duplication both
// copies' fates are or-ed together.
type Outcome uint8

const (
	Queued      Outcome = 1 << iota // at least one copy is on its way
	Lost                            // lost by the Loss draw
	Duplicated                      // a second copy was made
	TailDropped                     // a copy found the queue full
	Marked                          // a copy was CE-marked
	Held                            // a copy is held back to be reordered
	Dropped                         // oversize, or no free slot
)

var outcomeNames = []string{"queued", "lost", "duplicated", "tail-dropped", "marked", "held", "dropped"}

func (o Outcome) String() string {
	s := ""
	for b, name := range outcomeNames {
		if o&(1<<b) != 0 {
			if s != "" {
				s += "|"
			}
			s += name
		}
	}
	return s
}

// slotChunk is how many slots are allocated at once.
const slotChunk = 64

type slot struct {
	buf []byte
	seq uint64 // arrival order of this copy
}

// pending is a frame in the link. The heap holds these rather than slot
// indices so that comparisons stay within the heap's own memory.
type pending struct {
	due  int64  // delivery time, ns since the link's epoch
	seq  uint64 // arrival order, to break ties
	slot int32
}

// departure is a queued frame's end of serialization, kept in arrival
// (= departure) order to know the queue occupancy at any time.
type departure struct {
	at   int64
	size int
}

// Link is one direction of an impaired link.
type Link struct {
	cfg      Config
	capacity int
	maxFrame int
	rng      *rand.Rand

	epoch   time.Time // time 0 of the ns timestamps below: the first call
	started bool

	slots []slot
	free  []int32   // unused slot indices
	heap  []pending // frames in the link, a min-heap on (due, seq)
	held  []int32   // handed out by the last Dequeue, freed by the next

	// The queue: departures still in the future, oldest first, in a ring
	// that grows by doubling (never beyond Capacity entries).
	queue       []departure
	qHead, qLen int
	qBytes      int

	lastDep int64  // departure of the last queued frame
	serRem  uint64 // sub-ns remainder of serialization times, so rates are exact
	lastDue int64  // latest delivery time not counting reorder holds
	seq     uint64 // arrivals so far, numbering copies
	maxSeq  uint64 // highest seq delivered + 1

	stats Stats
}

// New makes a link, or reports what is wrong with cfg.
func New(cfg Config) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, capacity: cfg.Capacity, maxFrame: cfg.MaxFrame}
	if l.capacity == 0 {
		l.capacity = DefaultCapacity
	}
	if l.maxFrame == 0 {
		l.maxFrame = nic.MaxFrame
	}
	// PCG wants 128 bits; the second word only makes the stream ours.
	l.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x696d70616972))
	return l, nil
}

// Timeless reports whether the link behaves the same at any time: no
// delay, jitter, rate or reordering, so every frame is due on arrival and
// nothing queues. Such a link may be driven with a constant time, sparing
// the clock reads.
func (c Config) Timeless() bool {
	return c.Delay == 0 && c.Jitter == 0 && c.RateBps == 0 && c.Reorder == 0
}

// Validate reports the first setting that makes no sense.
func (c Config) Validate() error {
	for _, p := range []float64{c.Loss, c.Duplicate, c.Reorder} {
		if !(p >= 0 && p <= 1) {
			return errors.New("impair: probabilities must be in [0, 1]")
		}
	}
	if c.Delay < 0 || c.Jitter < 0 || c.ReorderDelay < 0 {
		return errors.New("impair: negative delay")
	}
	if c.Reorder > 0 && c.ReorderDelay == 0 {
		return errors.New("impair: Reorder needs a positive ReorderDelay")
	}
	if c.QueueLimit.Frames < 0 || c.QueueLimit.Bytes < 0 ||
		c.ECNThreshold.Frames < 0 || c.ECNThreshold.Bytes < 0 ||
		c.Capacity < 0 || c.MaxFrame < 0 {
		return errors.New("impair: negative size")
	}
	return nil
}

// Config returns the configuration the link was made with.
func (l *Link) Config() Config { return l.cfg }

// Stats returns the counters.
func (l *Link) Stats() Stats { return l.stats }

// Len is the number of frames in the link (queued or in flight), not
// counting those handed out by the last Dequeue.
func (l *Link) Len() int { return len(l.heap) }

// Room is how many more frames fit before Capacity is reached.
func (l *Link) Room() int { return l.capacity - len(l.heap) - len(l.held) }

// Queue returns the queue occupancy at now, in frames and bytes. It only
// looks, so it may be called with any time.
func (l *Link) Queue(now time.Time) (frames, bytes int) {
	t := l.ns(now)
	for k := range l.qLen {
		if d := l.queue[(l.qHead+k)%len(l.queue)]; d.at > t {
			frames++
			bytes += d.size
		}
	}
	return frames, bytes
}

// NextDeadline is the delivery time of the next frame, and false if the
// link is empty.
func (l *Link) NextDeadline() (time.Time, bool) {
	if len(l.heap) == 0 {
		return time.Time{}, false
	}
	return l.epoch.Add(time.Duration(l.heap[0].due)), true
}

func (l *Link) ns(now time.Time) int64 {
	if !l.started {
		l.epoch, l.started = now, true
	}
	return int64(now.Sub(l.epoch))
}

func (l *Link) chance(p float64) bool { return p > 0 && l.rng.Float64() < p }

// Enqueue offers frame to the link at time now; the link copies it.
func (l *Link) Enqueue(frame []byte, now time.Time) Outcome {
	t := l.ns(now)
	l.drain(t)
	l.stats.Arrived++
	if len(frame) > l.maxFrame {
		l.stats.Oversize++
		return Dropped
	}
	if l.chance(l.cfg.Loss) {
		l.stats.Lost++
		return Lost
	}
	out := l.enqueue(frame, t)
	if l.chance(l.cfg.Duplicate) {
		l.stats.Duplicated++
		out |= Duplicated | l.enqueue(frame, t)
	}
	return out
}

// enqueue runs one copy through the queue, rate limiter and delay.
func (l *Link) enqueue(frame []byte, t int64) Outcome {
	size := len(frame)
	q, e := l.cfg.QueueLimit, l.cfg.ECNThreshold
	if q.Frames > 0 && l.qLen >= q.Frames || q.Bytes > 0 && l.qBytes+size > q.Bytes {
		l.stats.TailDropped++
		return TailDropped
	}
	i, ok := l.alloc()
	if !ok {
		l.stats.Overflow++
		return Dropped
	}
	s := &l.slots[i]
	s.buf = s.buf[:size]
	copy(s.buf, frame)
	out := Queued
	if (e.Frames > 0 && l.qLen > e.Frames || e.Bytes > 0 && l.qBytes > e.Bytes) && markCE(s.buf) {
		l.stats.CEMarked++
		out |= Marked
	}

	dep := max(t, l.lastDep)
	if r := l.cfg.RateBps; r > 0 {
		bits := uint64(size)*8*1e9 + l.serRem
		dep += int64(bits / r)
		l.serRem = bits % r
	}
	l.lastDep = dep
	if dep > t { // an unlimited link serializes at once: nothing queues
		l.push(departure{dep, size})
		l.stats.QueueHighFrames = max(l.stats.QueueHighFrames, l.qLen)
		l.stats.QueueHighBytes = max(l.stats.QueueHighBytes, l.qBytes)
	}

	due := dep + int64(l.cfg.Delay)
	if j := l.cfg.Jitter; j > 0 {
		due += l.rng.Int64N(int64(j) + 1)
	}
	due = max(due, l.lastDue)
	l.lastDue = due
	if l.chance(l.cfg.Reorder) {
		due += int64(l.cfg.ReorderDelay)
		out |= Held
	}
	s.seq = l.seq
	l.heapPush(pending{due, l.seq, i})
	l.seq++
	return out
}

// Dequeue stores in out the frames whose delivery time is at or before now,
// up to len(out), and returns how many. They are views into the link's
// slots, valid until the next Dequeue.
func (l *Link) Dequeue(now time.Time, out [][]byte) int {
	l.free = append(l.free, l.held...)
	l.held = l.held[:0]
	if len(l.heap) == 0 {
		return 0 // without reading now: a caller may pass a zero time then
	}
	// The queue is left to Enqueue to drain: a driver may learn of an
	// arrival after a later Dequeue (kernel timestamps), and the arrival
	// must still see the queue as it was then.
	t := l.ns(now)
	n := 0
	for n < len(out) && len(l.heap) > 0 && l.heap[0].due <= t {
		p := l.heapPop()
		l.stats.MaxLate = max(l.stats.MaxLate, time.Duration(t-p.due))
		i := p.slot
		s := &l.slots[i]
		out[n] = s.buf
		n++
		l.held = append(l.held, i)
		l.stats.Delivered++
		l.stats.DeliveredBytes += uint64(len(s.buf))
		if s.seq < l.maxSeq {
			l.stats.Reordered++
		} else {
			l.maxSeq = s.seq + 1
		}
	}
	return n
}

// alloc takes a free slot, growing the pool by a chunk while under
// Capacity.
func (l *Link) alloc() (int32, bool) {
	if len(l.free) == 0 {
		n := min(slotChunk, l.capacity-len(l.slots))
		if n <= 0 {
			return 0, false
		}
		mem := make([]byte, n*l.maxFrame)
		for k := range n {
			l.free = append(l.free, int32(len(l.slots)))
			l.slots = append(l.slots, slot{buf: mem[k*l.maxFrame : k*l.maxFrame : (k+1)*l.maxFrame]})
		}
	}
	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	return i, true
}

// push appends a departure to the queue ring.
func (l *Link) push(d departure) {
	if l.qLen == len(l.queue) {
		grown := make([]departure, max(16, 2*len(l.queue)))
		for k := range l.qLen {
			grown[k] = l.queue[(l.qHead+k)%len(l.queue)]
		}
		l.queue, l.qHead = grown, 0
	}
	l.queue[(l.qHead+l.qLen)%len(l.queue)] = d
	l.qLen++
	l.qBytes += d.size
}

// drain removes from the queue the frames fully serialized by t.
func (l *Link) drain(t int64) {
	for l.qLen > 0 && l.queue[l.qHead].at <= t {
		l.qBytes -= l.queue[l.qHead].size
		l.qHead = (l.qHead + 1) % len(l.queue)
		l.qLen--
	}
}

func less(a, b *pending) bool {
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

func (l *Link) heapPush(p pending) {
	h := append(l.heap, p)
	for k := len(h) - 1; k > 0; {
		p := (k - 1) / 2
		if !less(&h[k], &h[p]) {
			break
		}
		h[k], h[p] = h[p], h[k]
		k = p
	}
	l.heap = h
}

func (l *Link) heapPop() pending {
	h := l.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for k := 0; ; {
		c := 2*k + 1
		if c >= len(h) {
			break
		}
		if c+1 < len(h) && less(&h[c+1], &h[c]) {
			c++
		}
		if !less(&h[c], &h[k]) {
			break
		}
		h[k], h[c] = h[c], h[k]
		k = c
	}
	l.heap = h
	return top
}

// markCE sets CE on an ECT(0)/ECT(1) IPv4 frame (optionally 802.1Q tagged)
// and patches the header checksum incrementally (RFC 1624, eqn. 3). It
// reports whether it marked; Not-ECT and already-CE frames stay as they are.
func markCE(f []byte) bool {
	off := 14
	if len(f) < off {
		return false
	}
	typ := binary.BigEndian.Uint16(f[12:])
	if typ == 0x8100 && len(f) >= 18 {
		typ, off = binary.BigEndian.Uint16(f[16:]), 18
	}
	if typ != 0x0800 || len(f) < off+20 || f[off]>>4 != 4 {
		return false
	}
	ip := f[off:]
	if ecn := ip[1] & 3; ecn == 0 || ecn == 3 {
		return false
	}
	old := binary.BigEndian.Uint16(ip[0:])
	ip[1] |= 3
	sum := uint32(^binary.BigEndian.Uint16(ip[10:])) + uint32(^old) + uint32(binary.BigEndian.Uint16(ip[0:]))
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return true
}
