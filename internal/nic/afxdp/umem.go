package afxdp

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// frameSize is the UMEM chunk size. 2048 is the smallest the kernel
	// accepts in aligned mode and leaves 2048-256 = 1792 bytes for a
	// received frame, enough for nic.MaxFrame.
	frameSize = 2048

	// txOffset is where Send puts a frame inside its chunk. Copy-mode RX
	// lands at chunk+XDP_PACKET_HEADROOM too, and the gap leaves room for
	// AF_XDP TX metadata (checksum offload) in front of the frame later.
	txOffset = unix.XDP_PACKET_HEADROOM
)

// umem is one queue's packet memory: frameCount chunks of frameSize bytes.
// The first rxFrames chunks circulate fill -> RX -> caller -> fill, the
// rest are TX frames: free list -> TX -> completion -> free list. Each
// queue owns its UMEM, so queues share nothing.
type umem struct {
	mem      []byte
	rxFrames uint32
	txFrames uint32
}

func newUmem(rxFrames, txFrames uint32) (*umem, error) {
	size := int(rxFrames+txFrames) * frameSize
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("afxdp: mmap UMEM of %d bytes: %w", size, err)
	}
	return &umem{mem: mem, rxFrames: rxFrames, txFrames: txFrames}, nil
}

// register makes mem the UMEM of the XSK fd. x/sys has no helper for
// XDP_UMEM_REG, so this is a raw setsockopt.
func (u *umem) register(fd int) error {
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
		Len:  uint64(len(u.mem)),
		Size: frameSize,
	}
	err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
	if err == unix.ENOBUFS || err == unix.EPERM || err == unix.ENOMEM {
		return fmt.Errorf("afxdp: XDP_UMEM_REG: %w (RLIMIT_MEMLOCK too low and no CAP_IPC_LOCK?)", err)
	}
	if err != nil {
		return fmt.Errorf("afxdp: XDP_UMEM_REG: %w", err)
	}
	return nil
}

func (u *umem) free() {
	if u.mem != nil {
		_ = unix.Munmap(u.mem)
		u.mem = nil
	}
}

// raiseMemlock lifts RLIMIT_MEMLOCK once per process: UMEM pages count
// against it unless the process has CAP_IPC_LOCK, and the usual 8 MiB
// default holds a single queue's UMEM at most. Failure is not fatal;
// XDP_UMEM_REG reports the real problem.
var raiseMemlock = sync.OnceFunc(func() {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) != nil || lim.Cur == unix.RLIM_INFINITY {
		return
	}
	if unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}) != nil {
		lim.Cur = lim.Max // unprivileged: at least use the hard limit
		_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim)
	}
})

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}
