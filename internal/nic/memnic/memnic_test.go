package memnic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"gotas/internal/impair"
	"gotas/internal/nic"
	"gotas/internal/nic/nictest"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestConformance(t *testing.T) {
	a, b := Pair(impair.Config{}, impair.Config{})
	defer a.Close()
	defer b.Close()
	am, bm := a.Info().MAC, b.Info().MAC
	if am == bm || am[0]&2 == 0 {
		t.Fatalf("MACs %x and %x: want distinct, locally administered", am, bm)
	}
	t.Run("a to b", func(t *testing.T) { nictest.Conformance(t, a.Queue(), b.Queue(), bm, am) })
	t.Run("b to a", func(t *testing.T) { nictest.Conformance(t, b.Queue(), a.Queue(), am, bm) })
}

func TestZeroAllocs(t *testing.T) {
	t.Run("realtime", func(t *testing.T) {
		a, b := Pair(impair.Config{}, impair.Config{})
		nictest.ZeroAllocs(t, a.Queue(), b.Queue(), b.Info().MAC, a.Info().MAC)
	})
	t.Run("realtime with impairments", func(t *testing.T) {
		// Delay and loss make some round trips wait on the timer; lost
		// frames end the round trip early but must not allocate either.
		a, b := Pair(impair.Config{Seed: 1, Delay: 50 * time.Microsecond, Duplicate: 0.1, RateBps: 1e9}, impair.Config{})
		nictest.ZeroAllocs(t, a.Queue(), b.Queue(), b.Info().MAC, a.Info().MAC)
	})
	t.Run("virtual", func(t *testing.T) {
		a, b := Pair(impair.Config{}, impair.Config{}, WithClock(NewManualClock(t0)))
		nictest.ZeroAllocs(t, a.Queue(), b.Queue(), b.Info().MAC, a.Info().MAC)
	})
}

func TestMACsAndInfo(t *testing.T) {
	ma, mb := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	a, b := Pair(impair.Config{}, impair.Config{}, WithMACs(ma, mb))
	if a.Info().MAC != ma || b.Info().MAC != mb || a.Info().Kind != "mem" || a.Info().Mode != "realtime" {
		t.Fatalf("infos %+v, %+v", a.Info(), b.Info())
	}
	if len(a.Queues()) != 1 {
		t.Fatal("want one queue")
	}
}

func frameTo(p *Port, seq uint32) []byte {
	return nictest.Frame(make([]byte, 64), p.Info().MAC, [6]byte{2}, 64, seq)
}

func TestRealTimeDelayWakes(t *testing.T) {
	const delay = 20 * time.Millisecond
	a, b := Pair(impair.Config{Delay: delay}, impair.Config{})
	rx := b.Queue()
	in := make([][]byte, 4)
	start := time.Now()
	if n, err := a.Queue().Send([][]byte{frameTo(b, 1)}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if n, _ := rx.Recv(in); n != 0 {
		t.Fatal("a delayed frame arrived at once")
	}
	ready, err := nic.Wait(rx, time.Second)
	waited := time.Since(start)
	if err != nil || !ready {
		t.Fatalf("Wait = %v, %v", ready, err)
	}
	if waited < delay || waited > delay+100*time.Millisecond {
		t.Fatalf("woke after %v, want about %v", waited, delay)
	}
	if n, _ := rx.Recv(in); n != 1 {
		t.Fatalf("Recv after wakeup = %d, want 1", n)
	}
	if ready, _ := nic.Wait(rx, 0); ready {
		t.Fatal("queue still readable after draining it")
	}
	t.Logf("a %v delayed frame woke Wait after %v", delay, waited)
}

func TestVirtualTime(t *testing.T) {
	clk := NewManualClock(t0)
	a, b := Pair(impair.Config{Delay: 10 * time.Millisecond, RateBps: 8e6}, impair.Config{}, WithClock(clk))
	rx := b.Queue()
	in := make([][]byte, 4)
	a.Queue().Send([][]byte{nictest.Frame(make([]byte, 1000), b.Info().MAC, a.Info().MAC, 1000, 7)})
	// 1000 bytes at 8 Mbit/s take 1 ms, then 10 ms of delay.
	due := t0.Add(11 * time.Millisecond)
	if d, ok := clk.NextDeadline(); !ok || !d.Equal(due) {
		t.Fatalf("NextDeadline = %v, %v; want %v", d, ok, due)
	}
	if d, _ := rx.NextDeadline(); !d.Equal(due) {
		t.Fatalf("queue NextDeadline = %v", d)
	}
	clk.Advance(11*time.Millisecond - 1)
	if ready, _ := nic.Wait(rx, 0); ready {
		t.Fatal("readable before the frame is due")
	}
	if n, _ := rx.Recv(in); n != 0 {
		t.Fatal("received before the frame is due")
	}
	clk.Advance(1)
	if ready, _ := nic.Wait(rx, 0); !ready {
		t.Fatal("not readable when the frame is due")
	}
	if n, _ := rx.Recv(in); n != 1 {
		t.Fatalf("Recv = %d, want 1", n)
	}
	if seq, _ := nictest.FrameSeq(in[0]); seq != 7 {
		t.Fatalf("received seq %d", seq)
	}
	if _, ok := clk.NextDeadline(); ok {
		t.Fatal("deadline left after delivery")
	}
	// Real time passing changes nothing.
	a.Queue().Send([][]byte{frameTo(b, 8)})
	time.Sleep(15 * time.Millisecond)
	if n, _ := rx.Recv(in); n != 0 {
		t.Fatal("a frame arrived without the clock moving")
	}
}

// TestImpairedThroughPort checks that the port hands the link's counters
// through: frames lost on the way show up as the receiver's RxDropped.
func TestImpairedThroughPort(t *testing.T) {
	clk := NewManualClock(t0)
	a, b := Pair(impair.Config{Seed: 3, Loss: 0.1, Duplicate: 0.05, QueueLimit: impair.Limit{Frames: 1000}, RateBps: 20e6},
		impair.Config{}, WithClock(clk))
	tx, rx := a.Queue(), b.Queue()
	const n = 20000
	batch := make([][]byte, 50)
	in := make([][]byte, 64)
	got := 0
	for i := 0; i < n; i += len(batch) {
		for k := range batch {
			batch[k] = frameTo(b, uint32(i+k))
		}
		if s, _ := tx.Send(batch); s != len(batch) {
			t.Fatalf("Send = %d", s)
		}
		clk.Advance(time.Millisecond)
		for k, _ := rx.Recv(in); k > 0; k, _ = rx.Recv(in) {
			got += k
		}
	}
	ls, st := rx.LinkStats(), rx.Stats()
	if st.RxDropped != ls.Lost+ls.TailDropped || st.RxFrames != uint64(got) || ls.Delivered != uint64(got) {
		t.Fatalf("port stats %+v do not match link stats %+v", st, ls)
	}
	if loss := float64(ls.Lost) / n; loss < 0.09 || loss > 0.11 {
		t.Fatalf("loss %.3f, want 0.10", loss)
	}
	if ls.TailDropped == 0 {
		t.Fatal("25.6 Mbit/s offered to a 20 Mbit/s link never filled its queue")
	}
	t.Logf("tx %+v\nrx %+v\nlink %+v", tx.Stats(), st, ls)
}

func TestBackpressureAndClose(t *testing.T) {
	a, b := Pair(impair.Config{Capacity: 64}, impair.Config{})
	tx, rx := a.Queue(), b.Queue()
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = frameTo(b, uint32(i))
	}
	if n, _ := tx.Send(batch); n != 64 {
		t.Fatalf("Send into a 64-frame link = %d, want 64", n)
	}
	in := make([][]byte, 10)
	rx.Recv(in)
	if n, _ := tx.Send(batch[64:]); n != 0 {
		t.Fatalf("Send = %d while the receiver still holds its views", n)
	}
	rx.Recv(in) // releases the first ten
	if n, _ := tx.Send(batch[64:]); n != 10 {
		t.Fatalf("Send after Recv = %d, want 10", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.Recv(in); !errors.Is(err, nic.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if rx.PollFD() != -1 {
		t.Fatal("PollFD after Close")
	}
	if n, err := tx.Send(batch[:5]); n != 5 || err != nil || tx.Stats().TxDropped != 5 {
		t.Fatalf("Send to a closed peer = %d, %v, stats %+v", n, err, tx.Stats())
	}
	a.Close()
	if _, err := tx.Send(batch[:1]); !errors.Is(err, nic.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// transfer moves size bytes reliably from a to b over lossy, delayed links
// with a small go-back-N protocol, all in virtual time, and returns a hash
// of every event (what arrived where, and when) and the virtual duration.
// It stands in for the TCP stack: a run must replay exactly from its seed.
func transfer(t *testing.T, seed int64, size int) (trace [32]byte, took time.Duration, retx int) {
	t.Helper()
	clk := NewManualClock(t0)
	fwd := impair.Config{Seed: seed, Loss: 0.05, Reorder: 0.02, ReorderDelay: 2 * time.Millisecond,
		Delay: 5 * time.Millisecond, Jitter: time.Millisecond, RateBps: 100e6, QueueLimit: impair.Limit{Frames: 64}}
	rev := impair.Config{Seed: seed + 1000, Loss: 0.05, Delay: 5 * time.Millisecond}
	a, b := Pair(fwd, rev, WithClock(clk))
	defer a.Close()
	defer b.Close()
	aq, bq := a.Queue(), b.Queue()

	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	const seg, window, rto = 1400, 48, 30 * time.Millisecond
	nseg := (size + seg - 1) / seg
	// Frames: 14-byte Ethernet header, type 0x88b5, then seq/ack.
	mk := func(buf []byte, dst, src [6]byte, n uint32, payload []byte) []byte {
		copy(buf, dst[:])
		copy(buf[6:], src[:])
		binary.BigEndian.PutUint16(buf[12:], 0x88b5)
		binary.BigEndian.PutUint32(buf[14:], n)
		return buf[:18+copy(buf[18:], payload)]
	}
	h := sha256.New()
	event := func(kind byte, n uint32) {
		var e [13]byte
		e[0] = kind
		binary.BigEndian.PutUint32(e[1:], n)
		binary.BigEndian.PutUint64(e[5:], uint64(clk.Now().Sub(t0)))
		h.Write(e[:])
	}
	var got []byte
	base, next, expect := 0, 0, 0
	var deadline time.Time
	buf := make([]byte, nic.MaxFrame)
	in := make([][]byte, 32)
	for base < nseg {
		busy := false
		for next < base+window && next < nseg {
			p := data[next*seg : min(size, (next+1)*seg)]
			if n, _ := aq.Send([][]byte{mk(buf, b.Info().MAC, a.Info().MAC, uint32(next), p)}); n == 0 {
				break
			}
			if deadline.IsZero() {
				deadline = clk.Now().Add(rto)
			}
			next++
			busy = true
		}
		n, _ := bq.Recv(in)
		for _, f := range in[:n] {
			s := int(binary.BigEndian.Uint32(f[14:]))
			event('d', uint32(s))
			if s == expect {
				got = append(got, f[18:]...)
				expect++
			}
			bq.Send([][]byte{mk(buf, a.Info().MAC, b.Info().MAC, uint32(expect), nil)})
		}
		m, _ := aq.Recv(in)
		for _, f := range in[:m] {
			ack := int(binary.BigEndian.Uint32(f[14:]))
			event('a', uint32(ack))
			if ack > base {
				base = ack
				deadline = clk.Now().Add(rto)
				if base == next {
					deadline = time.Time{}
				}
			}
		}
		if n+m > 0 || busy {
			continue
		}
		// Idle: jump to the next frame or the retransmission timeout.
		wake, ok := clk.NextDeadline()
		if !deadline.IsZero() && (!ok || deadline.Before(wake)) {
			clk.AdvanceTo(deadline)
			event('t', uint32(base))
			retx += next - base
			next, deadline = base, time.Time{}
			continue
		}
		if !ok {
			t.Fatal("deadlock: nothing in flight and no timer")
		}
		clk.AdvanceTo(wake)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	copy(trace[:], h.Sum(nil))
	return trace, clk.Now().Sub(t0), retx
}

func TestReplayTransfer(t *testing.T) {
	const size = 2 << 20
	start := time.Now()
	tr1, took1, retx := transfer(t, 1, size)
	wall := time.Since(start)
	tr2, took2, _ := transfer(t, 1, size)
	if tr1 != tr2 || took1 != took2 {
		t.Fatalf("seed 1 replayed differently: %x in %v vs %x in %v", tr1[:8], took1, tr2[:8], took2)
	}
	tr3, took3, _ := transfer(t, 2, size)
	if tr3 == tr1 {
		t.Fatal("seed 2 gave the same run as seed 1")
	}
	t.Logf("%d MB at 5%% loss: %v virtual (%v wall), %d segments resent; seed 2: %v", size>>20, took1, wall, retx, took3)
}

// TestWakeupRace sends from one goroutine while another waits and
// receives, with delays that need the timer, and checks nothing is lost
// or stuck.
func TestWakeupRace(t *testing.T) {
	a, b := Pair(impair.Config{Seed: 9, Delay: 100 * time.Microsecond, Jitter: 200 * time.Microsecond, Reorder: 0.1, ReorderDelay: time.Millisecond}, impair.Config{})
	tx, rx := a.Queue(), b.Queue()
	const n = 20000
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		batch := make([][]byte, 8)
		for i := 0; i < n; i += len(batch) {
			for k := range batch {
				batch[k] = frameTo(b, uint32(i+k))
			}
			for off := 0; off < len(batch); {
				k, _ := tx.Send(batch[off:])
				off += k
			}
			if r.IntN(4) == 0 {
				time.Sleep(time.Duration(r.IntN(300)) * time.Microsecond)
			}
		}
	}()
	in := make([][]byte, 16)
	got := 0
	for got < n {
		k, _ := rx.Recv(in)
		got += k
		if k == 0 {
			if ready, _ := nic.Wait(rx, 2*time.Second); !ready {
				t.Fatalf("stuck after %d of %d frames; %+v", got, n, rx.LinkStats())
			}
		}
	}
	t.Logf("%+v", rx.LinkStats())
}

func BenchmarkRecv64(b *testing.B) {
	pa, pb := Pair(impair.Config{}, impair.Config{})
	defer pa.Close()
	defer pb.Close()
	nictest.BenchRecv(b, pa.Queue(), pb.Queue(), pb.Info().MAC, pa.Info().MAC, 64)
}

func BenchmarkSend64(b *testing.B) {
	pa, pb := Pair(impair.Config{}, impair.Config{})
	defer pa.Close()
	defer pb.Close()
	nictest.BenchSend(b, pa.Queue(), pb.Queue(), pb.Info().MAC, pa.Info().MAC, 64)
}
