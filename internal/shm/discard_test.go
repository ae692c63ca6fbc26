package shm

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssShmem reads this process's resident shared memory (memfd pages it
// maps), in bytes.
func rssShmem(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssShmem:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no RssShmem in /proc/self/status")
	return 0
}

// A large region costs only the pages written, and Discard returns them.
func TestRegionSparseAndDiscard(t *testing.T) {
	const size = 8 << 30 // virtual only
	r, err := Create("sparse", size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := rssShmem(t)
	const area = 4 << 20
	b, _ := r.Bytes(1<<30, area)
	for i := range b {
		b[i] = 1
	}
	if got := rssShmem(t) - base; got < area {
		t.Fatalf("RssShmem grew %d bytes after writing %d", got, area)
	}
	// A partial page at each end stays.
	n, err := r.Discard(1<<30-100, area+200)
	if err != nil {
		t.Fatal(err)
	}
	if n != area {
		t.Fatalf("discarded %d bytes, want %d", n, area)
	}
	if got := rssShmem(t) - base; got > 64<<10 {
		t.Fatalf("RssShmem still %d bytes above the start after Discard", got)
	}
	if b[0] != 0 || b[area-1] != 0 {
		t.Fatal("discarded pages do not read as zero")
	}
	if n, err := r.Discard(5, 100); n != 0 || err != nil {
		t.Fatalf("Discard inside one page: %d, %v", n, err)
	}
	if _, err := r.Discard(size-10, 20); err == nil {
		t.Fatal("Discard past the end succeeded")
	}
}
