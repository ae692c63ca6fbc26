package cc

import (
	"errors"
	"testing"
	"time"
)

// step is one Update and the rate (kbit/s) the published formula gives.
type step struct {
	s    Sample
	want uint32
}

// run feeds steps to a fresh controller and compares each rate with the
// hand-computed one, within 1 kbit/s (float64 rounding at the floor to
// kbit/s).
func run(t *testing.T, name string, p Params, steps []step) Controller {
	t.Helper()
	c, err := New(name, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		got := c.Update(&st.s)
		if d := int64(got) - int64(st.want); d < -1 || d > 1 {
			t.Fatalf("%s step %d: rate %d kbit/s, want %d", name, i, got, st.want)
		}
	}
	return c
}

func TestNew(t *testing.T) {
	if _, err := New("cubic", Params{}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("New(cubic) = %v, want ErrUnknown", err)
	}
	if _, err := New("powertcp", Params{Gamma: 1.5}); !errors.Is(err, ErrParams) {
		t.Fatalf("gamma 1.5: %v, want ErrParams", err)
	}
	want := map[string]int{"reno": 2, "dctcp-rate": 2, "dctcp-win": 2, "timely": 2, "const-rate": 2,
		"powertcp": 1, "theta-powertcp": 1}
	if len(Names()) != len(want) {
		t.Fatalf("Names() = %v", Names())
	}
	for _, n := range Names() {
		c, err := New(n, Params{})
		if err != nil || c.Interval() != want[n] {
			t.Fatalf("%s: %v, interval %d, want %d (TAS: 2 RTTs; PowerTCP: 1)", n, err, c.Interval(), want[n])
		}
	}
	c, _ := New("timely", Params{Interval: 3})
	if c.Interval() != 3 {
		t.Fatalf("Interval parameter ignored: %d", c.Interval())
	}
}

func TestRenoSetsNoRate(t *testing.T) {
	run(t, "reno", Params{}, []step{{Sample{Elapsed: 1e5, Acks: 100, Acked: 1e5, ECN: 5e4, RTT: 10}, 0}})
}

func TestConstRate(t *testing.T) {
	// 2.5 Gbit/s = 2_500_000 kbit/s whatever the sample says; the default
	// is the line rate (10 Gbit/s).
	run(t, "const-rate", Params{ConstBps: 2_500_000_000}, []step{
		{Sample{Elapsed: 1e5, Acks: 100, Acked: 1e5, ECN: 1e5, Losses: 3}, 2_500_000}})
	run(t, "const-rate", Params{}, []step{{Sample{}, 10_000_000}})
}

func TestDCTCPRateGolden(t *testing.T) {
	// Start 10 Mbit/s, α0 = 0, g = 1/16, step 10 Mbit/s. The measured
	// rate (7/8 EWMA from 0, cap 1.2·max(act, EWMA)) never binds here.
	run(t, "dctcp-rate", Params{}, []step{
		// No marks: slow start doubles 10 → 20 Mbit/s (act 72_500·8/100 µs
		// = 5.8 Gbit/s).
		{Sample{Elapsed: 100_000, Acks: 50, Acked: 72_500}, 20_000},
		// A mark ends slow start and is acted on at once: F = 0.5,
		// α = 0 + 0.5/16 = 0.03125; 20e6·(1 − 0.015625) = 19_687_500.
		{Sample{Elapsed: 100_000, Acks: 50, Acked: 72_500, ECN: 36_250}, 19_687},
		// No marks: α = 0.03125·15/16; + 10 Mbit/s = 29_687_500.
		{Sample{Elapsed: 100_000, Acks: 50, Acked: 72_500}, 29_687},
		// 49 ACKs are fewer than 50: no update.
		{Sample{Elapsed: 100_000, Acks: 49, Acked: 71_050}, 29_687},
		// The next ACK makes 50, with a loss: halve = 14_843_750.
		{Sample{Elapsed: 100_000, Acks: 1, Acked: 1_450, Losses: 1}, 14_843},
		// α went 0.03125 → 0.029296875 (no marks) and the loss left it;
		// F = 1: α = 0.029296875·15/16 + 1/16 = 0.0899658203125;
		// 14_843_750·(1 − 0.04498291015625) = 14_176_040.6.
		{Sample{Elapsed: 100_000, Acks: 50, Acked: 72_500, ECN: 72_500}, 14_176},
	})
}

func TestDCTCPRateCapAndFloor(t *testing.T) {
	run(t, "dctcp-rate", Params{InitBps: 100_000_000}, []step{
		// act = 5_000·8/1 ms = 40 Mbit/s, EWMA 40/8 = 5: the rate is
		// capped at 1.2·40 = 48 before slow start doubles it: 96.
		{Sample{Elapsed: 1e6, Acks: 50, Acked: 5_000}, 96_000},
		// act 120, EWMA 7/8·5 + 15 = 19.375: cap 144 does not bind: 192.
		{Sample{Elapsed: 1e6, Acks: 50, Acked: 15_000}, 192_000},
		// act 40, EWMA 7/8·19.375 + 5 = 21.953125: cap 48 → 96.
		{Sample{Elapsed: 1e6, Acks: 50, Acked: 5_000}, 96_000},
		// act 8, EWMA 7/8·21.953125 + 1 = 20.208984375 > act: cap
		// 1.2·20.208984375 = 24.25078125 → doubled 48.5015625.
		{Sample{Elapsed: 1e6, Acks: 50, Acked: 1_000}, 48_501},
	})
	// A loss ends slow start and halves: 10 → 5 → 2.5 → 1.25 → 1 Mbit/s
	// (the floor).
	loss := Sample{Elapsed: 100_000, Acks: 50, Acked: 72_500, Losses: 1}
	run(t, "dctcp-rate", Params{}, []step{{loss, 5_000}, {loss, 2_500}, {loss, 1_250}, {loss, 1_000}})
}

func TestDCTCPWinGolden(t *testing.T) {
	// w0 = 2800 B, MSS 1448, α0 = 0, link 10 Gbit/s; rate = w·8/max(RTT, w·8/link).
	c := run(t, "dctcp-win", Params{}, []step{
		// Slow start: w = 2800 + 2896 = 5696; 5696·8/100 µs = 455.68 Mbit/s.
		{Sample{Acked: 2_896, SRTT: 100}, 455_680},
		// A mark ends slow start and is acted on: α = 0.5/16 = 0.03125;
		// w = 5696·(1 − 0.015625) = 5607; ·8/100 µs = 448.56 Mbit/s.
		{Sample{Acked: 5_696, ECN: 2_848, SRTT: 100}, 448_560},
		// Congestion avoidance: w += 1448·3104/5607 = 801.603710;
		// w = 6408.603710; ·8/100 µs = 512_688_296.8 bit/s.
		{Sample{Acked: 3_104, SRTT: 100}, 512_688},
		// RTT 1 µs < w·8/link = 5.13 µs: the link rate.
		{Sample{SRTT: 1}, 10_000_000},
		// Loss halves: w = 3204.301855; ·8/100 µs = 256_344_148.4.
		{Sample{Losses: 1, SRTT: 100}, 256_344},
	})
	// The window also caps the data in flight: 3204 B.
	if w := c.(Windowed).Window(); w != 3204 {
		t.Fatalf("window cap %d, want 3204", w)
	}
}

// fast is an ACK sample whose measured rate (125_000·8/100 µs = 10 Gbit/s)
// never caps TIMELY.
func fast(rtt uint32) Sample { return Sample{RTT: rtt, Elapsed: 100_000, Acked: 125_000} }

func TestTimelyGolden(t *testing.T) {
	// T_low 30, T_high 150, δ 10 Mbit/s, α 0.02, β 0.8, minRTT 11 µs.
	run(t, "timely", Params{}, []step{
		// Slow start while RTT ≤ 90 µs: 10 → 20 Mbit/s.
		{fast(20), 20_000},
		// RTT 100 > 90 ends slow start. diff = 0.02·80 = 1.6, grad =
		// 1.6/11 = 0.145454; 20e6·(1 − 0.8·0.145454) = 17_672_727.
		{fast(100), 17_672},
		// RTT 200 > T_high: diff = 0.98·1.6 + 0.02·100 = 3.568;
		// ·(1 − 0.8·(1 − 150/200)) = ·0.8 = 14_138_181.
		{fast(200), 14_138},
		// RTT 20 < T_low: + δ = 24_138_181.
		{fast(20), 24_138},
	})
	run(t, "timely", Params{}, []step{
		// RTT 100 > 90: no slow start; gradient 0 ≤ 0: + δ each time,
		// and from the fifth such increase in a row + 5δ.
		{fast(100), 20_000}, {fast(100), 30_000}, {fast(100), 40_000},
		{fast(100), 50_000}, {fast(100), 100_000}, {fast(100), 150_000},
		// diff = 0.02·10 = 0.2, grad = 0.0181818: 150e6·(1 − 0.0145454) = 147_818_181.
		{fast(110), 147_818},
	})
}

func TestTimelyFloorsAndCap(t *testing.T) {
	run(t, "timely", Params{InitBps: 100_000_000}, []step{
		// RTT 100 > 90 µs: no slow start; no previous RTT, gradient 0: + δ.
		{fast(100), 110_000},
		// RTT 1500: factor 1 − 0.8·(1 − 0.1) = 0.28 → 30.8 Mbit/s, but one
		// update keeps at least half: 55 Mbit/s.
		{fast(1500), 55_000},
	})
	run(t, "timely", Params{InitBps: 100_000_000}, []step{
		// Out of slow start the rate is first capped at 1.2 × 5_000·8/1 ms
		// = 48 Mbit/s, then grows by δ: 58.
		{Sample{RTT: 100, Elapsed: 1e6, Acked: 5_000}, 58_000},
	})
	run(t, "timely", Params{InitBps: 100_000_000}, []step{
		// In slow start there is no cap: 200 Mbit/s.
		{Sample{RTT: 20, Elapsed: 1e6, Acked: 5_000}, 200_000},
	})
}

// PowerTCP with b = 10 Gbit/s and τ = 10 µs: BDP 12_500 B, β = BDP/10 =
// 1_250 B; γ = 0.9. The additive term is β/θ: 1 Gbit/s at θ = 10 µs,
// 0.5 Gbit/s at 20 µs.
var powerParams = Params{LinkBps: 10_000_000_000, BaseRTT: 10 * time.Microsecond}

func TestPowerTCPGolden(t *testing.T) {
	idle := func(ts, tx uint64) Hop { return Hop{TS: ts, TxBytes: tx, RateBps: 1e10} }
	c := run(t, "powertcp", powerParams, []step{
		// The first records only prime: the line rate.
		{Sample{RTT: 10, Elapsed: 1e4, Hops: []Hop{idle(1_000_000, 0), idle(1_000_000, 0)}}, 10_000_000},
		// Both hops sent 12_500 B in 10 µs, no queue: λ = 10 Gbit/s,
		// Γn = 1e10·(0 + 1e5)/(1e20·1e-5) = 1, Γs = 1. R = 0.9·(1e10/1 +
		// 1e9) + 0.1·1e10 = 1.09e10, capped at the line rate.
		{Sample{RTT: 10, Elapsed: 1e4, Hops: []Hop{idle(1_010_000, 12_500), idle(1_010_000, 12_500)}}, 10_000_000},
		// Hop 2 queued 12_500 B more while sending 12_500: λ = 2e10,
		// Γn = 2e10·(1e5 + 1e5)/1e15 = 4 (hop 1 has 1; the larger wins).
		// Γs = 4; θ = 20 µs. R = 0.9·(1e10/4 + 0.5e9) + 1e9 = 3.7e9.
		{Sample{RTT: 20, Elapsed: 1e4, Hops: []Hop{idle(1_020_000, 25_000),
			{QLen: 12_500, TxBytes: 25_000, TS: 1_020_000, RateBps: 1e10}}}, 3_700_000},
		// 5 µs on, hop 2's queue fell by 6_250 while it sent 6_250: λ = 0,
		// Γn = 0.01 (floor); hop 1: Γn = 1 wins. Δt = 5 µs:
		// Γs = (4·5 + 1·5)/10 = 2.5; β/θ = 1e4/15e-6 = 0.666667e9. R_old
		// is the rate before the previous update, 1e10:
		// R = 0.9·(1e10/2.5 + 0.666667e9) + 0.1·3.7e9 = 4.57e9.
		{Sample{RTT: 15, Elapsed: 5e3, Hops: []Hop{idle(1_025_000, 31_250),
			{QLen: 6_250, TxBytes: 31_250, TS: 1_025_000, RateBps: 1e10}}}, 4_570_000},
	})
	if p := c.(*PowerTCP); p.Fallbacks != 0 {
		t.Fatalf("%d fallbacks with telemetry on every ACK", p.Fallbacks)
	}
}

func TestPowerTCPBeta(t *testing.T) {
	// β = 2_500 B and no RTT sample, so θ = τ: β/θ = 2 Gbit/s. Γs = 4
	// (as the third step above): R = 0.9·(1e10/4 + 2e9) + 1e9 = 5.05e9.
	p := powerParams
	p.Beta = 2_500
	h := func(ts, q, tx uint64) []Hop { return []Hop{{QLen: q, TxBytes: tx, TS: ts, RateBps: 1e10}} }
	run(t, "powertcp", p, []step{
		{Sample{Hops: h(1_000_000, 0, 0)}, 10_000_000},
		{Sample{Hops: h(1_010_000, 12_500, 12_500)}, 5_050_000},
	})
}

func TestThetaPowerTCPGolden(t *testing.T) {
	steps := []step{
		// The first RTT only primes: the line rate.
		{Sample{RTT: 10, Elapsed: 10_000}, 10_000_000},
		// dθ/dt = (20 − 10) µs/10 µs = 1: Γn = (1 + 1)·20/10 = 4 = Γs
		// (Δt = τ). R = 0.9·(1e10/4 + 0.5e9) + 0.1·1e10 = 3.7e9.
		{Sample{RTT: 20, Elapsed: 10_000}, 3_700_000},
		// dθ/dt = 20/10 = 2: Γn = 3·40/10 = 12; β/θ = 1e4/40e-6 = 0.25e9;
		// R_old = 1e10 (before the previous update):
		// R = 0.9·(1e10/12 + 0.25e9) + 0.1·3.7e9 = 1.345e9.
		{Sample{RTT: 40, Elapsed: 10_000}, 1_345_000},
		// dθ/dt = −8/10: 1 + dθ/dt = 0.2, floored at 0.5: Γn = 0.5·32/10
		// = 1.6; β/θ = 1e4/32e-6 = 0.3125e9; R_old = 3.7e9:
		// R = 0.9·(3.7e9/1.6 + 0.3125e9) + 0.1·1.345e9 = 2.497e9.
		{Sample{RTT: 32, Elapsed: 10_000}, 2_497_000},
	}
	run(t, "theta-powertcp", powerParams, steps)
	// PowerTCP without telemetry falls back to the same law, and counts.
	c := run(t, "powertcp", powerParams, steps)
	if p := c.(*PowerTCP); p.Fallbacks != 4 {
		t.Fatalf("fallbacks %d, want 4", p.Fallbacks)
	}
}

func TestPowerTCPRateFloor(t *testing.T) {
	// γ = 1 and β = 1 B (β/θ ≤ 0.8 Mbit/s) so the floor b/1000 = 10 Mbit/s
	// is reachable in one step.
	p := powerParams
	p.Beta, p.Gamma = 1, 1
	run(t, "theta-powertcp", p, []step{
		{Sample{RTT: 10, Elapsed: 10_000}, 10_000_000},
		// Γn = 4 as above: R = 1e10/4 + 8/20e-6 = 2_500_400_000.
		{Sample{RTT: 20, Elapsed: 10_000}, 2_500_400},
		// dθ/dt = 980/10 = 98: Γn = 99·1000/10 = 9900; R = R_old/9900 +
		// 8/1e-3 = 1e10/9900 + 8e3 = 1_018_101 bit/s, below the floor: 10 Mbit/s.
		{Sample{RTT: 1000, Elapsed: 10_000}, 10_000},
	})
}

func TestTunedThresholds(t *testing.T) {
	p := Params{TLow: 300 * time.Microsecond, THigh: 1500 * time.Microsecond}
	run(t, "timely", p, []step{
		// RTT 1000 > (300 + 1500)/2: no slow start; between the
		// thresholds, gradient 0: + δ = 20 Mbit/s. (With TAS's 30/150 µs
		// it would be a decrease, floored at 10 Mbit/s.)
		{fast(1000), 20_000},
		// RTT 2000 > T_high: ·(1 − 0.8·(1 − 1500/2000)) = ·0.8 = 16 Mbit/s.
		{fast(2000), 16_000},
	})
	run(t, "timely", Params{}, []step{{fast(1000), 10_000}})
	// 10 ACKs are enough with MinAcks 10: slow start doubles 10 → 20.
	run(t, "dctcp-rate", Params{MinAcks: 10}, []step{{Sample{Elapsed: 100_000, Acks: 10, Acked: 14_500}, 20_000}})
	run(t, "dctcp-rate", Params{}, []step{{Sample{Elapsed: 100_000, Acks: 10, Acked: 14_500}, 10_000}})
	if _, err := New("timely", Params{TLow: time.Millisecond, THigh: time.Millisecond}); !errors.Is(err, ErrParams) {
		t.Fatalf("T_low = T_high: %v, want ErrParams", err)
	}
}

// An empty Sample (the slow path's call when a flow starts) changes
// nothing and returns the initial rate, which the flow starts with: TAS's
// 10 Mbit/s for dctcp-rate and timely; dctcp-win's 2·1400 B over TAS's
// initial RTT of 50 µs = 448 Mbit/s; PowerTCP's line rate.
func TestInitialRates(t *testing.T) {
	for name, want := range map[string]uint32{"dctcp-rate": 10_000, "timely": 10_000, "dctcp-win": 448_000,
		"powertcp": 10_000_000, "theta-powertcp": 10_000_000, "const-rate": 10_000_000, "reno": 0} {
		run(t, name, Params{}, []step{{Sample{}, want}, {Sample{}, want}})
	}
}
