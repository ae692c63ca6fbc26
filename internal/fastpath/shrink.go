package fastpath

import "gotas/internal/shm"

// Idle receive rings give their memory back. A ring's pages become
// resident as the stream moves through it, so a connection that once
// carried a ring's worth of bytes would hold the whole ring for good:
// 100,000 such connections, 25 GiB. The core sweeps its flows a batch at
// a time; a flow whose RX ring has been empty (everything delivered was
// read) and untouched for a whole sweep round has its data pages dropped
// from the memfd (MADV_REMOVE). The core is the ring's only writer and
// writes only in order from rxHead, so nothing is lost: the next byte
// written faults in a fresh zero page. The application reads only what
// is between its tail and our head, which is nothing. Out-of-order data
// lies beyond rxHead, so a flow holding any is left alone.
const (
	// shrinkSweepNs is the time between sweeps; shrinkBatch how many
	// flow ids one sweep examines (131,072 ids every 12.8 s).
	shrinkSweepNs = 100_000_000
	shrinkBatch   = 1024
)

// sweepIdleRings examines the next batch of flow ids.
func (e *Engine) sweepIdleRings() {
	if e.now < e.shrinkAt {
		return
	}
	e.shrinkAt = e.now + shrinkSweepNs
	n := uint32(len(e.fs.hot))
	for range min(shrinkBatch, n) {
		id := e.shrinkNext
		e.shrinkNext = (id + 1) % n
		f := &e.fs.hot[id]
		if f.flags&fAlive == 0 || e.fs.pub[id].Load() != uint64(f.handle) {
			continue
		}
		c := &e.fs.cold[id]
		idle := c.rx.Tail.Load() == f.rxHead && c.ooo.Empty() && f.rxHead == c.rxSweepHead
		c.rxSweepHead = f.rxHead
		if !idle {
			c.rxShrunk = false
			continue
		}
		if !c.rxShrunk {
			c.rxShrunk = true
			e.stats.ringBytesReleased.Add(shm.ReleasePages(c.rx.Data))
		}
	}
}
