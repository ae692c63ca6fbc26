package shm

import (
	"errors"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestAllocAlignment(t *testing.T) {
	a := NewAllocator(3, 1<<20) // unaligned base is trimmed
	for _, align := range []uint64{0, 1, 8, 64, 4096, 1 << 16} {
		off, err := a.Alloc(100, align)
		if err != nil {
			t.Fatal(err)
		}
		if off%max(align, MinAlign) != 0 || off < 3 || off+104 > 3+1<<20 {
			t.Errorf("align %d: offset %d", align, off)
		}
		if size, _ := a.SizeOf(off); size != 104 {
			t.Errorf("size %d, want 104", size)
		}
	}
	if _, err := a.Alloc(8, 24); err == nil {
		t.Error("non-power-of-two alignment accepted")
	}
	if _, err := a.Alloc(0, 8); err == nil {
		t.Error("zero size accepted")
	}
}

func TestAllocFragmentationAndCoalescing(t *testing.T) {
	const blk, n = 4096, 16
	a := NewAllocator(0, blk*n)
	offs := make([]uint64, n)
	for i := range offs {
		off, err := a.Alloc(blk, blk)
		if err != nil {
			t.Fatal(err)
		}
		offs[i] = off
	}
	if _, err := a.Alloc(8, 8); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("full allocator: %v", err)
	}
	// Free every other block: half the space is free but only in
	// block-sized holes.
	for i := 0; i < n; i += 2 {
		if err := a.Free(offs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if a.Available() != blk*n/2 || a.Largest() != blk || a.Spans() != n/2 {
		t.Fatalf("fragmented: avail %d largest %d spans %d", a.Available(), a.Largest(), a.Spans())
	}
	if _, err := a.Alloc(2*blk, 8); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("2-block alloc in 1-block holes: %v", err)
	}
	// Freeing the rest in an order that exercises merge-with-next,
	// merge-with-prev and merge-with-both.
	for _, i := range []int{1, 5, 3, 15, 13, 7, 9, 11} {
		if err := a.Free(offs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if a.Spans() != 1 || a.Largest() != blk*n || a.Available() != blk*n {
		t.Fatalf("after freeing all: spans %d largest %d", a.Spans(), a.Largest())
	}
	if off, err := a.Alloc(blk*n, 8); err != nil || off != 0 {
		t.Fatalf("whole-range alloc: %d %v", off, err)
	}
}

func TestAllocBadFree(t *testing.T) {
	a := NewAllocator(0, 1<<16)
	off, _ := a.Alloc(64, 64)
	if err := a.Free(off + 8); !errors.Is(err, ErrBadFree) {
		t.Errorf("interior free: %v", err)
	}
	if err := a.Free(1 << 20); !errors.Is(err, ErrBadFree) {
		t.Errorf("wild free: %v", err)
	}
	if err := a.Free(off); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(off); !errors.Is(err, ErrBadFree) {
		t.Errorf("double free: %v", err)
	}
	if a.Available() != 1<<16 || a.Spans() != 1 {
		t.Errorf("bad frees changed state: avail %d spans %d", a.Available(), a.Spans())
	}
}

// TestAllocRandom runs random allocations and frees against the invariants:
// live areas are aligned, inside the range and disjoint; free spans are
// sorted, disjoint, never adjacent, and account for every other byte.
func TestAllocRandom(t *testing.T) {
	const base, size = 64, 1 << 20
	a := NewAllocator(base, size)
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[uint64]uint64{} // off -> align
	for i := 0; i < 20000; i++ {
		if len(live) > 0 && rng.IntN(2) == 0 {
			for off := range live {
				if err := a.Free(off); err != nil {
					t.Fatal(err)
				}
				delete(live, off)
				break
			}
		} else {
			align := uint64(1) << rng.IntN(13)
			off, err := a.Alloc(1+rng.Uint64N(8192), align)
			if errors.Is(err, ErrNoSpace) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if off%max(align, MinAlign) != 0 {
				t.Fatalf("offset %d not aligned to %d", off, align)
			}
			live[off] = align
		}
		if i%97 == 0 {
			checkAllocInvariants(t, a, base, size)
		}
	}
	for off := range live {
		if err := a.Free(off); err != nil {
			t.Fatal(err)
		}
	}
	checkAllocInvariants(t, a, base, size)
	if a.Spans() != 1 || a.Available() != size {
		t.Fatalf("not fully coalesced: %d spans, %d available", a.Spans(), a.Available())
	}
}

func checkAllocInvariants(t *testing.T, a *Allocator, base, size uint64) {
	t.Helper()
	var all []span
	var freeSum uint64
	for i, s := range a.free {
		if s.size == 0 {
			t.Fatal("empty free span")
		}
		if i > 0 && a.free[i-1].off+a.free[i-1].size >= s.off {
			t.Fatalf("free spans %v and %v overlap, touch or are unsorted", a.free[i-1], s)
		}
		freeSum += s.size
		all = append(all, s)
	}
	if freeSum != a.avail {
		t.Fatalf("avail %d, free spans sum to %d", a.avail, freeSum)
	}
	for off, n := range a.used {
		all = append(all, span{off, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].off < all[j].off })
	var total uint64
	for i, s := range all {
		if s.off < base || s.off+s.size > base+size {
			t.Fatalf("span %v outside [%d, %d)", s, base, base+size)
		}
		if i > 0 && all[i-1].off+all[i-1].size > s.off {
			t.Fatalf("spans %v and %v overlap", all[i-1], s)
		}
		total += s.size
	}
	if total != size {
		t.Fatalf("free+used = %d, want %d", total, size)
	}
}
