package shm

import (
	"errors"
	"math"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func newRegion(tb testing.TB, size uint64) *Region {
	tb.Helper()
	r, err := Create(tb.Name(), size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

func TestRegionCreateIsSealedAndShared(t *testing.T) {
	r := newRegion(t, 10000)
	if r.Size() != 10000 {
		t.Fatalf("size %d", r.Size())
	}
	seals, err := unix.FcntlInt(uintptr(r.Fd()), unix.F_GET_SEALS, 0)
	if err != nil || seals&RequiredSeals != RequiredSeals {
		t.Fatalf("seals %#x, %v", seals, err)
	}
	if err := unix.Ftruncate(r.Fd(), 4096); err == nil {
		t.Fatal("shrinking a sealed region succeeded")
	}

	// A second mapping of the same memfd sees the same bytes and words.
	fd, err := unix.Dup(r.Fd())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Map(fd, 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	w, err := r.Uint64(9992)
	if err != nil {
		t.Fatal(err)
	}
	w.Store(0x1122334455667788)
	b, err := r2.Bytes(9992, 8)
	if err != nil {
		t.Fatal(err)
	}
	// Little-endian in memory, as docs/ABI.md requires.
	if b[0] != 0x88 || b[7] != 0x11 {
		t.Fatalf("bytes % x", b)
	}
}

func TestRegionMapRefuses(t *testing.T) {
	// Too small.
	r := newRegion(t, 4096)
	fd, _ := unix.Dup(r.Fd())
	if _, err := Map(fd, 4097); err == nil {
		t.Fatal("mapped a region smaller than required")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		t.Fatal("failed Map did not close the fd")
	}

	// Unsealed memfd: the peer could shrink it under us.
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	unix.Ftruncate(fd, 4096)
	if _, err := Map(fd, 0); err == nil {
		t.Fatal("mapped an unsealed memfd")
	}

	// Not a memfd at all.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(4096)
	fd, _ = unix.Dup(int(f.Fd()))
	f.Close()
	if _, err := Map(fd, 0); err == nil {
		t.Fatal("mapped a regular file")
	}
}

func TestRegionBounds(t *testing.T) {
	r := newRegion(t, 4096)
	for _, c := range []struct {
		off, n uint64
		ok     bool
	}{
		{0, 4096, true}, {4096, 0, true}, {4095, 1, true},
		{4096, 1, false}, {4097, 0, false}, {1, math.MaxUint64, false}, {math.MaxUint64, 2, false},
	} {
		b, err := r.Bytes(c.off, c.n)
		if (err == nil) != c.ok {
			t.Errorf("Bytes(%d, %d): %v", c.off, c.n, err)
		}
		if err == nil && (uint64(len(b)) != c.n || uint64(cap(b)) != c.n) {
			t.Errorf("Bytes(%d, %d): len %d cap %d", c.off, c.n, len(b), cap(b))
		}
		if err != nil && !errors.Is(err, ErrBounds) {
			t.Errorf("error %v is not ErrBounds", err)
		}
	}
	if _, err := r.Uint32(4092); err != nil {
		t.Error(err)
	}
	for _, off := range []uint64{2, 4093, 4096} {
		if _, err := r.Uint32(off); err == nil {
			t.Errorf("Uint32(%d) accepted", off)
		}
	}
	if _, err := r.Uint64(4088); err != nil {
		t.Error(err)
	}
	for _, off := range []uint64{4, 4092, 4089} {
		if _, err := r.Uint64(off); err == nil {
			t.Errorf("Uint64(%d) accepted", off)
		}
	}
}
