package shm

import (
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestFdPassing(t *testing.T) {
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	defer unix.Close(b)
	r := newRegion(t, 4096)
	bell := newBell(t)
	if err := SendFds(a, []byte("hello"), r.Fd(), bell.Fd()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, fds, err := RecvFds(b, buf, 2)
	if err != nil || string(buf[:n]) != "hello" || len(fds) != 2 {
		t.Fatalf("RecvFds: %q %v %v", buf[:n], fds, err)
	}
	for _, fd := range fds {
		if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("received fd %d is not close-on-exec", fd)
		}
	}
	r2, err := Map(fds[0], 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	w, _ := r.Uint64(8)
	w2, _ := r2.Uint64(8)
	w.Store(42)
	if w2.Load() != 42 {
		t.Fatal("received region is not shared")
	}
	bell2, err := DoorbellFromFd(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	defer bell2.Close()
	bell2.Ring()
	if rung, _ := bell.Wait(0); !rung {
		t.Fatal("received doorbell is not shared")
	}

	// Plain messages work too, and a closed peer reads as EOF.
	SendFds(a, []byte("x"))
	if n, fds, err := RecvFds(b, buf, 2); n != 1 || len(fds) != 0 || err != nil {
		t.Fatalf("plain message: %d %v %v", n, fds, err)
	}
}

func TestFdPassingRefusesExtras(t *testing.T) {
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	defer unix.Close(b)
	bell := newBell(t)
	before := openFds(t)
	for _, c := range []struct {
		nfds, max int
		buf       int
	}{
		{3, 2, 8}, {2, 1, 8}, {1, 0, 8}, {20, 4, 8}, {1, 1, 2},
	} {
		fds := make([]int, c.nfds)
		for i := range fds {
			fds[i] = bell.Fd()
		}
		if err := SendFds(a, []byte("three"), fds...); err != nil {
			t.Fatal(err)
		}
		n, got, err := RecvFds(b, make([]byte, c.buf), c.max)
		if !errors.Is(err, ErrFds) || n != 0 || got != nil {
			t.Errorf("%d fds, max %d, buf %d: %d %v %v", c.nfds, c.max, c.buf, n, got, err)
		}
	}
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open before, %d after: refused fds leaked", before, after)
	}
	unix.Close(a)
	if _, _, err := RecvFds(b, make([]byte, 8), 1); err != io.EOF {
		t.Fatalf("closed peer: %v", err)
	}
}
