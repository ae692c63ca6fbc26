package afxdp

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSGQueue is a multi-buffer Queue over Go memory: an RX ring of size
// descriptors and rxFrames RX chunks, for feeding recvSG descriptors the
// kernel would never write.
func fakeSGQueue(size, rxFrames uint32) (*Queue, *atomic.Uint32) {
	var prod, cons, flags atomic.Uint32
	q := &Queue{sg: true, umem: &umem{mem: make([]byte, (rxFrames+1)*frameSize), rxFrames: rxFrames}}
	q.rx = descRing{ring: ring{producer: &prod, consumer: &cons, flags: &flags, mask: size - 1, size: size},
		descs: make([]unix.XDPDesc, size)}
	// The fill ring: Recv gives the chunks it held back here; this fake
	// kernel never takes them, which only overwrites old entries.
	var fprod, fcons, fflags atomic.Uint32
	q.fill = addrRing{ring: ring{producer: &fprod, consumer: &fcons, flags: &fflags, mask: size - 1, size: size},
		addrs: make([]uint64, size)}
	q.held = make([]uint64, size)
	q.units = make([][]byte, unitBufs)
	for i := range q.units {
		q.units[i] = make([]byte, 0, maxUnit)
	}
	return q, &prod
}

// post puts descriptors on the fake RX ring as the kernel would.
func post(q *Queue, prod *atomic.Uint32, ds ...unix.XDPDesc) {
	p := prod.Load()
	for _, d := range ds {
		q.rx.descs[p&q.rx.mask] = d
		p++
	}
	prod.Store(p)
}

func chunkAt(i uint64) uint64 { return i*frameSize + unix.XDP_PACKET_HEADROOM }

// Pieces of one packet come out as one frame with their bytes in order;
// a single-chunk frame beside them comes out as a view.
func TestRecvSGReassembles(t *testing.T) {
	q, prod := fakeSGQueue(16, 8)
	for i := range q.umem.mem {
		q.umem.mem[i] = byte(i / frameSize) // each chunk holds its index
	}
	post(q, prod,
		unix.XDPDesc{Addr: chunkAt(0), Len: 1000, Options: unix.XDP_PKT_CONTD},
		unix.XDPDesc{Addr: chunkAt(1), Len: 1792, Options: unix.XDP_PKT_CONTD},
		unix.XDPDesc{Addr: chunkAt(2), Len: 10},
		unix.XDPDesc{Addr: chunkAt(3), Len: 60})
	frames := make([][]byte, 8)
	n, err := q.Recv(frames)
	if err != nil || n != 2 {
		t.Fatalf("Recv = %d, %v; want 2 frames", n, err)
	}
	want := append(append(bytes.Repeat([]byte{0}, 1000), bytes.Repeat([]byte{1}, 1792)...), bytes.Repeat([]byte{2}, 10)...)
	if !bytes.Equal(frames[0], want) || !bytes.Equal(frames[1], bytes.Repeat([]byte{3}, 60)) {
		t.Fatalf("frames of %d and %d bytes, wrong content", len(frames[0]), len(frames[1]))
	}
	if q.nheld != 4 || q.counters.RxErrors.Load() != 0 {
		t.Fatalf("held %d chunks, %d errors; want 4, 0", q.nheld, q.counters.RxErrors.Load())
	}
}

// A packet whose last piece is not on the ring yet stays there until it
// is; then it comes out whole.
func TestRecvSGWaitsForLastPiece(t *testing.T) {
	q, prod := fakeSGQueue(16, 8)
	post(q, prod, unix.XDPDesc{Addr: chunkAt(0), Len: 1792, Options: unix.XDP_PKT_CONTD})
	frames := make([][]byte, 8)
	if n, _ := q.Recv(frames); n != 0 {
		t.Fatalf("Recv = %d before the last piece, want 0", n)
	}
	post(q, prod, unix.XDPDesc{Addr: chunkAt(1), Len: 8})
	if n, _ := q.Recv(frames); n != 1 || len(frames[0]) != 1800 {
		t.Fatalf("Recv = %d (len %d), want one frame of 1800 bytes", n, len(frames[0]))
	}
}

// Bogus descriptors (a piece running past its chunk, an address outside
// the RX chunks, a packet longer than an IPv4 packet can be, a ring full
// of pieces with no end) are counted drops: never a panic, never a
// stall, and the frames after them still arrive.
func TestRecvSGBogusDescriptors(t *testing.T) {
	cases := []struct {
		name string
		ds   []unix.XDPDesc
	}{
		{"piece past its chunk", []unix.XDPDesc{
			{Addr: chunkAt(0), Len: 100, Options: unix.XDP_PKT_CONTD},
			{Addr: chunkAt(1), Len: frameSize}}},
		{"address outside the RX chunks", []unix.XDPDesc{
			{Addr: chunkAt(0), Len: 100, Options: unix.XDP_PKT_CONTD},
			{Addr: chunkAt(1 << 20), Len: 100}}},
		{"single frame past its chunk", []unix.XDPDesc{{Addr: chunkAt(2), Len: 0xffffffff}}},
		{"longer than an IPv4 packet", func() []unix.XDPDesc {
			var ds []unix.XDPDesc
			for i := range 40 { // 40 x 1792 > maxUnit
				ds = append(ds, unix.XDPDesc{Addr: chunkAt(uint64(i % 8)), Len: 1792, Options: unix.XDP_PKT_CONTD})
			}
			ds[len(ds)-1].Options = 0
			return ds
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, prod := fakeSGQueue(64, 8)
			post(q, prod, tc.ds...)
			post(q, prod, unix.XDPDesc{Addr: chunkAt(5), Len: 60})
			frames := make([][]byte, 8)
			n, _ := q.Recv(frames)
			if n != 1 || len(frames[0]) != 60 {
				t.Fatalf("Recv = %d frames, want only the good one", n)
			}
			if e := q.Stats().RxErrors; e != 1 {
				t.Fatalf("RxErrors = %d, want 1", e)
			}
			if q.rx.local != prod.Load() {
				t.Fatalf("consumer %d, producer %d: descriptors left behind", q.rx.local, prod.Load())
			}
		})
	}
	t.Run("ring full of pieces with no end", func(t *testing.T) {
		q, prod := fakeSGQueue(8, 8)
		for i := range 8 {
			post(q, prod, unix.XDPDesc{Addr: chunkAt(uint64(i)), Len: 1792, Options: unix.XDP_PKT_CONTD})
		}
		frames := make([][]byte, 8)
		if n, _ := q.Recv(frames); n != 0 || q.Stats().RxErrors != 1 || q.rx.local != prod.Load() {
			t.Fatalf("Recv = %d, RxErrors %d, consumer %d of %d: want the ring dropped", n, q.Stats().RxErrors, q.rx.local, prod.Load())
		}
	})
}

// Any sequence of descriptors the kernel could write, however wrong,
// leaves Recv without a panic: every frame it returns is at most maxUnit
// bytes and lies in UMEM or a unit buffer, the consumer never passes the
// producer, and every chunk it holds for the fill ring is an RX chunk.
func FuzzRecvSG(f *testing.F) {
	f.Add([]byte{0, 0, 0x40, 1, 0, 1, 1, 0, 7, 0, 0x10, 0})
	f.Add(bytes.Repeat([]byte{3, 0xff, 0xff, 1}, 20))
	f.Fuzz(fuzzRecvSGBody)
}

func fuzzRecvSGBody(t *testing.T, b []byte) {
	const size, rxFrames = 64, 8
	// A few hundred descriptors reach every state of a 64-entry ring;
	// longer inputs only slow down minimizing.
	b = b[:min(len(b), 2048)]
	q, prod := fakeSGQueue(size, rxFrames)
	frames := make([][]byte, 16)
	for len(b) >= 4 {
		// Each 4 bytes: chunk index (may be out of range), a length
		// in 16-byte steps, CONTD; then a Recv when the ring is full
		// or every few descriptors.
		d := unix.XDPDesc{Addr: uint64(b[0]%16)*frameSize + unix.XDP_PACKET_HEADROOM + uint64(b[3]&0xf0),
			Len: uint32(binary.LittleEndian.Uint16(b[1:3])) * 16}
		if b[3]&1 != 0 {
			d.Options = unix.XDP_PKT_CONTD
		}
		b = b[4:]
		if prod.Load()-q.rx.local < size {
			post(q, prod, d)
		}
		if d.Len%7 == 0 || prod.Load()-q.rx.local == size {
			n, _ := q.Recv(frames)
			checkSGFrames(t, q, frames[:n], prod.Load())
		}
	}
}

func checkSGFrames(t *testing.T, q *Queue, frames [][]byte, prod uint32) {
	t.Helper()
	if int32(prod-q.rx.local) < 0 {
		t.Fatalf("consumer %d passed producer %d", q.rx.local, prod)
	}
	for _, f := range frames {
		if len(f) > maxUnit {
			t.Fatalf("a %d-byte frame", len(f))
		}
	}
	for _, c := range q.held[:q.nheld] {
		if c%frameSize != 0 || c >= uint64(q.umem.rxFrames)*frameSize {
			t.Fatalf("holds chunk %#x, not an RX chunk", c)
		}
	}
}
