package interop

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotas"
	"gotas/internal/cc"
	"gotas/internal/impair"
	"gotas/internal/testnet"
)

// Live bottleneck: two gotas hosts in namespaces, joined by the impairment
// bridge, whose left-to-right direction is a rate-limited queue with ECN
// marking at K and PowerTCP telemetry: the simulator's switch port, in
// real time, with real NICs (AF_XDP on veth).
const (
	liveRate   = 30_000_000 // bit/s: what the userspace bridge forwards steadily
	liveK      = 15_000     // bytes
	liveBeta   = 3_000      // bytes per flow
	liveFlows  = 2
	liveWarmup = time.Second
	liveTime   = 3 * time.Second
)

type liveResult struct {
	goodput  float64 // bit/s over the measured window, all flows
	queueP50 int     // bytes
	queueP99 int
}

// It needs CPUs that keep up with the userspace bridge in real time. With
// threaded cores it passed 1 run in 5 on this 2-vCPU machine kind (their
// spinning took the bridge's CPU); with the inline driver, 12 of 12, two
// of them beside the rest of the suite (docs/CC.md). GOTAS_LIVE_CC=0
// skips it on a machine too slow for the bridge.
func TestLiveBottleneck(t *testing.T) {
	if os.Getenv("GOTAS_LIVE_CC") == "0" {
		t.Skip("GOTAS_LIVE_CC=0: live congestion-control test skipped")
	}
	ref := liveRun(t, "reno")
	t.Logf("reference, reno: goodput %.1f Mbit/s, queue p50 %d B p99 %d B", ref.goodput/1e6, ref.queueP50, ref.queueP99)
	for _, name := range []string{"dctcp-win", "powertcp"} {
		t.Run(name, func(t *testing.T) {
			r := liveRun(t, name)
			t.Logf("%s: goodput %.1f Mbit/s, queue p50 %d B p99 %d B", name, r.goodput/1e6, r.queueP50, r.queueP99)
			if want := 0.9 * liveRate * 1420 / 1514; r.goodput < want {
				t.Errorf("goodput %.1f Mbit/s, want >= 90%% of the bottleneck (%.1f)", r.goodput/1e6, want/1e6)
			}
			lo, hi := liveK/2, liveK*3/2
			if name == "powertcp" {
				lo, hi = liveFlows*liveBeta/2, liveFlows*liveBeta*2
			}
			if r.queueP50 < lo || r.queueP50 > hi {
				t.Errorf("queue p50 %d B, want %d..%d", r.queueP50, lo, hi)
			}
		})
	}
}

// liveBottleneck makes two hosts, prefix+"a" (interface a0) and
// prefix+"b" (b0), joined by the live bottleneck: a -> b limited to
// liveRate with ECN at liveK and telemetry, 1 ms each way.
func liveBottleneck(t *testing.T, prefix string) (ha, hb *testnet.Host, br *testnet.Bridge) {
	lab := testnet.NewT(t)
	ha, err := lab.Host(prefix + "a")
	if err != nil {
		t.Fatal(err)
	}
	hb, err = lab.Host(prefix + "b")
	if err != nil {
		t.Fatal(err)
	}
	lr := impair.Config{Seed: 1, RateBps: liveRate, Delay: time.Millisecond,
		QueueLimit: impair.Limit{Bytes: 500_000}, ECNThreshold: impair.Limit{Bytes: liveK}}
	br, err = lab.Bridge(ha, "a0", hb, "b0", lr, impair.Config{Seed: 2, Delay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	br.SetINT(0, liveRate)
	return ha, hb, br
}

// liveRun streams liveFlows connections a -> b under algorithm name.
func liveRun(t *testing.T, name string) liveResult {
	ha, hb, br := liveBottleneck(t, "cc")
	sa := liveStack(t, ha, "afxdp:a0", "10.221.0.1/24", name)
	sb := liveStack(t, hb, "afxdp:b0", "10.221.0.2/24", name)
	ln, err := sb.ListenOptions("tcp", "10.221.0.2:9300", gotas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var rcvd atomic.Int64
	go sink(ln, &rcvd)
	ctx, cancel := context.WithTimeout(t.Context(), liveWarmup+liveTime+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range liveFlows {
		c, err := sa.DialOptions(ctx, "tcp", "10.221.0.2:9300", gotas.Options{CC: name})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() { defer wg.Done(); streamUntil(ctx, c) }()
	}
	time.Sleep(liveWarmup)
	r := measure(br, &rcvd)
	cancel()
	wg.Wait()
	return r
}

func liveStack(t *testing.T, h *testnet.Host, nic, addr, name string) *gotas.Stack {
	t.Helper()
	cfg := gotas.Config{Addr: netip.MustParsePrefix(addr), NIC: nic}
	cfg.Stack.MSL = 100 * time.Millisecond
	cfg.Stack.CC = name
	cfg.Stack.CCParams = cc.Params{LinkBps: liveRate, Beta: liveBeta}
	var st *gotas.Stack
	if err := h.Do(func() (err error) { st, err = gotas.New(cfg); return }); err != nil {
		t.Fatalf("gotas.New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sink accepts connections and counts what they deliver.
func sink(ln net.Listener, n *atomic.Int64) {
	acceptEach(ln, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	})
}

// streamUntil writes until ctx ends.
func streamUntil(ctx context.Context, c net.Conn) {
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Write(buf); err != nil && ctx.Err() == nil && !isTimeout(err) {
			return
		}
	}
}

// measure samples the bottleneck queue every millisecond for liveTime and
// returns the goodput over that time.
func measure(br *testnet.Bridge, rcvd *atomic.Int64) liveResult {
	var q []int
	start, from := time.Now(), rcvd.Load()
	for time.Since(start) < liveTime {
		q = append(q, br.Backlog(0))
		time.Sleep(time.Millisecond)
	}
	bytes := rcvd.Load() - from
	slices.Sort(q)
	return liveResult{goodput: float64(bytes) * 8 / time.Since(start).Seconds(), queueP50: q[len(q)/2],
		queueP99: q[len(q)*99/100]}
}
