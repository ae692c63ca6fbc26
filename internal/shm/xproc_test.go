package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cross-process test: the parent formats a region with two queues and a
// byte ring, re-executes the test binary as TestHelperProcess and hands it
// the memfd and two eventfds over a SOCK_SEQPACKET socketpair. Then both
// processes stream messages to each other through the queues, and the
// parent streams 64 MiB through the byte ring.

const (
	helperEnv = "GOTAS_SHM_HELPER"

	xSlot  = 64
	xSlots = 1024
	xRing  = 1 << 20
	xHello = "gotas-shm-xproc-v1"
	// Sender ids mixed into message contents so that a message cannot be
	// mistaken for one from the other direction.
	xParent = 0x5041
	xChild  = 0x4348
	xResult = 0xC4C
)

// Region layout shared by both processes.
const (
	xOffA    = 0                                      // parent -> child
	xOffB    = xOffA + QueueHeaderSize + xSlot*xSlots // child -> parent
	xOffRing = xOffB + QueueHeaderSize + xSlot*xSlots
	xSize    = xOffRing + RingHeaderSize + xRing
)

func xMsgs() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

func xBytes() int {
	if testing.Short() {
		return 8 << 20
	}
	return 64 << 20
}

func TestCrossProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("memfd and eventfd are Linux-only")
	}
	r := newRegion(t, xSize)
	for _, off := range []uint64{xOffA, xOffB} {
		if err := InitQueue(r, off, xSlot, xSlots); err != nil {
			t.Fatal(err)
		}
	}
	if err := InitRing(r, xOffRing, xRing); err != nil {
		t.Fatal(err)
	}
	bellA, bellB := newBell(t), newBell(t) // consumers: child, parent

	sock, childSock, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1",
		fmt.Sprintf("-test.short=%v", testing.Short()))
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cs := os.NewFile(uintptr(childSock), "sock")
	cmd.ExtraFiles = []*os.File{cs} // fd 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	childErr := make(chan error, 1)
	go func() { childErr <- cmd.Wait() }()
	fail := func(err error) {
		t.Helper()
		cancel()
		<-childErr
		t.Fatalf("%v\nchild output:\n%s", err, out.Bytes())
	}

	if err := SendFds(sock, []byte(xHello), r.Fd(), bellA.Fd(), bellB.Fd()); err != nil {
		fail(err)
	}
	p, err := NewProducer(r, xOffA, xSlot, xSlots, bellA)
	if err != nil {
		fail(err)
	}
	c, err := NewConsumer(r, xOffB, xSlot, xSlots, bellB)
	if err != nil {
		fail(err)
	}
	t0 := time.Now()
	if err := exchange(p, c, xParent, xChild, xMsgs()); err != nil {
		fail(err)
	}
	dq := time.Since(t0)

	w, err := NewRingWriter(r, xOffRing, xRing)
	if err != nil {
		fail(err)
	}
	t0 = time.Now()
	sum, err := ringSend(w, xBytes())
	if err != nil {
		fail(err)
	}
	// The child reports the checksum of what it received.
	var res [xSlot]byte
	for {
		ok, err := c.Pop(res[:])
		if err != nil {
			fail(err)
		}
		if ok {
			break
		}
		if err := c.Wait(time.Second); err != nil {
			fail(err)
		}
	}
	dr := time.Since(t0)
	le := binary.LittleEndian
	if le.Uint64(res[0:]) != xResult || le.Uint64(res[8:]) != uint64(xBytes()) || le.Uint32(res[16:]) != sum {
		fail(fmt.Errorf("child got %d bytes with crc %#x, sent %d with crc %#x",
			le.Uint64(res[8:]), le.Uint32(res[16:]), xBytes(), sum))
	}
	if err := <-childErr; err != nil {
		t.Fatalf("child: %v\n%s", err, out.Bytes())
	}
	t.Logf("queues: %d messages each way in %v (%.1f M msgs/s per direction); byte ring: %d MiB in %v (%.2f GB/s)",
		xMsgs(), dq.Round(time.Millisecond), float64(xMsgs())/dq.Seconds()/1e6,
		xBytes()>>20, dr.Round(time.Millisecond), float64(xBytes())/dr.Seconds()/1e9)
}

// TestHelperProcess is the child side of TestCrossProcess; it does nothing
// unless started by it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestCrossProcess")
	}
	if err := helper(); err != nil {
		t.Fatal(err)
	}
}

func helper() error {
	const sock = 3
	buf := make([]byte, 64)
	n, fds, err := RecvFds(sock, buf, 3)
	if err != nil {
		return err
	}
	if string(buf[:n]) != xHello || len(fds) != 3 {
		return fmt.Errorf("bad hello %q with %d fds", buf[:n], len(fds))
	}
	r, err := Map(fds[0], xSize)
	if err != nil {
		return err
	}
	defer r.Close()
	bellA, err := DoorbellFromFd(fds[1])
	if err != nil {
		return err
	}
	bellB, err := DoorbellFromFd(fds[2])
	if err != nil {
		return err
	}
	c, err := NewConsumer(r, xOffA, xSlot, xSlots, bellA)
	if err != nil {
		return err
	}
	p, err := NewProducer(r, xOffB, xSlot, xSlots, bellB)
	if err != nil {
		return err
	}
	if err := exchange(p, c, xChild, xParent, xMsgs()); err != nil {
		return err
	}
	rd, err := NewRingReader(r, xOffRing, xRing)
	if err != nil {
		return err
	}
	sum, err := ringRecv(rd, xBytes())
	if err != nil {
		return err
	}
	var res [xSlot]byte
	le := binary.LittleEndian
	le.PutUint64(res[0:], xResult)
	le.PutUint64(res[8:], uint64(xBytes()))
	le.PutUint32(res[16:], sum)
	for {
		ok, err := p.Push(res[:])
		if ok || err != nil {
			return err
		}
		runtime.Gosched()
	}
}

// putMsg fills a slot with message seq from sender: the sequence number,
// then seven words derived from it and the sender.
func putMsg(s []byte, sender, seq uint64) {
	binary.LittleEndian.PutUint64(s, seq)
	for i := uint64(1); i < xSlot/8; i++ {
		binary.LittleEndian.PutUint64(s[i*8:], msgWord(sender, seq, i))
	}
}

func msgWord(sender, seq, i uint64) uint64 {
	return (seq+i)*0x9E3779B97F4A7C15 ^ sender<<48 ^ i
}

func checkMsg(s []byte, sender, seq uint64) error {
	if got := binary.LittleEndian.Uint64(s); got != seq {
		return fmt.Errorf("message %d arrived as number %d (order broken)", seq, got)
	}
	for i := uint64(1); i < xSlot/8; i++ {
		if binary.LittleEndian.Uint64(s[i*8:]) != msgWord(sender, seq, i) {
			return fmt.Errorf("message %d: word %d corrupted", seq, i)
		}
	}
	return nil
}

// exchange sends n messages through out and receives n through in at the
// same time, checking order and content. Both consumers block on their
// doorbells when idle.
func exchange(out *Producer, in *Consumer, me, peer uint64, n int) error {
	var wg sync.WaitGroup
	var sendErr error
	wg.Go(func() {
		idle := 0
		for seq := 0; seq < n; {
			k, err := out.Reserve(min(32, n-seq))
			if err != nil {
				sendErr = err
				return
			}
			for i := range k {
				putMsg(out.Slot(i), me, uint64(seq+i))
			}
			if err := out.Commit(k); err != nil {
				sendErr = err
				return
			}
			seq += k
			if k == 0 {
				backoff(&idle)
			} else {
				idle = 0
			}
		}
	})
	recvErr := func() error {
		deadline := time.Now().Add(4 * time.Minute)
		for seq, idle := 0, 0; seq < n; {
			k, err := in.Peek(32)
			if err != nil {
				return err
			}
			for i := range k {
				if err := checkMsg(in.Slot(i), peer, uint64(seq+i)); err != nil {
					return err
				}
			}
			if err := in.Release(k); err != nil {
				return err
			}
			seq += k
			if k > 0 {
				idle = 0
				continue
			}
			if idle++; idle < 100 {
				runtime.Gosched()
				continue
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("received %d of %d messages before the deadline", seq, n)
			}
			if err := in.Wait(time.Second); err != nil {
				return err
			}
		}
		return nil
	}()
	wg.Wait()
	return errors.Join(recvErr, sendErr)
}

// backoff is for a side that has no doorbell to wait on (a full queue or
// ring): yield for a while, then sleep briefly.
func backoff(idle *int) {
	if *idle++; *idle < 1000 {
		runtime.Gosched()
	} else {
		time.Sleep(20 * time.Microsecond)
	}
}

// xorshift is the reproducible byte stream sent through the byte ring.
type xorshift uint64

func (x *xorshift) fill(b []byte) {
	v := uint64(*x)
	for i := range b {
		v ^= v << 13
		v ^= v >> 7
		v ^= v << 17
		b[i] = byte(v)
	}
	*x = xorshift(v)
}

// ringSend writes total bytes of the stream straight into the ring's free
// space (zero copy) and returns their CRC-32C.
func ringSend(w *RingWriter, total int) (uint32, error) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	gen := xorshift(1)
	var sum uint32
	deadline := time.Now().Add(4 * time.Minute)
	for sent, idle := 0, 0; sent < total; {
		a, b, err := w.Writable()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, s := range [][]byte{a, b} {
			s = s[:min(len(s), total-sent-n)]
			gen.fill(s)
			sum = crc32.Update(sum, tab, s)
			n += len(s)
		}
		if err := w.Commit(n); err != nil {
			return 0, err
		}
		sent += n
		if n > 0 {
			idle = 0
		} else if backoff(&idle); time.Now().After(deadline) {
			return 0, errors.New("byte ring: reader stalled")
		}
	}
	return sum, nil
}

// ringRecv reads total bytes, checks them against the same stream and
// returns their CRC-32C.
func ringRecv(rd *RingReader, total int) (uint32, error) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	gen := xorshift(1)
	want := make([]byte, rd.Size())
	var sum uint32
	deadline := time.Now().Add(4 * time.Minute)
	for got, idle := 0, 0; got < total; {
		a, b, err := rd.Readable()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, s := range [][]byte{a, b} {
			s = s[:min(len(s), total-got-n)]
			w := want[:len(s)]
			gen.fill(w)
			if !bytes.Equal(s, w) {
				return 0, fmt.Errorf("byte ring: stream differs within bytes [%d, %d)", got+n, got+n+len(s))
			}
			sum = crc32.Update(sum, tab, s)
			n += len(s)
		}
		if err := rd.Consume(n); err != nil {
			return 0, err
		}
		got += n
		if n > 0 {
			idle = 0
		} else if backoff(&idle); time.Now().After(deadline) {
			return 0, errors.New("byte ring: writer stalled")
		}
	}
	return sum, nil
}
