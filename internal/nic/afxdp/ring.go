package afxdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one single-producer single-consumer ring shared with the kernel.
// The producer and consumer words are written by one side and read by the
// other concurrently, so they are only ever touched atomically (the
// atomics order the entry writes/reads against the index update). Each side
// keeps a private copy of its own index and a cached copy of the other's,
// re-reading the shared word only when the cache says the ring looks full
// (producer side) or empty (consumer side).
type ring struct {
	producer *atomic.Uint32
	consumer *atomic.Uint32
	flags    *atomic.Uint32
	mask     uint32
	size     uint32
	local    uint32 // our own index: producer on fill/tx, consumer on rx/comp
	cached   uint32 // last seen value of the other side's index
	mem      []byte // the mmapped region, kept for munmap
}

func newRing(mem []byte, off unix.XDPRingOffset, size uint32, producerSide bool) ring {
	r := ring{
		producer: (*atomic.Uint32)(unsafe.Pointer(&mem[off.Producer])),
		consumer: (*atomic.Uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags:    (*atomic.Uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:     size - 1,
		size:     size,
		mem:      mem,
	}
	if producerSide {
		r.local, r.cached = r.producer.Load(), r.consumer.Load()
	} else {
		r.local, r.cached = r.consumer.Load(), r.producer.Load()
	}
	return r
}

// free returns how many entries a producer may write, at most want.
func (r *ring) free(want uint32) uint32 {
	n := r.cached + r.size - r.local
	if n < want {
		r.cached = r.consumer.Load()
		n = r.cached + r.size - r.local
	}
	return min(n, want)
}

// submit publishes n entries written after local.
func (r *ring) submit(n uint32) {
	r.local += n
	r.producer.Store(r.local)
}

// avail returns how many entries a consumer may read, at most want.
func (r *ring) avail(want uint32) uint32 {
	n := r.cached - r.local
	if n < want {
		r.cached = r.producer.Load()
		n = r.cached - r.local
	}
	return min(n, want)
}

// release hands n read entries back to the producer.
func (r *ring) release(n uint32) {
	r.local += n
	r.consumer.Store(r.local)
}

// needWakeup reports whether the kernel asked for a syscall to make
// progress on this ring (XDP_USE_NEED_WAKEUP).
func (r *ring) needWakeup() bool {
	return r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0
}

// addrRing carries UMEM addresses: the fill and completion rings.
type addrRing struct {
	ring
	addrs []uint64
}

// descRing carries packet descriptors: the RX and TX rings.
type descRing struct {
	ring
	descs []unix.XDPDesc
}

func (r *addrRing) at(i uint32) *uint64       { return &r.addrs[i&r.mask] }
func (r *descRing) at(i uint32) *unix.XDPDesc { return &r.descs[i&r.mask] }

// mapRing mmaps one ring of the socket fd and lays its entries out.
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, entry uintptr) ([]byte, error) {
	length := int(off.Desc) + int(size)*int(entry)
	return unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
}

func newAddrRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, producerSide bool) (addrRing, error) {
	mem, err := mapRing(fd, pgoff, off, size, 8)
	if err != nil {
		return addrRing{}, err
	}
	return addrRing{
		ring:  newRing(mem, off, size, producerSide),
		addrs: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off.Desc])), size),
	}, nil
}

func newDescRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, producerSide bool) (descRing, error) {
	mem, err := mapRing(fd, pgoff, off, size, unsafe.Sizeof(unix.XDPDesc{}))
	if err != nil {
		return descRing{}, err
	}
	return descRing{
		ring:  newRing(mem, off, size, producerSide),
		descs: unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&mem[off.Desc])), size),
	}, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}
