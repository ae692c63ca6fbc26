package tcp

import (
	"fmt"
	"math/bits"
	"testing"
	"time"
)

func pollAll(w *Wheel, now uint64) []uint32 {
	var out [256]uint32
	n := w.Poll(now, out[:])
	return append([]uint32(nil), out[:n]...)
}

func TestWheelTable(t *testing.T) {
	type sched struct {
		flow uint32
		at   uint64
	}
	type poll struct {
		now  uint64
		want []uint32
	}
	tests := []struct {
		name  string
		slots int
		start uint64
		ops   []any // sched, poll, or cancel (uint32)
	}{
		{"exact order within and across slots", 64, 0, []any{
			sched{1, 1500}, sched{2, 1200}, sched{3, 1200}, sched{4, 999}, sched{5, 2500},
			poll{1199, []uint32{4}},
			poll{2000, []uint32{2, 3, 1}},
			poll{2499, nil},
			poll{2500, []uint32{5}},
		}},
		{"reschedule moves", 64, 0, []any{
			sched{1, 5000}, sched{1, 3000}, sched{2, 4000},
			poll{3500, []uint32{1}},
			sched{2, 9000}, poll{8999, nil}, poll{9000, []uint32{2}},
			poll{100000, nil},
		}},
		{"cancel", 64, 0, []any{
			sched{1, 5000}, sched{2, 5000}, uint32(1), uint32(7),
			poll{6000, []uint32{2}},
		}},
		{"past time is due at once", 64, 1_000_000, []any{
			sched{1, 5}, sched{2, 1_000_100}, sched{3, 999_000},
			poll{1_000_000, []uint32{1, 3}},
			poll{1_000_100, []uint32{2}},
		}},
		{"beyond the horizon, stepping", 64, 0, []any{
			sched{1, 1_000_000}, // 15.6 horizons away
			poll{64_000, nil}, poll{128_000, nil}, poll{500_000, nil}, poll{999_999, nil},
			poll{1_000_000, []uint32{1}},
		}},
		{"beyond the horizon, one jump keeps time order", 64, 0, []any{
			sched{1, 100_500}, // tick 100: parked in slot of tick 63
			sched{2, 63_500},  // tick 63, same physical slot, genuine
			sched{3, 50_000},
			sched{4, 64_500},     // tick 64: parked too
			sched{5, 6_400_000},  // far: not due in the jump
			sched{6, 90_000_000}, // farther
			poll{200_000, []uint32{3, 2, 4, 1}},
			poll{6_399_999, nil},
			poll{6_400_000, []uint32{5}},
			poll{1 << 40, []uint32{6}},
		}},
		{"wraps the physical slots many times", 64, 0, []any{
			sched{1, 63_999}, sched{2, 64_000}, sched{3, 127_999}, sched{4, 128_000},
			poll{63_999, []uint32{1}},
			poll{127_999, []uint32{2, 3}},
			poll{128_000, []uint32{4}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWheel(16, 1000, tt.slots, tt.start)
			for i, op := range tt.ops {
				switch op := op.(type) {
				case sched:
					w.Schedule(op.flow, op.at)
					if at, ok := w.Scheduled(op.flow); !ok || at != op.at {
						t.Fatalf("op %d: Scheduled(%d) = %d %v", i, op.flow, at, ok)
					}
				case uint32:
					w.Cancel(op)
					if _, ok := w.Scheduled(op); ok {
						t.Fatalf("op %d: still scheduled after Cancel", i)
					}
				case poll:
					got := pollAll(w, op.now)
					if fmt.Sprint(got) != fmt.Sprint(op.want) && !(len(got) == 0 && len(op.want) == 0) {
						t.Fatalf("op %d: Poll(%d) = %v, want %v", i, op.now, got, op.want)
					}
					for _, f := range got {
						if _, ok := w.Scheduled(f); ok {
							t.Fatalf("polled flow %d still scheduled", f)
						}
					}
				}
			}
			if w.Len() != 0 {
				t.Fatalf("Len = %d at the end", w.Len())
			}
		})
	}
}

func TestWheelSmallOut(t *testing.T) {
	w := NewWheel(100, 1000, 64, 0)
	for f := uint32(0); f < 100; f++ {
		w.Schedule(f, uint64(99-f)*1500) // spans 2+ horizons, reverse order
	}
	var out [3]uint32
	var got []uint32
	for {
		n := w.Poll(200_000, out[:])
		if n == 0 {
			break
		}
		got = append(got, out[:n]...)
	}
	if len(got) != 100 {
		t.Fatalf("got %d flows", len(got))
	}
	for i, f := range got {
		if f != uint32(99-i) {
			t.Fatalf("position %d: flow %d, want %d", i, f, 99-i)
		}
	}
}

func TestWheelNextDue(t *testing.T) {
	w := NewWheel(4, 1000, 64, 5000)
	if _, ok := w.NextDue(); ok {
		t.Fatalf("empty wheel has a due time")
	}
	w.Schedule(1, 12_345)
	if d, ok := w.NextDue(); !ok || d != 12_000 {
		t.Fatalf("NextDue = %d %v", d, ok)
	}
	w.Schedule(2, 7_000_000) // beyond the horizon: parked at the last slot
	w.Cancel(1)
	if d, ok := w.NextDue(); !ok || d != (5+63)*1000 {
		t.Fatalf("NextDue = %d %v, want %d", d, ok, (5+63)*1000)
	}
}

// TestWheelRandomModel checks every Poll against a plain list: output in
// time order, only due flows, nothing due left behind unless out was full
// (and then only flows not earlier than the last one returned).
func TestWheelRandomModel(t *testing.T) {
	r := newRand(3)
	for round := 0; round < 20; round++ {
		const flows = 200
		gran := uint64(1 + r.Intn(2000))
		slots := 64 << r.Intn(3)
		horizon := gran * uint64(slots)
		now := r.Uint64() >> 8
		w := NewWheel(flows, gran, slots, now)
		var at [flows]uint64
		var on [flows]bool
		count := 0
		out := make([]uint32, 16)
		for step := 0; step < 20000; step++ {
			switch k := r.Intn(10); {
			case k < 5:
				f := uint32(r.Intn(flows))
				var d uint64
				switch r.Intn(7) {
				case 2:
					// Whole horizons ahead: many flows share a time
					// (equal keys in one parked slot).
					d = (now/horizon + uint64(1+r.Intn(30))) * horizon
				case 0:
					d = now - uint64(r.Intn(int(2*horizon))) // past
					if d > now {
						d = 0
					}
				case 1:
					d = now + uint64(r.Intn(int(30*horizon))) // beyond the horizon
				default:
					d = now + uint64(r.Intn(int(horizon)))
				}
				w.Schedule(f, d)
				if !on[f] {
					count++
				}
				at[f], on[f] = d, true
			case k < 6:
				f := uint32(r.Intn(flows))
				if w.Cancel(f) != on[f] {
					t.Fatalf("Cancel(%d) disagrees", f)
				}
				if on[f] {
					count--
				}
				on[f] = false
			default:
				switch r.Intn(20) {
				case 0:
					now += uint64(r.Intn(int(40 * horizon))) // long gap
				case 1:
				default:
					now += uint64(r.Intn(int(3 * gran)))
				}
				o := out[:1+r.Intn(len(out))]
				n := w.Poll(now, o)
				var last uint64
				for i, f := range o[:n] {
					if !on[f] || at[f] > now {
						t.Fatalf("round %d step %d: Poll returned flow %d (on %v at %d now %d)", round, step, f, on[f], at[f], now)
					}
					if i > 0 && at[f] < last {
						t.Fatalf("round %d step %d: out of order: %v", round, step, o[:n])
					}
					last = at[f]
					on[f] = false
					count--
				}
				for f := range on {
					if !on[f] || at[f] > now {
						continue
					}
					if n < len(o) || at[f] < last {
						t.Fatalf("round %d step %d: due flow %d (at %d, now %d) left behind; n=%d/%d last=%d", round, step, f, at[f], now, n, len(o), last)
					}
				}
			}
			if w.Len() != count {
				t.Fatalf("Len = %d, want %d", w.Len(), count)
			}
		}
	}
}

func TestWheelNoAllocs(t *testing.T) {
	w := NewWheel(1024, 1000, 4096, 0)
	out := make([]uint32, 32)
	now := uint64(0)
	i := uint32(0)
	a := testing.AllocsPerRun(10000, func() {
		w.Schedule(i%1024, now+uint64(i%5000)*100)
		now += 500
		w.Poll(now, out)
		i++
	})
	if a != 0 {
		t.Fatalf("allocs %v", a)
	}
	var p Pacer
	p.SetRate(1e9)
	if a := testing.AllocsPerRun(1000, func() { now = p.Sent(now, 1448) }); a != 0 {
		t.Fatalf("pacer allocs %v", a)
	}
}

// TestPacerExact: back-to-back segments at awkward rates take exactly
// floor(bytes*1e9/rate) ns in total: no drift from rounding.
func TestPacerExact(t *testing.T) {
	for _, tc := range []struct {
		rate uint64
		seg  uint32
	}{
		{1_234_567, 1448}, {1_250_000_000, 1448}, {3, 1}, {125_000_000_000, 9000}, {999_999_937, 1}, {7, 65535},
	} {
		var p Pacer
		p.SetRate(tc.rate)
		start := uint64(1) << 40
		now := start
		p.Sent(now, 0) // anchor next at start
		const segs = 1_000_000
		for i := 0; i < segs; i++ {
			now = p.Sent(now, tc.seg) // send exactly when allowed
		}
		hi, lo := bits.Mul64(uint64(segs)*uint64(tc.seg), 1_000_000_000)
		want, _ := bits.Div64(hi, lo, tc.rate)
		if got := now - start; got != want {
			t.Errorf("rate %d seg %d: %d ns, want %d", tc.rate, tc.seg, got, want)
		}
	}
}

func TestPacerRates(t *testing.T) {
	var p Pacer
	if p.Sent(42, 1448) != 42 {
		t.Fatalf("unlimited pacer must not delay")
	}
	p.SetRateKbps(8) // 1000 B/s
	if p.Rate() != 1000 {
		t.Fatalf("kbps conversion: %d", p.Rate())
	}
	p.Burst = 0
	if got := p.Sent(5_000_000_000, 500); got != 5_500_000_000 {
		t.Fatalf("Sent = %d", got)
	}
	// Late by 2 s with Burst 1 s: only 1 s of credit.
	p.Burst = 1_000_000_000
	if got := p.Sent(7_500_000_000, 1000); got != 7_500_000_000 {
		t.Fatalf("Sent with credit = %d, want 7.5e9", got)
	}
	if got := p.Sent(7_500_000_000, 1000); got != 8_500_000_000 {
		t.Fatalf("Sent after credit = %d", got)
	}
}

// TestPacedWheelRate runs flows through a 1 µs wheel polled once per slot,
// as a fast-path core would, and checks each flow's achieved rate over
// 1e6 segments of the fastest one.
func TestPacedWheelRate(t *testing.T) {
	rates := []uint64{1_250_000_000, 125_000_000, 12_500_000, 412_345_678} // 10G, 1G, 100M, odd
	const seg = 1448
	const gran = 1000
	w := NewWheel(uint32(len(rates)), gran, 4096, 0)
	pacers := make([]Pacer, len(rates))
	sent := make([]uint64, len(rates))
	for f := range rates {
		pacers[f].SetRate(rates[f])
		pacers[f].Burst = 2 * gran
		w.Schedule(uint32(f), 0)
	}
	out := make([]uint32, 16)
	var now uint64
	for sent[0] < 1_000_000 {
		now += gran
		n := w.Poll(now, out)
		for _, f := range out[:n] {
			for { // send while the pacer allows (catch-up after a late poll)
				sent[f]++
				next := pacers[f].Sent(now, seg)
				if next > now {
					w.Schedule(f, next)
					break
				}
			}
		}
	}
	for f, r := range rates {
		got := float64(sent[f]*seg) * 1e9 / float64(now)
		if err := (got - float64(r)) / float64(r); err < -0.001 || err > 0.001 {
			t.Errorf("flow %d: %.0f B/s, want %d (error %.4f%%)", f, got, r, 100*err)
		} else {
			t.Logf("flow %d: %d segments, %.0f B/s, error %+.5f%%", f, sent[f], got, 100*err)
		}
	}
}

func BenchmarkWheelSchedulePoll(b *testing.B) {
	// 10k active flows, each re-armed 1..4096 µs ahead when it fires; the
	// wheel is polled every 1 µs slot. One op = one flow fired + re-armed.
	const flows = 10000
	w := NewWheel(flows, 1000, 4096, 0)
	r := newRand(5)
	for f := uint32(0); f < flows; f++ {
		w.Schedule(f, uint64(r.Intn(4096))*1000)
	}
	out := make([]uint32, 64)
	var now uint64
	b.ResetTimer()
	for done := 0; done < b.N; {
		now += 1000
		n := w.Poll(now, out)
		for _, f := range out[:n] {
			w.Schedule(f, now+uint64(1+r.Intn(4096))*1000+uint64(f%1000))
		}
		done += n
	}
}

func BenchmarkWheelReschedule(b *testing.B) {
	// Moving an already scheduled flow (unlink + sorted insert).
	const flows = 10000
	w := NewWheel(flows, 1000, 4096, 0)
	for f := uint32(0); f < flows; f++ {
		w.Schedule(f, uint64(f)*300)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := uint32(i % flows)
		w.Schedule(f, uint64(i%4000)*1000+uint64(f))
	}
}

func BenchmarkPacerSent(b *testing.B) {
	var p Pacer
	p.SetRate(1_234_567_890)
	var now uint64
	for i := 0; i < b.N; i++ {
		now = p.Sent(now, 1448)
	}
}

// TestWheelPollAfterLongStall: a poller that comes back more than a
// whole rotation late (a core starved of CPU) must still return a flow
// parked beyond the horizon that is due by now. Before the fix, the flow
// was re-parked in the slot being swept, and Poll never returned.
func TestWheelPollAfterLongStall(t *testing.T) {
	const gran, slots = 50_000, 4096
	h := uint64(gran * slots)
	for _, k := range []uint64{2, 3, 7} {
		w := NewWheel(4, gran, slots, 0)
		w.Schedule(0, k*h+h/2) // parked: beyond the horizon
		w.Schedule(2, k*h+h/2) // the same time: equal keys ping-ponged
		w.Schedule(1, h/4)
		done := make(chan []uint32, 1)
		go func() {
			out := make([]uint32, 4)
			n := w.Poll((k+1)*h, out)
			done <- out[:n]
		}()
		select {
		case got := <-done:
			if len(got) != 3 || got[0] != 1 || got[1] != 0 || got[2] != 2 {
				t.Fatalf("stalled %d rotations: Poll returned %v, want [1 0 2]", k, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("stalled %d rotations: Poll does not return", k)
		}
	}
}
