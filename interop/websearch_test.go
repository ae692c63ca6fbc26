package interop

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"gotas/internal/bench"
	"gotas/internal/benchcli"
	"gotas/internal/cc/flowgen"
	"gotas/internal/testnet"
)

// The web-search workload live: the DCTCP paper's flow sizes at 60 % load
// through the live bottleneck (TestLiveBottleneck's bridge: 30 Mbit/s,
// K = 15 KB, telemetry), once per algorithm and once on Linux's own TCP
// over the same bridge, slowdown by flow size as tasbench flowgen prints
// it. Minutes of real time, so it runs only with GOTAS_LIVE_WEBSEARCH=N
// (N flows a run); GOTAS_LIVE_WEBSEARCH_SVG=PATH also draws the chart.
// It fails only when a flow does not arrive whole: the numbers are for
// docs/CC.md, not thresholds (the run is a few dozen flows).
func TestLiveWebSearch(t *testing.T) {
	n := envInt(os.Getenv("GOTAS_LIVE_WEBSEARCH"))
	if n <= 0 {
		t.Skip("set GOTAS_LIVE_WEBSEARCH=FLOWS to run the live web-search workload")
	}
	cdf, err := flowgen.Builtin("websearch")
	if err != nil {
		t.Fatal(err)
	}
	const rtt = 2 * time.Millisecond // the bridge's 1 ms each way
	var runs []benchcli.FlowgenRun
	for _, name := range []string{"linux", "reno", "dctcp-win", "dctcp-rate", "timely", "powertcp", "theta-powertcp"} {
		st, addr, br := webSearchPath(t, name)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		queue := sampleQueue(ctx, br)
		r, err := benchcli.FlowgenLive(ctx, st, webSearchLabel(name), addr, cdf, 0.6, n, liveRate, rtt, 1, io.Discard)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		q := <-queue
		if len(q) > 0 {
			slices.Sort(q)
			r.QueueP50, r.QueueP99 = q[len(q)/2], q[len(q)*99/100]
		}
		runs = append(runs, r)
		t.Logf("%s done", name)
	}
	var table bytes.Buffer
	if err := benchcli.PrintFlowgen(&table, runs, false); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	for _, r := range runs {
		t.Logf("%s: bottleneck queue p50 %d B, p99 %d B", r.CC, r.QueueP50, r.QueueP99)
	}
	if path := os.Getenv("GOTAS_LIVE_WEBSEARCH_SVG"); path != "" {
		var series []flowgen.Series
		for _, r := range runs {
			series = append(series, flowgen.Series{Name: r.CC, Buckets: r.Buckets})
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := flowgen.WriteSVG(f, series); err != nil {
			t.Fatal(err)
		}
	}
}

// sampleQueue samples the bottleneck's queue every millisecond until ctx
// ends, then sends the samples.
func sampleQueue(ctx context.Context, br *testnet.Bridge) <-chan []int {
	out := make(chan []int, 1)
	go func() {
		var q []int
		for ctx.Err() == nil {
			q = append(q, br.Backlog(0))
			time.Sleep(time.Millisecond)
		}
		out <- q
	}()
	return out
}

func webSearchLabel(name string) string {
	if name == "linux" {
		return "linux"
	}
	return "gotas:" + name
}

// webSearchPath builds the bottleneck and a bulk-server behind it, on
// gotas with algorithm name or on Linux, and returns the sending side.
func webSearchPath(t *testing.T, name string) (bench.Stack, string, *testnet.Bridge) {
	ha, hb, br := liveBottleneck(t, "ws")
	var err error
	var ln net.Listener
	var st bench.Stack
	if name == "linux" {
		if err := ha.Addr("a0", "10.222.0.1/24"); err != nil {
			t.Fatal(err)
		}
		if err := hb.Addr("b0", "10.222.0.2/24"); err != nil {
			t.Fatal(err)
		}
		if err := hb.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.222.0.2:9400"); return }); err != nil {
			t.Fatal(err)
		}
		st = nsLinux{ha}
	} else {
		sa := liveStack(t, ha, "afxdp:a0", "10.222.0.1/24", name)
		sb := liveStack(t, hb, "afxdp:b0", "10.222.0.2/24", name)
		if ln, err = sb.Listen("tcp", "10.222.0.2:9400"); err != nil {
			t.Fatal(err)
		}
		st = bench.Gotas{Stack: sa}
	}
	t.Cleanup(func() { ln.Close() })
	go bench.BulkServer(ln)
	return st, "10.222.0.2:9400", br
}

// nsLinux is Linux's TCP in a host's namespace: sockets are made there.
type nsLinux struct{ h *testnet.Host }

func (l nsLinux) Listen(addr string) (ln net.Listener, err error) {
	err = l.h.Do(func() error { ln, err = net.Listen("tcp4", addr); return err })
	return ln, err
}

func (l nsLinux) DialContext(ctx context.Context, addr string) (c net.Conn, err error) {
	err = l.h.Do(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	return c, err
}

func envInt(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
