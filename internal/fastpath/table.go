package fastpath

import (
	"sync/atomic"

	"gotas/internal/wire"
)

// FlowKey is a connection's 4-tuple as seen from the local side.
type FlowKey struct {
	LocalIP, RemoteIP     wire.Addr4
	LocalPort, RemotePort uint16
}

// Hash mixes the 4-tuple (a 64-bit multiply-xorshift; the table verifies
// the key on every hit, so collisions cost a probe, not correctness).
func (k FlowKey) Hash() uint32 {
	a := uint64(k.LocalIP[0])<<24 | uint64(k.LocalIP[1])<<16 | uint64(k.LocalIP[2])<<8 | uint64(k.LocalIP[3])
	b := uint64(k.RemoteIP[0])<<24 | uint64(k.RemoteIP[1])<<16 | uint64(k.RemoteIP[2])<<8 | uint64(k.RemoteIP[3])
	x := a<<32 | b
	x ^= (uint64(k.LocalPort)<<16 | uint64(k.RemotePort)) * 0x9e3779b97f4a7c15
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}

// FlowTable maps 4-tuples to flow ids without locks. Each entry is one
// atomic uint64, hash<<32 | (id+1); 0 is empty and tombstone marks a
// removed entry that lookups probe past and inserts reuse.
//
// Writers: the slow path inserts (after it has fully written the flow's
// state: the atomic store of the entry is the release that publishes it),
// and the owning core removes. Both use compare-and-swap, so they never
// overwrite each other. Readers (the cores) load entries atomically and
// confirm the hit by comparing the 4-tuple stored in the flow state (the
// key check function), so a hash collision or a concurrent removal is
// harmless.
//
// Ids are reused only after the owning core removed the entry itself and
// then reported the flow gone: at that point no lookup on that core can
// still hold the id (the core is single-threaded), which is the grace
// period; no epochs are needed.
type FlowTable struct {
	slots []atomic.Uint64
	mask  uint32
	// KeyOf returns the key stored in flow id's state; set once before use.
	KeyOf func(id uint32) *FlowKey
}

const tombstone = ^uint64(0)

// NewFlowTable makes a table for up to maxFlows flows (sized at four times
// that, rounded up to a power of two, to keep probe chains short).
func NewFlowTable(maxFlows int) *FlowTable {
	n := 64
	for n < 4*maxFlows {
		n <<= 1
	}
	return &FlowTable{slots: make([]atomic.Uint64, n), mask: uint32(n - 1)}
}

// Lookup returns the id of key k, whose hash is h.
func (t *FlowTable) Lookup(h uint32, k *FlowKey) (uint32, bool) {
	for i, p := uint32(0), h&t.mask; i <= t.mask; i, p = i+1, (p+1)&t.mask {
		e := t.slots[p].Load()
		if e == 0 {
			return 0, false
		}
		if e != tombstone && uint32(e>>32) == h && *t.KeyOf(uint32(e) - 1) == *k {
			return uint32(e) - 1, true
		}
	}
	return 0, false
}

// Insert publishes id under hash h. The caller guarantees the key is not
// already present. It reports false if the table is full.
func (t *FlowTable) Insert(h, id uint32) bool {
	v := uint64(h)<<32 | uint64(id+1)
	for i, p := uint32(0), h&t.mask; i <= t.mask; i, p = i+1, (p+1)&t.mask {
		e := t.slots[p].Load()
		if (e == 0 || e == tombstone) && t.slots[p].CompareAndSwap(e, v) {
			return true
		}
	}
	return false
}

// Reclaim turns the tombstones at the end of the probe run that h starts
// into empty slots again, so that lookup misses stop at the run's real end
// instead of probing every slot a removed flow ever held. Only the slow
// path, the table's one inserter, may call it: an empty slot follows the
// run, and no entry can be inserted behind it meanwhile, so no key beyond
// the cleared slots is cut off from its home. Cores keep removing
// concurrently; they only turn entries into tombstones, which CAS
// respects.
func (t *FlowTable) Reclaim(h uint32) {
	p, found := h&t.mask, false
	for range t.mask + 1 {
		if found = t.slots[p].Load() == 0; found {
			break
		}
		p = (p + 1) & t.mask
	}
	for found {
		p = (p - 1) & t.mask
		if !t.slots[p].CompareAndSwap(tombstone, 0) {
			return
		}
	}
}

// Remove deletes the entry for (h, id), reporting whether it was found.
func (t *FlowTable) Remove(h, id uint32) bool {
	v := uint64(h)<<32 | uint64(id+1)
	for i, p := uint32(0), h&t.mask; i <= t.mask; i, p = i+1, (p+1)&t.mask {
		e := t.slots[p].Load()
		if e == 0 {
			return false
		}
		if e == v && t.slots[p].CompareAndSwap(v, tombstone) {
			return true
		}
	}
	return false
}
