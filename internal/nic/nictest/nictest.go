// Package nictest holds the checks and benchmarks every nic back-end must
// pass, so that back-ends are measured and judged the same way.
package nictest

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"gotas/internal/nic"
	"gotas/internal/testnet"
)

// DstIP is the IPv4 destination of test frames: the "service address" a
// back-end that filters (AF_XDP) must be told to steer. No namespace owns
// it, so the kernel drops any copy it sees instead of answering.
var DstIP = [4]byte{10, 254, 0, 1}

var srcIP = [4]byte{10, 254, 0, 2}

// Veth makes two hosts joined by a veth pair: interface "xa" in a and "xb"
// in b, both up and without addresses. The lab is deleted when t ends.
func Veth(t testing.TB) (a, b *testnet.Host) {
	t.Helper()
	lab := testnet.NewT(t)
	var err error
	if a, err = lab.Host("a"); err != nil {
		t.Fatal(err)
	}
	if b, err = lab.Host("b"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(a, "xa", b, "xb"); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Frame writes into buf a TCP/IPv4 frame of size bytes (at least 60) from
// src to dst MAC carrying seq, and returns it. The TCP checksum is left
// zero on purpose: a kernel that sees a copy drops it silently.
func Frame(buf []byte, dst, src [6]byte, size int, seq uint32) []byte {
	if size < 60 {
		size = 60
	}
	f := buf[:size]
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	clear(ip[:40])
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8] = 64
	ip[9] = 6
	copy(ip[12:16], srcIP[:])
	copy(ip[16:20], DstIP[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 9)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	payload := tcp[20:]
	for i := range payload {
		payload[i] = byte(seq) + byte(i)
	}
	return f
}

// FrameSeq extracts the seq a Frame carries, or false if f is not one.
func FrameSeq(f []byte) (uint32, bool) {
	if len(f) < 54 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 6 ||
		!bytes.Equal(f[30:34], DstIP[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint32(f[38:]), true
}

// recvOne waits up to timeout for frames on rx and returns the next one
// that is a test frame, skipping others (IPv6 router solicitations and the
// like that a kernel may send on a fresh link).
func recvSome(t testing.TB, rx nic.Queue, frames [][]byte, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := rx.Recv(frames)
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if n > 0 {
			return n
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0
		}
		if _, err := nic.Wait(rx, min(left, 50*time.Millisecond)); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
}

// Conformance checks the Queue contract from tx to rx: frames of every size
// arrive intact and in order, Recv on an idle queue returns 0 at once,
// Wait wakes for a pending frame and times out otherwise, malformed frames
// are consumed and counted, and the counters add up.
func Conformance(t *testing.T, tx, rx nic.Queue, dst, src [6]byte) {
	t.Helper()
	frames := make([][]byte, 64)
	drain := func() {
		for {
			n, _ := rx.Recv(frames)
			if n == 0 {
				return
			}
		}
	}
	drain()
	if n, err := rx.Recv(frames); n != 0 || err != nil {
		t.Fatalf("Recv on an idle queue = %d, %v; want 0, nil", n, err)
	}
	start := time.Now()
	if ready, err := nic.Wait(rx, 30*time.Millisecond); err != nil || ready {
		t.Fatalf("Wait on an idle queue = %v, %v; want a timeout", ready, err)
	}
	if time.Since(start) < 25*time.Millisecond {
		t.Fatalf("Wait on an idle queue returned after %v, before its timeout", time.Since(start))
	}

	txBefore, rxBefore := tx.Stats(), rx.Stats()
	sizes := []int{60, 61, 64, 127, 128, 256, 511, 777, 1024, 1279, 1500, 1514, nic.MaxFrame}
	const rounds = 8
	sent := 0
	var sentBytes uint64
	bufs := make([][]byte, len(sizes))
	for r := 0; r < rounds; r++ {
		batch := make([][]byte, len(sizes))
		for i, size := range sizes {
			seq := uint32(r*len(sizes) + i)
			bufs[i] = make([]byte, nic.MaxFrame)
			batch[i] = Frame(bufs[i], dst, src, size, seq)
			sentBytes += uint64(size)
		}
		for off := 0; off < len(batch); {
			n, err := tx.Send(batch[off:])
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			off += n
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		sent += len(batch)
		// Receive this round before the next so no ring can overflow.
		got := 0
		for got < len(sizes) {
			n := recvSome(t, rx, frames, 2*time.Second)
			if n == 0 {
				t.Fatalf("round %d: received %d of %d frames", r, got, len(sizes))
			}
			for _, f := range frames[:n] {
				seq, ok := FrameSeq(f)
				if !ok {
					continue // not ours
				}
				want := uint32(r*len(sizes) + got)
				if seq != want {
					t.Fatalf("received seq %d, want %d (reordered or lost)", seq, want)
				}
				size := sizes[got]
				exp := Frame(make([]byte, nic.MaxFrame), dst, src, size, seq)
				if !bytes.Equal(f, exp) {
					t.Fatalf("frame %d (%d bytes) arrived as %d bytes and differs", seq, size, len(f))
				}
				got++
			}
		}
	}
	if ready, _ := nic.Wait(rx, 0); ready {
		if n, _ := rx.Recv(frames); n > 0 {
			for _, f := range frames[:n] {
				if _, ok := FrameSeq(f); ok {
					t.Fatal("a test frame arrived twice")
				}
			}
		}
	}

	// Wait must wake for a pending frame well before its timeout.
	one := [][]byte{Frame(make([]byte, 64), dst, src, 64, 999)}
	if n, err := tx.Send(one); n != 1 || err != nil {
		t.Fatalf("Send one = %d, %v", n, err)
	}
	start = time.Now()
	if got := recvSome(t, rx, frames, 2*time.Second); got == 0 {
		t.Fatal("frame sent but Wait/Recv never delivered it")
	}
	if time.Since(start) > time.Second {
		t.Fatalf("Wait took %v to notice a pending frame", time.Since(start))
	}
	sent++
	sentBytes += 64

	// Malformed frames are consumed, counted, and do not block the rest.
	errsBefore := tx.Stats().TxErrors
	bad := [][]byte{{}, make([]byte, nic.MaxFrame+1), Frame(make([]byte, 64), dst, src, 64, 1000)}
	n, err := tx.Send(bad)
	if err != nil || n != 3 {
		t.Fatalf("Send with malformed frames = %d, %v; want 3, nil", n, err)
	}
	if e := tx.Stats().TxErrors - errsBefore; e != 2 {
		t.Fatalf("TxErrors grew by %d, want 2", e)
	}
	if got := recvSome(t, rx, frames, 2*time.Second); got == 0 {
		t.Fatal("the good frame after malformed ones was not delivered")
	} else if seq, ok := FrameSeq(frames[0]); !ok || seq != 1000 {
		t.Fatalf("after malformed frames received seq %d (ok=%v), want 1000", seq, ok)
	}
	sent++
	sentBytes += 64

	txs, rxs := tx.Stats(), rx.Stats()
	if d := txs.TxFrames - txBefore.TxFrames; d != uint64(sent) {
		t.Errorf("TxFrames grew by %d, sent %d", d, sent)
	}
	if d := txs.TxBytes - txBefore.TxBytes; d != sentBytes {
		t.Errorf("TxBytes grew by %d, sent %d", d, sentBytes)
	}
	if d := rxs.RxFrames - rxBefore.RxFrames; d < uint64(sent) {
		t.Errorf("RxFrames grew by %d, received at least %d", d, sent)
	}
}

// ZeroAllocs checks that a send and receive round trip of a full batch
// allocates nothing, per frame or per batch.
func ZeroAllocs(t *testing.T, tx, rx nic.Queue, dst, src [6]byte) {
	t.Helper()
	const batch = 16
	out := make([][]byte, batch)
	for i := range out {
		out[i] = Frame(make([]byte, 64), dst, src, 64, uint32(i))
	}
	in := make([][]byte, batch)
	roundTrip := func() {
		for off := 0; off < batch; {
			n, _ := tx.Send(out[off:])
			off += n
		}
		for got, spins := 0, 0; got < batch && spins < 1e6; spins++ {
			n, _ := rx.Recv(in)
			got += n
			if n == 0 {
				nic.Wait(rx, 10*time.Millisecond)
			}
		}
	}
	roundTrip() // warm up lazily built state
	if a := testing.AllocsPerRun(200, roundTrip); a != 0 {
		t.Fatalf("send+receive of %d frames allocates %.1f times; want 0", batch, a)
	}
}

// BenchRecv measures how many frames per second rx receives while tx sends
// size-byte frames as fast as it can from another goroutine. It reports
// frames/s received and the share of sent frames that arrived.
func BenchRecv(b *testing.B, tx, rx nic.Queue, dst, src [6]byte, size int) {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		const batch = 64
		out := make([][]byte, batch)
		for i := range out {
			out[i] = Frame(make([]byte, size), dst, src, size, uint32(i))
		}
		var sent uint64
		for {
			select {
			case <-stop:
				done <- sent
				return
			default:
			}
			n, _ := tx.Send(out)
			sent += uint64(n)
		}
	}()
	in := make([][]byte, 64)
	b.ResetTimer()
	start := time.Now()
	got := 0
	for got < b.N {
		n, err := rx.Recv(in)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("received %d of %d frames in 30s", got, b.N)
			}
			continue
		}
		got += n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	sent := <-done
	b.ReportMetric(float64(got)/elapsed.Seconds(), "frames/s")
	if sent > 0 {
		b.ReportMetric(100*float64(got)/float64(sent), "%delivered")
	}
}

// BenchSend measures how many size-byte frames per second tx accepts and
// sends, with a goroutine draining rx, and reports the share delivered.
func BenchSend(b *testing.B, tx, rx nic.Queue, dst, src [6]byte, size int) {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		in := make([][]byte, 64)
		var got uint64
		for {
			select {
			case <-stop:
				done <- got
				return
			default:
			}
			n, _ := rx.Recv(in)
			got += uint64(n)
		}
	}()
	const batch = 64
	out := make([][]byte, batch)
	for i := range out {
		out[i] = Frame(make([]byte, size), dst, src, size, uint32(i))
	}
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		n, err := tx.Send(out[:min(batch, b.N-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	got := <-done
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(100*float64(got)/float64(sent), "%delivered")
}
