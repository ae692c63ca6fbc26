package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CacheLine is the alignment used to keep words written by different
// processes on different cache lines (no false sharing).
const CacheLine = 64

// RequiredSeals are the seals a Region's memfd carries. Without
// F_SEAL_SHRINK a peer could truncate the file and every access to the
// vanished pages would raise SIGBUS in our process; F_SEAL_SEAL stops the
// creator from changing its mind later.
const RequiredSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

var (
	// ErrCorrupt is wrapped by every error caused by an impossible value
	// found in shared memory (written by a buggy or hostile peer).
	ErrCorrupt = errors.New("shm: corrupt shared state")
	// ErrBounds reports an offset/length outside a region or misaligned.
	ErrBounds = errors.New("shm: out of bounds or misaligned")
)

func init() {
	// Shared words are accessed with native-endian atomics while the ABI
	// is little-endian; refuse to run where the two differ.
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		panic("gotas/shm: the shared-memory ABI requires a little-endian host")
	}
}

// Region is a memfd mapped MAP_SHARED into this process. Close it only after
// every Producer, Consumer, RingReader, RingWriter and slice obtained from it
// is no longer used: they point into the mapping.
type Region struct {
	fd  int
	mem []byte
}

// Create makes a sealed memfd of size bytes (rounded up to whole pages by the
// kernel's mapping, but the file size is exactly size) and maps it. The name
// only shows up in /proc/<pid>/fd and /proc/<pid>/maps.
func Create(name string, size uint64) (*Region, error) {
	if size == 0 || size > math.MaxInt {
		return nil, fmt.Errorf("shm: bad region size %d", size)
	}
	fd, err := unix.MemfdCreate("gotas:"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("shm: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: ftruncate: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, RequiredSeals); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: seal memfd: %w", err)
	}
	r, err := mapFd(fd, size)
	if err != nil {
		unix.Close(fd)
	}
	return r, err
}

// Map maps a region fd received from a peer and takes ownership of fd (Close
// closes it, and so does a failed Map). It refuses a file that is not a
// sealed memfd or is smaller than minSize: an unsealed file could be shrunk
// under us.
func Map(fd int, minSize uint64) (*Region, error) {
	r, err := mapPeer(fd, minSize)
	if err != nil {
		unix.Close(fd)
	}
	return r, err
}

func mapPeer(fd int, minSize uint64) (*Region, error) {
	// F_GET_SEALS fails with EINVAL on anything that is not a memfd (or
	// other sealable shmem file), which rules out regular files too.
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: peer fd is not a sealable memfd: %w", err)
	}
	if seals&(unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL) != unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL {
		return nil, fmt.Errorf("shm: peer memfd lacks F_SEAL_SHRINK|F_SEAL_SEAL (seals %#x)", seals)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shm: fstat: %w", err)
	}
	if st.Size <= 0 || uint64(st.Size) < minSize || uint64(st.Size) > math.MaxInt {
		return nil, fmt.Errorf("shm: peer region is %d bytes, need at least %d", st.Size, minSize)
	}
	return mapFd(fd, uint64(st.Size))
}

// mapFd maps fd; on failure the caller still owns fd.
func mapFd(fd int, size uint64) (*Region, error) {
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: mmap: %w", err)
	}
	return &Region{fd: fd, mem: mem}, nil
}

// Fd is the memfd, to be sent to a peer. It stays owned by the Region.
func (r *Region) Fd() int { return r.fd }

// Size is the region size in bytes.
func (r *Region) Size() uint64 { return uint64(len(r.mem)) }

// CloseFd closes the region's fd and keeps the mapping, for a region
// whose mapping may still be in use but that no peer will be sent again.
func (r *Region) CloseFd() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// Close unmaps the region and closes its fd. The mapping must no longer be
// used by anyone in this process (see Region).
func (r *Region) Close() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	if cerr := r.CloseFd(); err == nil {
		err = cerr
	}
	return err
}

// Bytes returns the n bytes at off. The slice's capacity is n, so an append
// cannot spill into neighbouring areas.
func (r *Region) Bytes(off, n uint64) ([]byte, error) {
	if off > uint64(len(r.mem)) || n > uint64(len(r.mem))-off {
		return nil, fmt.Errorf("%w: [%d, +%d) in a %d-byte region", ErrBounds, off, n, len(r.mem))
	}
	return r.mem[off : off+n : off+n], nil
}

// Uint32 returns the shared 32-bit word at off, which must be 4-aligned.
// Only ever access shared words through the returned atomic: plain loads may
// be hoisted out of loops by the compiler and are not ordered against the
// peer's stores.
func (r *Region) Uint32(off uint64) (*atomic.Uint32, error) {
	b, err := r.aligned(off, 4)
	if err != nil {
		return nil, err
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[0])), nil
}

// Uint64 returns the shared 64-bit word at off, which must be 8-aligned
// (64-bit atomics fault or tear on unaligned addresses).
func (r *Region) Uint64(off uint64) (*atomic.Uint64, error) {
	b, err := r.aligned(off, 8)
	if err != nil {
		return nil, err
	}
	return (*atomic.Uint64)(unsafe.Pointer(&b[0])), nil
}

func (r *Region) aligned(off, size uint64) ([]byte, error) {
	b, err := r.Bytes(off, size)
	if err != nil {
		return nil, err
	}
	// The mapping is page aligned, so this is off%size; checking the
	// address says what we mean.
	if uintptr(unsafe.Pointer(&b[0]))%uintptr(size) != 0 {
		return nil, fmt.Errorf("%w: offset %d is not %d-aligned", ErrBounds, off, size)
	}
	return b, nil
}

// PageSize is the granule Discard works in.
var PageSize = uint64(unix.Getpagesize())

// Discard gives the memory behind the whole pages inside [off, off+n) back
// to the kernel: it punches a hole in the memfd (fallocate
// FALLOC_FL_PUNCH_HOLE, the file size is kept), so the pages read as zero
// and cost nothing until they are written again. Partial pages at either
// end are left alone, since they may belong to a neighbouring area. Every
// process that maps the region sees the zeroes, so discard only an area no
// one uses (a freed ring). It returns the bytes discarded.
func (r *Region) Discard(off, n uint64) (uint64, error) {
	if off > uint64(len(r.mem)) || n > uint64(len(r.mem))-off {
		return 0, fmt.Errorf("%w: discard [%d, +%d) in a %d-byte region", ErrBounds, off, n, len(r.mem))
	}
	start := (off + PageSize - 1) &^ (PageSize - 1)
	end := (off + n) &^ (PageSize - 1)
	if end <= start {
		return 0, nil
	}
	err := unix.Fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(start), int64(end-start))
	if err != nil {
		return 0, fmt.Errorf("shm: punch hole [%d, %d): %w", start, end, err)
	}
	return end - start, nil
}
