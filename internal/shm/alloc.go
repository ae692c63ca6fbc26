package shm

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

var (
	// ErrNoSpace means no free area is large enough (possibly only
	// because of fragmentation; see Allocator.Largest).
	ErrNoSpace = errors.New("shm: allocator out of space")
	// ErrBadFree means Free was given an offset that is not the start of a
	// live allocation: a double free or a wild offset.
	ErrBadFree = errors.New("shm: free of an offset that is not allocated")
)

// MinAlign is the smallest alignment and size granule the Allocator hands
// out, so every area can hold 64-bit atomics.
const MinAlign = 8

// Allocator carves the byte range [base, base+size) of a region into aligned
// areas with a first-fit free list (like TAS's packetmem.c). It is for the
// side that owns the region (the service): its bookkeeping lives in Go
// memory, out of reach of the peers that share the region. It is safe for
// concurrent use.
type Allocator struct {
	mu    sync.Mutex
	free  []span            // sorted by off, never adjacent (always coalesced)
	used  map[uint64]uint64 // start offset -> size of live allocations
	avail uint64            // sum of free span sizes
}

type span struct{ off, size uint64 }

// NewAllocator manages [base, base+size). base and size are trimmed inwards
// to MinAlign.
func NewAllocator(base, size uint64) *Allocator {
	end := base + size
	if end < base { // wrapped
		end = ^uint64(0)
	}
	start := alignUp(base, MinAlign)
	end &^= MinAlign - 1
	a := &Allocator{used: make(map[uint64]uint64)}
	if start < end {
		a.free = []span{{start, end - start}}
		a.avail = end - start
	}
	return a
}

// Alloc returns the offset of a free area of at least size bytes aligned to
// align (a power of two; values below MinAlign mean MinAlign). The size is
// rounded up to a multiple of MinAlign. The area's previous contents are not
// cleared.
func (a *Allocator) Alloc(size, align uint64) (uint64, error) {
	if align < MinAlign {
		align = MinAlign
	}
	if bits.OnesCount64(align) != 1 {
		return 0, fmt.Errorf("shm: alignment %d is not a power of two", align)
	}
	if size == 0 || size > 1<<62 {
		return 0, fmt.Errorf("shm: bad allocation size %d", size)
	}
	size = alignUp(size, MinAlign)

	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.free {
		off := alignUp(s.off, align)
		if off < s.off || off-s.off > s.size || s.size-(off-s.off) < size {
			continue
		}
		// Split s into [s.off, off) + [off, off+size) + [off+size, end),
		// keeping the non-empty outer parts free.
		lead := span{s.off, off - s.off}
		tail := span{off + size, s.off + s.size - (off + size)}
		var repl []span
		if lead.size > 0 {
			repl = append(repl, lead)
		}
		if tail.size > 0 {
			repl = append(repl, tail)
		}
		a.free = slices.Replace(a.free, i, i+1, repl...)
		a.used[off] = size
		a.avail -= size
		return off, nil
	}
	return 0, fmt.Errorf("%w: %d bytes aligned to %d (%d free)", ErrNoSpace, size, align, a.avail)
}

// Free returns the area that starts at off, merging it with free neighbours
// so that fragmentation heals once the neighbours are freed as well.
func (a *Allocator) Free(off uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	size, ok := a.used[off]
	if !ok {
		return fmt.Errorf("%w: %d", ErrBadFree, off)
	}
	delete(a.used, off)
	a.avail += size

	// i is the first free span after the freed area.
	i, _ := slices.BinarySearchFunc(a.free, off, func(s span, off uint64) int {
		switch {
		case s.off < off:
			return -1
		case s.off > off:
			return 1
		}
		return 0
	})
	s := span{off, size}
	mergePrev := i > 0 && a.free[i-1].off+a.free[i-1].size == s.off
	mergeNext := i < len(a.free) && s.off+s.size == a.free[i].off
	switch {
	case mergePrev && mergeNext:
		a.free[i-1].size += s.size + a.free[i].size
		a.free = slices.Delete(a.free, i, i+1)
	case mergePrev:
		a.free[i-1].size += s.size
	case mergeNext:
		a.free[i].off = s.off
		a.free[i].size += s.size
	default:
		a.free = slices.Insert(a.free, i, s)
	}
	return nil
}

// SizeOf returns the (rounded) size of the live allocation at off.
func (a *Allocator) SizeOf(off uint64) (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	size, ok := a.used[off]
	return size, ok
}

// Available returns the total number of free bytes.
func (a *Allocator) Available() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.avail
}

// Largest returns the size of the largest free span; Available much larger
// than Largest means the range is fragmented.
func (a *Allocator) Largest() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var m uint64
	for _, s := range a.free {
		m = max(m, s.size)
	}
	return m
}

// Spans returns the number of free spans (1 when fully coalesced).
func (a *Allocator) Spans() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.free)
}

func alignUp(x, align uint64) uint64 {
	y := (x + align - 1) &^ (align - 1)
	if y < x { // wrapped: report something that fails every fit test
		return ^uint64(0) &^ (align - 1)
	}
	return y
}
