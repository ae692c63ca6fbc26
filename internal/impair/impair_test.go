package impair

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// frame writes an IPv4 frame of size bytes with the given TOS that carries
// seq in its payload.
func frame(buf []byte, size int, seq uint32, tos byte) []byte {
	f := buf[:size]
	clear(f)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[1] = 0x45, tos
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8], ip[9] = 64, 17
	binary.BigEndian.PutUint16(ip[10:], ipSum(ip[:20]))
	binary.BigEndian.PutUint32(f[34:], seq)
	return f
}

func seqOf(f []byte) uint32 { return binary.BigEndian.Uint32(f[34:]) }

// ipSum is the header checksum computed from scratch (with the checksum
// field zero, or the final value, in which case a valid header gives 0).
func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func mustNew(t testing.TB, c Config) *Link {
	t.Helper()
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkBalance checks that every arrival and duplicate is accounted for.
func checkBalance(t *testing.T, l *Link) {
	t.Helper()
	s := l.Stats()
	if in, out := s.Arrived+s.Duplicated, s.Lost+s.Oversize+s.TailDropped+s.Overflow+s.Delivered+uint64(l.Len()); in != out {
		t.Errorf("counters do not balance: arrived+dup %d != dropped+delivered+in link %d (%+v)", in, out, s)
	}
}

func TestProbabilities(t *testing.T) {
	const n = 100_000
	gap := 10 * time.Microsecond
	for _, tc := range []struct {
		name  string
		cfg   Config
		field func(Stats) uint64
		want  float64 // expected share of n
	}{
		{"loss 10%", Config{Seed: 1, Loss: 0.10}, func(s Stats) uint64 { return s.Lost }, 0.10},
		{"loss 2%", Config{Seed: 2, Loss: 0.02}, func(s Stats) uint64 { return s.Lost }, 0.02},
		{"dup 5%", Config{Seed: 3, Duplicate: 0.05}, func(s Stats) uint64 { return s.Duplicated }, 0.05},
		{"dup of survivors", Config{Seed: 4, Loss: 0.5, Duplicate: 0.2}, func(s Stats) uint64 { return s.Duplicated }, 0.10},
		// A held frame is passed by the 5 next ones and so is delivered
		// late once.
		{"reorder 5%", Config{Seed: 5, Reorder: 0.05, ReorderDelay: 5 * gap}, func(s Stats) uint64 { return s.Reordered }, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, tc.cfg)
			buf := make([]byte, 64)
			out := make([][]byte, 64)
			var got []uint32
			now := t0
			for i := range n {
				l.Enqueue(frame(buf, 64, uint32(i), 0), now)
				now = now.Add(gap)
				for k := l.Dequeue(now, out); k > 0; k = l.Dequeue(now, out) {
					for _, f := range out[:k] {
						got = append(got, seqOf(f))
					}
				}
			}
			now = now.Add(time.Second)
			for k := l.Dequeue(now, out); k > 0; k = l.Dequeue(now, out) {
				for _, f := range out[:k] {
					got = append(got, seqOf(f))
				}
			}
			s := l.Stats()
			share := float64(tc.field(s)) / n
			if math.Abs(share-tc.want) > tc.want*0.05 {
				t.Errorf("share %.4f, want %.4f±5%% (%+v)", share, tc.want, s)
			}
			checkBalance(t, l)
			// Cross-check the counters against what arrived.
			var late, dups uint64
			seen := make(map[uint32]bool)
			var maxSeq int64 = -1
			for _, q := range got {
				if seen[q] {
					dups++
					continue
				}
				seen[q] = true
				if int64(q) < maxSeq {
					late++
				}
				maxSeq = max(maxSeq, int64(q))
			}
			if s.Delivered != uint64(len(got)) || n-uint64(len(seen)) != s.Lost || dups != s.Duplicated || late != s.Reordered {
				t.Errorf("observed %d delivered, %d lost, %d dups, %d late; stats %+v",
					len(got), n-len(seen), dups, late, s)
			}
			t.Logf("%s: %.3f%% (%+v)", tc.name, 100*share, s)
		})
	}
}

func TestDelayAndJitter(t *testing.T) {
	for _, tc := range []struct {
		name          string
		delay, jitter time.Duration
	}{
		{"delay", 10 * time.Millisecond, 0},
		{"jitter below the frame gap", 10 * time.Millisecond, 800 * time.Microsecond},
		// Jitter above the gap would reorder; order is kept instead,
		// which lifts the mean, so only the bounds are checked.
		{"jitter above the frame gap", 10 * time.Millisecond, 4 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, Config{Seed: 7, Delay: tc.delay, Jitter: tc.jitter})
			buf := make([]byte, 100)
			out := make([][]byte, 16)
			const n = 20_000
			gap := time.Millisecond
			var sum time.Duration
			var last uint32
			got := 0
			for i := range n {
				at := t0.Add(time.Duration(i) * gap)
				l.Enqueue(frame(buf, 100, uint32(i), 0), at)
				// Step exactly to each deadline, as a virtual-time driver does.
				for {
					d, ok := l.NextDeadline()
					if !ok || d.After(at.Add(gap)) {
						break
					}
					if k := l.Dequeue(d.Add(-1), out); k != 0 {
						t.Fatalf("Dequeue 1ns before the deadline returned %d frames", k)
					}
					k := l.Dequeue(d, out)
					if k == 0 {
						t.Fatal("nothing delivered at NextDeadline")
					}
					for _, f := range out[:k] {
						q := seqOf(f)
						if got > 0 && q <= last {
							t.Fatalf("frame %d delivered after %d: jitter reordered", q, last)
						}
						last = q
						lat := d.Sub(t0.Add(time.Duration(q) * gap))
						if lat < tc.delay || lat > tc.delay+tc.jitter {
							t.Fatalf("frame %d took %v, want %v..%v", q, lat, tc.delay, tc.delay+tc.jitter)
						}
						sum += lat
						got++
					}
				}
			}
			mean := sum / time.Duration(got)
			want := tc.delay + tc.jitter/2
			if d := mean - want; tc.jitter < gap && (d < -want/100 || d > want/100) {
				t.Errorf("mean latency %v, want %v±1%%", mean, want)
			}
			t.Logf("%d frames, mean latency %v", got, mean)
		})
	}
}

func TestRate(t *testing.T) {
	// A burst at time 0: frame k departs exactly when its bits have been
	// serialized, even at a rate that does not divide the frame size.
	l := mustNew(t, Config{RateBps: 7_000_000})
	buf := make([]byte, 1514)
	for i := range 100 {
		l.Enqueue(frame(buf, 1514, uint32(i), 0), t0)
	}
	out := make([][]byte, 1)
	for k := 1; k <= 100; k++ {
		d, _ := l.NextDeadline()
		want := time.Duration(uint64(k) * 1514 * 8 * 1e9 / 7_000_000)
		if got := d.Sub(t0); got != want {
			t.Fatalf("frame %d departs at %v, want %v", k, got, want)
		}
		l.Dequeue(d, out)
	}

	// Offered at twice the rate through a 50-frame queue, the link
	// delivers at its rate and tail-drops the excess.
	for _, rate := range []uint64{10e6, 50e6, 1e9} {
		l := mustNew(t, Config{RateBps: rate, QueueLimit: Limit{Frames: 50}, Delay: time.Millisecond})
		out := make([][]byte, 64)
		size := 1500
		gap := time.Duration(uint64(size) * 8 * 1e9 / (2 * rate))
		var first, last time.Time
		var bytes uint64
		now := t0
		for i := range 20_000 {
			l.Enqueue(frame(buf, size, uint32(i), 0), now)
			now = now.Add(gap)
			k := l.Dequeue(now, out)
			if k > 0 && first.IsZero() {
				first = now
			}
			if k > 0 {
				last = now
			}
			for _, f := range out[:k] {
				bytes += uint64(len(f))
			}
		}
		bps := float64(bytes) * 8 / last.Sub(first).Seconds()
		if math.Abs(bps/float64(rate)-1) > 0.005 {
			t.Errorf("rate %d: delivered %.0f bit/s", rate, bps)
		}
		s := l.Stats()
		if s.QueueHighFrames != 50 || s.TailDropped < 9000 || s.TailDropped > 10100 {
			t.Errorf("rate %d: high water %d, tail drops %d of 20000; want 50, ~10000", rate, s.QueueHighFrames, s.TailDropped)
		}
		t.Logf("rate %d: %.0f bit/s, %+v", rate, bps, s)
	}
}

func TestQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit         Limit
		size          int
		queued, drops uint64
		highBytes     int
	}{
		{"frames", Limit{Frames: 10}, 1000, 10, 90, 10000},
		{"bytes", Limit{Bytes: 5500}, 1000, 5, 95, 5000},
		{"both, frames bind", Limit{Frames: 3, Bytes: 5500}, 1000, 3, 97, 3000},
		{"both, bytes bind", Limit{Frames: 30, Bytes: 5500}, 1000, 5, 95, 5000},
		{"unlimited", Limit{}, 1000, 100, 0, 100000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, Config{RateBps: 8e6, QueueLimit: tc.limit}) // 1 ms per frame
			buf := make([]byte, tc.size)
			for i := range 100 {
				if o := l.Enqueue(frame(buf, tc.size, uint32(i), 0), t0); (o&TailDropped != 0) != (uint64(i) >= tc.queued) {
					t.Fatalf("frame %d: outcome %b", i, o)
				}
			}
			s := l.Stats()
			if uint64(l.Len()) != tc.queued || s.TailDropped != tc.drops || s.QueueHighBytes != tc.highBytes {
				t.Fatalf("in link %d, tail drops %d, high water %d B; want %d, %d, %d B", l.Len(), s.TailDropped, s.QueueHighBytes, tc.queued, tc.drops, tc.highBytes)
			}
			// Half a frame time later one frame has left the queue, so
			// exactly one more fits.
			later := t0.Add(500 * time.Microsecond)
			if f, _ := l.Queue(later); f != int(tc.queued) {
				t.Fatalf("queue %d frames before the first leaves, want %d", f, tc.queued)
			}
			later = t0.Add(1500 * time.Microsecond)
			f, b := l.Queue(later)
			if f != int(tc.queued)-1 || b != f*tc.size {
				t.Fatalf("queue %d frames %d bytes after one left, want %d", f, b, tc.queued-1)
			}
			if o := l.Enqueue(buf, later); o&Queued == 0 {
				t.Fatalf("arrival after a departure: outcome %b", o)
			}
			if o := l.Enqueue(buf, later); (o&TailDropped != 0) != (tc.drops > 0) {
				t.Fatalf("second arrival: outcome %b", o)
			}
			checkBalance(t, l)
		})
	}
}

func TestECN(t *testing.T) {
	const burst, limit, k = 30, 20, 5
	for _, tc := range []struct {
		name   string
		thresh Limit
		tos    byte
		vlan   bool
		marked uint64 // frames marked of the burst
	}{
		{"ECT(0)", Limit{Frames: k}, 0x02, false, limit - k - 1},
		{"ECT(1) with DSCP", Limit{Frames: k}, 0xb9, false, limit - k - 1},
		{"Not-ECT", Limit{Frames: k}, 0x00, false, 0},
		{"CE stays CE", Limit{Frames: k}, 0x03, false, 0},
		{"VLAN tagged", Limit{Frames: k}, 0x02, true, limit - k - 1},
		{"bytes", Limit{Bytes: k * 1000}, 0x02, false, limit - k - 1},
		{"no threshold", Limit{}, 0x02, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, Config{RateBps: 8e6, QueueLimit: Limit{Frames: limit}, ECNThreshold: tc.thresh})
			buf := make([]byte, 1004)
			for i := range burst {
				f := frame(buf, 1000, uint32(i), tc.tos)
				if tc.vlan {
					inner := frame(make([]byte, 1000), 1000, uint32(i), tc.tos)
					f = buf[:1004]
					copy(f, inner[:12])
					binary.BigEndian.PutUint32(f[12:], 0x8100_0000) // TPID, TCI 0
					copy(f[16:], inner[12:])
				}
				l.Enqueue(f, t0)
			}
			if s := l.Stats(); s.CEMarked != tc.marked || s.TailDropped != burst-limit {
				t.Fatalf("marked %d, tail-dropped %d; want %d, %d", s.CEMarked, s.TailDropped, tc.marked, burst-limit)
			}
			out := make([][]byte, 64)
			n := l.Dequeue(t0.Add(time.Hour), out)
			var ce uint64
			for i, f := range out[:n] {
				ip := f[14:]
				if tc.vlan {
					ip = f[18:]
				}
				if ipSum(ip[:20]) != 0 {
					t.Fatalf("frame %d: bad IPv4 checksum after marking", i)
				}
				if ip[1]&^3 != tc.tos&^3 {
					t.Fatalf("frame %d: DSCP changed from %#x to %#x", i, tc.tos, ip[1])
				}
				wantCE := tc.tos&3 == 3 || uint64(i) > k && uint64(i)-k <= tc.marked
				if (ip[1]&3 == 3) != wantCE {
					t.Fatalf("frame %d: TOS %#x, want CE=%v", i, ip[1], wantCE)
				}
				if ip[1]&3 == 3 && tc.tos&3 != 3 {
					ce++
				}
			}
			if ce != tc.marked {
				t.Fatalf("%d delivered frames marked, want %d", ce, tc.marked)
			}
		})
	}
	// Frames that are not IPv4 pass untouched.
	for _, f := range [][]byte{make([]byte, 10), append(make([]byte, 12), 0x86, 0xdd, 0x60, 0x03)} {
		c := append([]byte(nil), f...)
		if markCE(c) || !reflect.DeepEqual(c, f) {
			t.Fatalf("markCE changed a non-IPv4 frame %x", f)
		}
	}
}

// trace runs a mixed workload and records every outcome and delivery.
func trace(seed int64) (outcomes []Outcome, deliveries []uint64) {
	l, _ := New(Config{Seed: seed, Loss: 0.05, Duplicate: 0.02, Reorder: 0.05, ReorderDelay: 3 * time.Millisecond,
		Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, RateBps: 20e6,
		QueueLimit: Limit{Frames: 30}, ECNThreshold: Limit{Frames: 10}})
	arrivals := rand.New(rand.NewPCG(99, 99)) // the same traffic for every seed
	buf := make([]byte, 1500)
	out := make([][]byte, 8)
	now := t0
	for i := range 20_000 {
		outcomes = append(outcomes, l.Enqueue(frame(buf, 64+arrivals.IntN(1400), uint32(i), 0x02), now))
		now = now.Add(time.Duration(arrivals.IntN(600)) * time.Microsecond)
		for k := l.Dequeue(now, out); k > 0; k = l.Dequeue(now, out) {
			for _, f := range out[:k] {
				deliveries = append(deliveries, uint64(seqOf(f))<<32|uint64(now.Sub(t0)/time.Microsecond))
			}
		}
	}
	return outcomes, deliveries
}

func TestSameSeedSameOutcome(t *testing.T) {
	o1, d1 := trace(42)
	o2, d2 := trace(42)
	if !reflect.DeepEqual(o1, o2) || !reflect.DeepEqual(d1, d2) {
		t.Fatal("the same seed gave different runs")
	}
	o3, d3 := trace(43)
	if reflect.DeepEqual(o1, o3) || reflect.DeepEqual(d1, d3) {
		t.Fatal("different seeds gave the same run")
	}
	var counts [8]int
	for _, o := range o1 {
		for b := range 7 {
			if o&(1<<b) != 0 {
				counts[b]++
			}
		}
	}
	t.Logf("outcomes of 20000 frames (queued, lost, dup, taildrop, marked, held, dropped): %v; %d delivered", counts[:7], len(d1))
	for b, c := range counts[:6] {
		if c == 0 {
			t.Errorf("outcome bit %d never happened; the workload does not exercise it", b)
		}
	}
}

func TestCapacity(t *testing.T) {
	l := mustNew(t, Config{Capacity: 100, Delay: time.Millisecond})
	buf := make([]byte, 64)
	for i := range 150 {
		l.Enqueue(frame(buf, 64, uint32(i), 0), t0)
	}
	if s := l.Stats(); s.Overflow != 50 || l.Len() != 100 || l.Room() != 0 {
		t.Fatalf("overflow %d, len %d, room %d; want 50, 100, 0", s.Overflow, l.Len(), l.Room())
	}
	out := make([][]byte, 60)
	if n := l.Dequeue(t0.Add(time.Millisecond), out); n != 60 || l.Room() != 0 {
		t.Fatalf("Dequeue = %d, room %d; want 60, 0 (views still held)", n, l.Room())
	}
	if n := l.Dequeue(t0.Add(time.Millisecond), out[:1]); n != 1 || l.Room() != 60 {
		t.Fatalf("Dequeue = %d, room %d; want 1, 60", n, l.Room())
	}
	if l.Enqueue(make([]byte, 2000), t0).String() == "" {
		t.Fatal("empty outcome string")
	}
	if l.Stats().Oversize != 1 {
		t.Fatal("an oversize frame was not counted")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Loss: -0.1}, {Duplicate: 1.5}, {Reorder: math.NaN()}, {Reorder: 0.1},
		{Delay: -1}, {QueueLimit: Limit{Frames: -1}}, {Capacity: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		}
	}
	if _, err := New(Config{Loss: 1, Reorder: 1, ReorderDelay: 1}); err != nil {
		t.Error(err)
	}
}

func TestZeroAllocs(t *testing.T) {
	l := mustNew(t, Config{Seed: 1, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderDelay: time.Millisecond,
		Delay: time.Millisecond, Jitter: time.Millisecond, RateBps: 1e9,
		QueueLimit: Limit{Frames: 100}, ECNThreshold: Limit{Frames: 10}})
	buf := make([]byte, 1500)
	f := frame(buf, 1500, 0, 0x02)
	out := make([][]byte, 32)
	now := t0
	step := func() {
		for range 32 {
			l.Enqueue(f, now)
		}
		now = now.Add(time.Millisecond)
		l.Dequeue(now, out)
	}
	for range 1000 {
		step() // grow to the steady state
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Fatalf("%.1f allocations per 32 frames", a)
	}
}

func BenchmarkLink(b *testing.B) {
	l := mustNew(b, Config{Seed: 1, Loss: 0.01, Delay: time.Millisecond, RateBps: 10e9, QueueLimit: Limit{Frames: 1000}})
	buf := make([]byte, 1500)
	f := frame(buf, 1500, 0, 0)
	out := make([][]byte, 64)
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Enqueue(f, now)
		if i%32 == 31 {
			now = now.Add(40 * time.Microsecond)
			l.Dequeue(now, out)
		}
	}
}

// TestArrivalLearnedLate checks that a Dequeue at a later time does not
// change what an arrival stamped earlier finds in the queue, as the bridge
// enqueues with kernel receive stamps after delivering.
func TestArrivalLearnedLate(t *testing.T) {
	l := mustNew(t, Config{RateBps: 8e6, QueueLimit: Limit{Frames: 1}}) // 1 ms per 1000 B
	buf := make([]byte, 1000)
	l.Enqueue(buf, t0)
	out := make([][]byte, 4)
	if n := l.Dequeue(t0.Add(5*time.Millisecond), out); n != 1 {
		t.Fatalf("Dequeue = %d", n)
	}
	if o := l.Enqueue(buf, t0.Add(500*time.Microsecond)); o != TailDropped {
		t.Fatalf("an arrival while the first frame was on the wire: %v, want tail-dropped", o)
	}
	if o := l.Enqueue(buf, t0.Add(time.Millisecond)); o != Queued {
		t.Fatalf("an arrival after it left: %v, want queued", o)
	}
}
