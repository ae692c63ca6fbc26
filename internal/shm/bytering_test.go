package shm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

func testRing(tb testing.TB, size uint32) (*Region, *RingWriter, *RingReader) {
	tb.Helper()
	r := newRegion(tb, CacheLine+RingAreaSize(size))
	if err := InitRing(r, CacheLine, size); err != nil {
		tb.Fatal(err)
	}
	w, err := NewRingWriter(r, CacheLine, size)
	if err != nil {
		tb.Fatal(err)
	}
	rd, err := NewRingReader(r, CacheLine, size)
	if err != nil {
		tb.Fatal(err)
	}
	return r, w, rd
}

func TestRingParams(t *testing.T) {
	r := newRegion(t, 1<<16)
	for _, c := range []struct {
		off  uint64
		size uint32
		ok   bool
	}{
		{0, 8, true}, {64, 4096, true}, {0, 1 << 15, true},
		{0, 4, false}, {0, 100, false}, {32, 64, false}, {0, 1 << 16, false},
	} {
		if err := InitRing(r, c.off, c.size); (err == nil) != c.ok {
			t.Errorf("InitRing(%d, %d): %v", c.off, c.size, err)
		}
	}
	if err := InitRing(r, 0, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRingReader(r, 0, 128); !errors.Is(err, ErrCorrupt) {
		t.Errorf("size mismatch: %v", err)
	}
	b, _ := r.Bytes(0, 12)
	if string(b[:4]) != "GTSB" || b[4] != 1 || b[8] != 64 {
		t.Errorf("header % x", b)
	}
}

func TestRingWrap(t *testing.T) {
	_, w, rd := testRing(t, 16)
	a, b, err := w.Writable()
	if len(a) != 16 || len(b) != 0 || err != nil {
		t.Fatalf("empty ring writable %d+%d %v", len(a), len(b), err)
	}
	w.Write([]byte("0123456789"))
	if a, b, _ := rd.Readable(); string(a) != "0123456789" || len(b) != 0 {
		t.Fatalf("readable %q %q", a, b)
	}
	if err := rd.Consume(11); !errors.Is(err, ErrUsage) {
		t.Errorf("over-consume: %v", err)
	}
	rd.Consume(8)
	// 2 unread bytes at positions 8..9: free space wraps.
	a, b, _ = w.Writable()
	if len(a) != 6 || len(b) != 8 {
		t.Fatalf("writable %d+%d, want 6+8", len(a), len(b))
	}
	if err := w.Commit(15); !errors.Is(err, ErrUsage) {
		t.Errorf("over-commit: %v", err)
	}
	copy(a, "abcdef")
	copy(b, "ghij")
	w.Commit(10)
	a, b, _ = rd.Readable()
	if string(a) != "89abcdef" || string(b) != "ghij" {
		t.Fatalf("readable %q %q", a, b)
	}
	buf := make([]byte, 20)
	if n, _ := rd.Read(buf); string(buf[:n]) != "89abcdefghij" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, err := rd.Read(buf); n != 0 || err != nil {
		t.Fatalf("read from empty: %d %v", n, err)
	}
	// Fill completely, then a full ring accepts nothing.
	if n, _ := w.Write(bytes.Repeat([]byte{'x'}, 20)); n != 16 {
		t.Fatalf("wrote %d into an empty 16-byte ring", n)
	}
	if n, err := w.Write([]byte{1}); n != 0 || err != nil {
		t.Fatalf("write to full ring: %d %v", n, err)
	}
}

func TestRingHostilePositions(t *testing.T) {
	for _, c := range []struct {
		name       string
		head, tail uint32
	}{
		{"head past size", 17, 0}, {"head behind tail", 5, 6}, {"wrapped", 3, 0xfffffff0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, w, rd := testRing(t, 16)
			rd.pos = c.tail
			rd.br.head.Store(c.head)
			if _, _, err := rd.Readable(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Readable: %v", err)
			}
			if n, err := rd.Read(make([]byte, 8)); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("sticky: %d %v", n, err)
			}
			w.pos = c.head
			w.br.tail.Store(c.tail)
			if _, _, err := w.Writable(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Writable: %v", err)
			}
			if err := w.Commit(1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("sticky: %v", err)
			}
		})
	}
}

func FuzzRingReader(f *testing.F) {
	f.Add(uint32(0), uint32(16))
	f.Add(uint32(0xfffffffa), uint32(6))
	f.Add(uint32(3), uint32(2))
	_, _, rd := testRing(f, 16)
	f.Fuzz(func(t *testing.T, tail, head uint32) {
		rd.br.err = nil
		rd.pos = tail
		rd.br.head.Store(head)
		a, b, err := rd.Readable()
		if err != nil {
			if head-tail <= 16 {
				t.Fatalf("tail %d head %d: %v", tail, head, err)
			}
			return
		}
		if uint32(len(a)+len(b)) != head-tail {
			t.Fatalf("tail %d head %d: %d+%d readable", tail, head, len(a), len(b))
		}
	})
}

func TestRingZeroAllocs(t *testing.T) {
	_, w, rd := testRing(t, 4096)
	buf := make([]byte, 1000)
	allocs := testing.AllocsPerRun(1000, func() {
		w.Write(buf)
		rd.Read(buf)
		a, _, _ := w.Writable()
		w.Commit(len(a) / 2)
		a, b, _ := rd.Readable()
		rd.Consume(len(a) + len(b))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

// TestRingStream pushes 4 MiB of pseudo-random bytes in random-sized
// pieces through a small ring between two goroutines.
func TestRingStream(t *testing.T) {
	const total = 4 << 20
	_, w, rd := testRing(t, 4096)
	src := make([]byte, total)
	gen := xorshift(9)
	gen.fill(src)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(11, 12))
		for off := 0; off < total; {
			n, err := w.Write(src[off:min(total, off+1+rng.IntN(3000))])
			if err != nil {
				werr = err
				return
			}
			off += n
			if n == 0 {
				pause(rng, 100000)
			}
		}
	})
	dst := make([]byte, 0, total)
	rng := rand.New(rand.NewPCG(13, 14))
	for len(dst) < total {
		a, b, err := rd.Readable()
		if err != nil {
			t.Fatal(err)
		}
		// Take a random prefix, exercising partial consumes.
		n := min(len(a)+len(b), rng.IntN(5000))
		if n == 0 {
			pause(rng, 100000)
			continue
		}
		dst = append(dst, a[:min(n, len(a))]...)
		dst = append(dst, b[:n-min(n, len(a))]...)
		if err := rd.Consume(n); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if !bytes.Equal(src, dst) {
		t.Fatal("stream corrupted")
	}
}
