package sim

import (
	"testing"
	"time"

	"gotas/internal/cc"
	"gotas/internal/slowpath"
)

// The scenarios run at 1 Gbit/s rather than datacenter rates: the real
// stack processes every frame, and at 1 Gbit/s each test takes about a
// second of CPU. Goodput is payload: 1448 of every 1514 wire bytes.
const (
	gbps    = 1_000_000_000
	goodput = 1448.0 / 1514
	// frameOverhead is the headers of a data frame: Ethernet, IPv4, TCP
	// and timestamps.
	frameOverhead = 14 + 20 + 20 + 12
)

// frameSize is a full data frame of algorithm name: telemetry flows leave
// room in each for the records (cc.INTReserve) and get one appended.
func frameSize(name string) int {
	if cc.WantsINT(name) {
		return 1514 - cc.INTReserve + 4 + cc.INTHopLen
	}
	return 1514
}

func scenario(ccName string, senders int, delay time.Duration, dur time.Duration) Config {
	c := Config{Seed: 1, Senders: senders, HostBps: gbps, Delay: delay, K: 30_000, CC: ccName, Duration: dur,
		Sample: 100 * time.Microsecond, Buffer: defaultBuffer,
		Stack: slowpath.Config{RTOMin: 2 * time.Millisecond, MSL: 10 * time.Millisecond, SynRTO: 5 * time.Millisecond}}
	c.CCParams.BaseRTT = c.BaseRTT()
	return c
}

func longFlows(c *Config, n int) {
	for i := range n {
		c.Flows = append(c.Flows, Flow{Sender: i % c.Senders})
	}
}

func mustRun(t *testing.T, c Config, warmup time.Duration) *Result {
	t.Helper()
	r, err := Run(c, warmup)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("flow errors: %v", r.Errors)
	}
	t.Logf("%s: %v (cpu %v)", c.CC, r, r.CPU)
	return r
}

func meanQueue(r *Result, from int) float64 {
	var s float64
	for _, q := range r.Queue[from:] {
		s += float64(q)
	}
	return s / float64(len(r.Queue)-from)
}

// One flow fills the link. dctcp-rate starts at 10 Mbit/s and waits for
// 50 ACKs between updates (TAS), so it needs ~250 ms to get there.
func TestOneFlowUtilization(t *testing.T) {
	for _, c := range []struct {
		cc          string
		dur, warmup time.Duration
	}{{"theta-powertcp", 50 * time.Millisecond, 20 * time.Millisecond}, {"powertcp", 50 * time.Millisecond, 20 * time.Millisecond},
		{"dctcp-rate", 300 * time.Millisecond, 250 * time.Millisecond}, {"reno", 50 * time.Millisecond, 20 * time.Millisecond}} {
		t.Run(c.cc, func(t *testing.T) {
			cfg := scenario(c.cc, 1, 5*time.Microsecond, c.dur)
			longFlows(&cfg, 1)
			r := mustRun(t, cfg, c.warmup)
			if r.Utilization < 0.95 || r.RTOs != 0 || r.Drops != 0 {
				t.Fatalf("utilization %.3f (want >= 0.95), %d RTOs, %d drops", r.Utilization, r.RTOs, r.Drops)
			}
		})
	}
}

// PowerTCP's equilibrium (cc.md 1.2): N flows share the link equally and
// hold a standing queue of N·β. τ is 1.025 ms so that N·β (12 KB) is a
// small part of the BDP (128 KB) and many frames deep. The standing queue
// is the median of the samples (the mean also counts the excursions the
// flows make around it, logged), less the frame being serialized, which
// the samples include. powertcp runs on the switch's telemetry,
// theta-powertcp on RTTs alone.
func TestPowerTCPEquilibrium(t *testing.T) {
	for _, name := range []string{"powertcp", "theta-powertcp"} {
		t.Run(name, func(t *testing.T) { equilibrium(t, name) })
	}
}

func equilibrium(t *testing.T, name string) {
	const n, beta = 4, 3000
	cfg := scenario(name, n, 250*time.Microsecond, 200*time.Millisecond)
	cfg.CCParams.Beta = beta
	longFlows(&cfg, n)
	r := mustRun(t, cfg, 100*time.Millisecond)
	if name == "powertcp" && (r.INTUpdates == 0 || r.NoINTUpdates > r.INTUpdates/10 || r.BadINT != 0) {
		t.Errorf("telemetry: %d updates with, %d without, %d bad options", r.INTUpdates, r.NoINTUpdates, r.BadINT)
	}
	frame := frameSize(name)
	share := gbps * float64(frame-frameOverhead) / float64(frame) / n
	for i, rate := range r.Rates {
		if rate < 0.9*share || rate > 1.1*share {
			t.Errorf("flow %d: %.1f Mbit/s, want b/N = %.1f ± 10%%", i, rate/1e6, share/1e6)
		}
	}
	q := float64(r.QueueP50 - frame)
	t.Logf("standing queue: median %.0f B, mean %.0f B (less one frame); N·β = %d", q, meanQueue(r, len(r.Queue)/2)-float64(frame), n*beta)
	if q < 0.9*n*beta || q > 1.1*n*beta {
		t.Errorf("standing queue %.0f B, want N·β = %d ± 10%%", q, n*beta)
	}
	if r.Utilization < 0.95 {
		t.Errorf("utilization %.3f, want >= 0.95", r.Utilization)
	}
}

// A path that strips the telemetry (a plain switch) leaves PowerTCP
// working on its RTT fallback, and the fallback is counted.
func TestPowerTCPWithoutINT(t *testing.T) {
	cfg := scenario("powertcp", 2, 250*time.Microsecond, 100*time.Millisecond)
	cfg.NoINT = true
	longFlows(&cfg, 2)
	r := mustRun(t, cfg, 50*time.Millisecond)
	if r.INTUpdates != 0 || r.NoINTUpdates == 0 || r.Utilization < 0.9 {
		t.Fatalf("%d updates with telemetry, %d without (want 0 and > 0), utilization %.3f (want >= 0.9)",
			r.INTUpdates, r.NoINTUpdates, r.Utilization)
	}
}

// 10:1 incast of 1 MB flows, all starting at line rate: the queue stays
// far from the buffer (no drops), no flow times out, and the transfer
// takes at most 1.2x the time the link needs for the bytes.
func TestIncast10(t *testing.T) {
	const n, size = 10, 1 << 20
	cfg := scenario("powertcp", n, 5*time.Microsecond, time.Second)
	for i := range n {
		cfg.Flows = append(cfg.Flows, Flow{Sender: i, Size: size})
	}
	r := mustRun(t, cfg, 0)
	// n·size payload bytes at the link's goodput: 87.7 ms.
	secs := float64(n*size) / goodput * 8 / gbps
	ideal := time.Duration(secs * float64(time.Second))
	if r.Finished != n || r.RTOs != 0 || r.Drops != 0 || r.QueueMax > cfg.Buffer/4 {
		t.Fatalf("finished %d/%d, %d RTOs, %d drops, peak queue %d B (buffer %d)", r.Finished, n, r.RTOs, r.Drops, r.QueueMax, cfg.Buffer)
	}
	if r.Duration > ideal*12/10 {
		t.Fatalf("took %v, want <= 1.2 x %v", r.Duration, ideal)
	}
}

// 255:1 incast of 20 KB flows from 15 hosts: everything arrives at once,
// the 4 MB buffer overflows, and every flow still completes.
func TestIncast255(t *testing.T) {
	const n, hosts, size = 255, 15, 20_000
	cfg := scenario("powertcp", hosts, 5*time.Microsecond, 2*time.Second)
	for i := range n {
		cfg.Flows = append(cfg.Flows, Flow{Sender: i % hosts, Size: size})
	}
	r := mustRun(t, cfg, 0)
	if r.Finished != n {
		t.Fatalf("%d of %d flows finished in %v", r.Finished, n, r.Duration)
	}
	t.Logf("255:1 done in %v with %d drops and %d RTOs", r.Duration, r.Drops, r.RTOs)
}

// A second flow joins a running one: after it settles the two share
// fairly.
func TestFairAfterJoin(t *testing.T) {
	for _, name := range []string{"powertcp", "theta-powertcp"} {
		t.Run(name, func(t *testing.T) {
			cfg := scenario(name, 2, 250*time.Microsecond, 200*time.Millisecond)
			cfg.Flows = []Flow{{Sender: 0}, {Sender: 1, Start: 50 * time.Millisecond}}
			r := mustRun(t, cfg, 120*time.Millisecond)
			if r.Jain < 0.95 || r.Utilization < 0.9 {
				t.Fatalf("Jain %.3f (want >= 0.95), utilization %.3f (want >= 0.9)", r.Jain, r.Utilization)
			}
		})
	}
}

// When one of two flows stops, the other takes the freed capacity: the
// time from the stop until it runs at 90% of the link is the step
// response, bounded at 30 base RTTs (measured: powertcp 3.9, θ 11.6).
func TestBandwidthStep(t *testing.T) {
	for _, name := range []string{"powertcp", "theta-powertcp"} {
		t.Run(name, func(t *testing.T) {
			const stop = 100 * time.Millisecond
			cfg := scenario(name, 2, 250*time.Microsecond, 200*time.Millisecond)
			cfg.Flows = []Flow{{Sender: 0}, {Sender: 1, Stop: stop}}
			r := mustRun(t, cfg, 0)
			frame := frameSize(name)
			line := gbps * float64(frame-frameOverhead) / float64(frame)
			took, ok := StepResponse(r, 0, stop, cfg.Sample, 0.9*line)
			if !ok {
				t.Fatal("flow 0 never reached 90% of the link after the other stopped")
			}
			rtts := float64(took) / float64(cfg.BaseRTT())
			t.Logf("step response %v = %.1f base RTTs", took, rtts)
			if rtts > 30 {
				t.Fatalf("took %v (%.1f RTTs) to use the freed capacity, want <= 30 RTTs", took, rtts)
			}
		})
	}
}

func TestIdealFCT(t *testing.T) {
	c := Config{HostBps: gbps, Delay: 5 * time.Microsecond}
	// 1 Gbit/s: 8 ns a byte. Handshake: 2 × (10 µs + 2 × 528 ns); first
	// frame of a 1000-byte flow (1066 B): 10 µs + 2 × 8528 ns.
	if got, want := c.IdealFCT(1000), 2*(10_000+1056)*time.Nanosecond+(10_000+17_056)*time.Nanosecond; got != want {
		t.Fatalf("1000 B: %v, want %v", got, want)
	}
	// 3000 B: the first 1448 in a full frame (1514 B: 10 µs + 24_224 ns),
	// then 1552 B in two frames (1552 + 2·66 = 1684 B = 13_472 ns).
	if got, want := c.IdealFCT(3000), 2*(10_000+1056)*time.Nanosecond+(10_000+24_224+13_472)*time.Nanosecond; got != want {
		t.Fatalf("3000 B: %v, want %v", got, want)
	}
}

// DCTCP holds the queue near the marking threshold K at full utilization
// (SIGCOMM'10 section 3). dctcp-win is TAS's window DCTCP, with the
// window also capping the data in flight; dctcp-rate waits for 50 ACKs
// between updates, many RTTs at 1 Gbit/s, and is not held to this (docs/CC.md).
func TestDCTCPQueueNearK(t *testing.T) {
	cfg := scenario("dctcp-win", 2, 25*time.Microsecond, 300*time.Millisecond)
	longFlows(&cfg, 2)
	r := mustRun(t, cfg, 200*time.Millisecond)
	k := float64(cfg.K)
	if q := float64(r.QueueP50); q < 0.7*k || q > 1.3*k || float64(r.QueueP99) > 1.5*k || r.Utilization < 0.95 {
		t.Fatalf("queue p50 %d, p99 %d B (want p50 within 30%% of K = %d, p99 <= 1.5 K), utilization %.3f (want >= 0.95)",
			r.QueueP50, r.QueueP99, cfg.K, r.Utilization)
	}
}
