package shm

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
)

// Byte ring header layout (docs/ABI.md, "Byte ring"). The two positions are
// free-running byte counts on separate cache lines; the data area follows
// the header and is a power of two long, so position & (size-1) is the
// offset and the uint32 wrap-around is harmless.
const (
	RingMagic      = 0x42535447 // "GTSB" as little-endian bytes
	RingVersion    = 1
	RingHeaderSize = 3 * CacheLine

	rOffMagic   = 0x00
	rOffVersion = 0x04
	rOffSize    = 0x08
	rOffHead    = 1 * CacheLine // write position, stored by the writer
	rOffTail    = 2 * CacheLine // read position, stored by the reader

	// MinRingSize and MaxRingSize bound the data area; at most 2^31 keeps
	// head-tail (mod 2^32) unambiguous.
	MinRingSize = 8
	MaxRingSize = 1 << 31
)

// RingAreaSize returns the bytes a byte ring with size data bytes occupies,
// header included.
func RingAreaSize(size uint32) uint64 { return RingHeaderSize + uint64(size) }

func checkRingParams(off uint64, size uint32) error {
	switch {
	case off%CacheLine != 0:
		return fmt.Errorf("%w: ring offset %d is not %d-aligned", ErrBounds, off, CacheLine)
	case bits.OnesCount32(size) != 1 || size < MinRingSize || size > MaxRingSize:
		return fmt.Errorf("shm: ring size %d is not a power of two in [%d, %d]", size, MinRingSize, uint64(MaxRingSize))
	}
	return nil
}

// InitRing formats a byte ring at off with size data bytes: writes the
// header and zeroes both positions. Only the creator calls it, before either
// end attaches.
func InitRing(r *Region, off uint64, size uint32) error {
	if err := checkRingParams(off, size); err != nil {
		return err
	}
	b, err := r.Bytes(off, RingAreaSize(size))
	if err != nil {
		return err
	}
	clear(b[:RingHeaderSize])
	binary.LittleEndian.PutUint32(b[rOffMagic:], RingMagic)
	binary.LittleEndian.PutUint32(b[rOffVersion:], RingVersion)
	binary.LittleEndian.PutUint32(b[rOffSize:], size)
	return nil
}

type byteRing struct {
	head, tail *atomic.Uint32
	data       []byte
	mask       uint32
	off        uint64
	err        error // sticky
}

func openRing(r *Region, off uint64, size uint32) (byteRing, error) {
	if err := checkRingParams(off, size); err != nil {
		return byteRing{}, err
	}
	b, err := r.Bytes(off, RingAreaSize(size))
	if err != nil {
		return byteRing{}, err
	}
	le := binary.LittleEndian
	if le.Uint32(b[rOffMagic:]) != RingMagic || le.Uint32(b[rOffVersion:]) != RingVersion ||
		le.Uint32(b[rOffSize:]) != size {
		return byteRing{}, fmt.Errorf("%w: ring header at %d does not match size %d", ErrCorrupt, off, size)
	}
	br := byteRing{data: b[RingHeaderSize:], mask: size - 1, off: off}
	br.head, _ = r.Uint32(off + rOffHead)
	br.tail, _ = r.Uint32(off + rOffTail)
	return br, nil
}

// used validates a head/tail pair read (partly) from shared memory.
func (br *byteRing) used(head, tail uint32) (uint32, error) {
	n := head - tail
	if n > br.mask+1 {
		br.err = fmt.Errorf("%w: ring at %d: head %d, tail %d, size %d", ErrCorrupt, br.off, head, tail, br.mask+1)
		return 0, br.err
	}
	return n, nil
}

// span returns the n bytes starting at position pos as one or two slices
// (two when they wrap past the end of the data area). n <= size.
func (br *byteRing) span(pos, n uint32) (a, b []byte) {
	start := pos & br.mask
	first := min(n, br.mask+1-start)
	return br.data[start : start+first : start+first], br.data[: n-first : n-first]
}

// RingWriter appends to a byte ring. Not safe for concurrent use.
type RingWriter struct {
	br   byteRing
	pos  uint32 // our head
	peer uint32 // last tail read (and validated)
}

// NewRingWriter attaches to a ring formatted by InitRing.
func NewRingWriter(r *Region, off uint64, size uint32) (*RingWriter, error) {
	br, err := openRing(r, off, size)
	if err != nil {
		return nil, err
	}
	w := &RingWriter{br: br, pos: br.head.Load(), peer: br.tail.Load()}
	if _, err := w.br.used(w.pos, w.peer); err != nil {
		return nil, err
	}
	return w, nil
}

// Size returns the data area size in bytes.
func (w *RingWriter) Size() int { return int(w.br.mask + 1) }

// Writable returns the free space as up to two slices (b is non-empty only
// when the space wraps). Fill a prefix of a then b and Commit it.
func (w *RingWriter) Writable() (a, b []byte, err error) {
	if w.br.err != nil {
		return nil, nil, w.br.err
	}
	tail := w.br.tail.Load()
	used, err := w.br.used(w.pos, tail)
	if err != nil {
		return nil, nil, err
	}
	w.peer = tail
	a, b = w.br.span(w.pos, w.br.mask+1-used)
	return a, b, nil
}

// Commit publishes n bytes written into the slices from Writable with one
// store of the head.
func (w *RingWriter) Commit(n int) error {
	if w.br.err != nil {
		return w.br.err
	}
	if n <= 0 {
		return nil
	}
	if uint(n) > uint(w.br.mask+1-(w.pos-w.peer)) {
		return fmt.Errorf("%w: commit of %d bytes exceeds the writable space", ErrUsage, n)
	}
	w.pos += uint32(n)
	w.br.head.Store(w.pos)
	return nil
}

// Empty reports whether the reader has consumed everything written, and
// the head it compared.
func (w *RingWriter) Empty() (bool, uint32) { return w.br.tail.Load() == w.pos, w.pos }

// Release gives the data area's whole pages back (ReleasePages). Only
// the writer may call it, and only when the ring is Empty: the reader
// reads nothing, and the next Write faults in fresh pages.
func (w *RingWriter) Release() uint64 { return ReleasePages(w.br.data) }

// Write copies as much of p as fits and commits it. It never blocks; it
// returns 0 when the ring is full.
func (w *RingWriter) Write(p []byte) (int, error) {
	a, b, err := w.Writable()
	if err != nil {
		return 0, err
	}
	n := copy(a, p)
	n += copy(b, p[n:])
	return n, w.Commit(n)
}

// RingReader consumes from a byte ring. Not safe for concurrent use.
type RingReader struct {
	br   byteRing
	pos  uint32 // our tail
	peer uint32 // last head read (and validated)
}

// NewRingReader attaches to a ring formatted by InitRing.
func NewRingReader(r *Region, off uint64, size uint32) (*RingReader, error) {
	br, err := openRing(r, off, size)
	if err != nil {
		return nil, err
	}
	rd := &RingReader{br: br, pos: br.tail.Load(), peer: br.head.Load()}
	if _, err := rd.br.used(rd.peer, rd.pos); err != nil {
		return nil, err
	}
	return rd, nil
}

// Size returns the data area size in bytes.
func (r *RingReader) Size() int { return int(r.br.mask + 1) }

// Readable returns the unread bytes as up to two slices (b is non-empty only
// when they wrap). They alias shared memory the writer may still modify if
// it is hostile. Consume what was used.
func (r *RingReader) Readable() (a, b []byte, err error) {
	if r.br.err != nil {
		return nil, nil, r.br.err
	}
	head := r.br.head.Load()
	n, err := r.br.used(head, r.pos)
	if err != nil {
		return nil, nil, err
	}
	r.peer = head
	a, b = r.br.span(r.pos, n)
	return a, b, nil
}

// Consume hands n read bytes back to the writer with one store of the tail.
func (r *RingReader) Consume(n int) error {
	if r.br.err != nil {
		return r.br.err
	}
	if n <= 0 {
		return nil
	}
	if uint(n) > uint(r.peer-r.pos) {
		return fmt.Errorf("%w: consume of %d bytes exceeds the readable data", ErrUsage, n)
	}
	r.pos += uint32(n)
	r.br.tail.Store(r.pos)
	return nil
}

// Read copies up to len(p) unread bytes into p and consumes them. It never
// blocks; it returns 0 when the ring is empty.
func (r *RingReader) Read(p []byte) (int, error) {
	a, b, err := r.Readable()
	if err != nil {
		return 0, err
	}
	n := copy(p, a)
	n += copy(p[n:], b)
	return n, r.Consume(n)
}
