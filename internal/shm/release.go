package shm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReleasePages drops the whole pages within b from a shared mapping
// (MADV_REMOVE: the memfd's pages are freed, the next touch faults in a
// zero page) and returns how many bytes that covers. The partial pages
// at either end stay: they may hold a ring's header or a neighbour.
func ReleasePages(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	page := uintptr(PageSize)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := (base + page - 1) &^ (page - 1)
	end := (base + uintptr(len(b))) &^ (page - 1)
	if end <= start || unix.Madvise(b[start-base:end-base], unix.MADV_REMOVE) != nil {
		return 0
	}
	return uint64(end - start)
}
