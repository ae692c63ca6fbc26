package benchcli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"gotas/internal/bench"
	"gotas/internal/cc"
	"gotas/internal/cc/flowgen"
	"gotas/internal/cc/sim"
)

// FlowgenRun is one algorithm's result.
type FlowgenRun struct {
	CC          string                `json:"cc"`
	Live        bool                  `json:"live"`
	Flows       int                   `json:"flows"`
	Finished    int                   `json:"finished"`
	Buckets     []flowgen.BucketStats `json:"slowdown_by_size"`
	Utilization float64               `json:"utilization"`
	QueueP50    int                   `json:"queue_p50_bytes"`
	QueueP99    int                   `json:"queue_p99_bytes"`
	VirtualSec  float64               `json:"virtual_seconds"`
	RTOs        uint64                `json:"rtos"`
	Drops       uint64                `json:"drops"`
}

func flowgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flowgen", flag.ContinueOnError)
	sf := addSimFlags(fs)
	cdfPath := fs.String("cdf", "", "flow-size CDF file: one \"size probability\" pair a line (fraction or percent)")
	dist := fs.String("dist", "", "built-in distribution instead of --cdf: websearch (DCTCP paper)")
	// Without --sim the flows run live on --stack (linux, or gotas with
	// --cc) to a bulk-server; --rate and --rtt describe the path.
	load := fs.Float64("load", 0.6, "offered load on the receiver's link, 0 to 1")
	flows := fs.Int("flows", 200, "flows to generate")
	useSim := fs.Bool("sim", false, "run in the simulator (real gotas stacks in virtual time)")
	addr := fs.String("addr", "", "without --sim: a bulk-server IP:PORT the flows go to")
	rtt := fs.Duration("rtt", 100*time.Microsecond, "without --sim: the path's base RTT, for the ideal FCT")
	openStack := stackFlagCC(fs, func() (string, cc.Params, error) {
		names, p, err := sf.ccFlags()
		if err == nil && len(names) != 1 {
			err = fmt.Errorf("--cc=%v: a live run takes one algorithm: %w", names, cc.ErrParams)
		}
		if err != nil {
			return "", p, err
		}
		return names[0], p, nil
	})
	asJSON := fs.Bool("json", false, "print JSON")
	svg := fs.String("svg", "", "write a plot of p50/p99 slowdown by flow size to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !(*load > 0 && *load <= 1) || *flows < 1 || *flows > 100_000 {
		return fmt.Errorf("--load in (0, 1], --flows 1..100000: %w", errUsage)
	}
	cdf, err := loadCDF(*cdfPath, *dist)
	if err != nil {
		return err
	}
	if !*useSim {
		if *addr == "" || *rtt <= 0 || *sf.rate <= 0 {
			return fmt.Errorf("a live run needs --addr of a bulk-server, --rate and --rtt (or --sim): %w", errUsage)
		}
		names, _, err := sf.ccFlags()
		if err != nil {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		r, err := flowgenLive(ctx, openStack, names[0], *addr, cdf, *load, *flows, uint64(*sf.rate), *rtt, *sf.seed, stderr)
		if err != nil {
			return err
		}
		return finishFlowgen(stdout, []FlowgenRun{r}, *svg, *asJSON)
	}
	cs, err := sf.configs(*flows, time.Hour)
	if err != nil {
		return err
	}
	var runs []FlowgenRun
	for _, c := range cs {
		r, err := flowgenSim(c, cdf, *load, *flows, stderr)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	return finishFlowgen(stdout, runs, *svg, *asJSON)
}

// finishFlowgen writes the plot, if asked for, and prints the runs.
func finishFlowgen(stdout io.Writer, runs []FlowgenRun, svg string, asJSON bool) error {
	if svg != "" {
		var series []flowgen.Series
		for _, r := range runs {
			series = append(series, flowgen.Series{Name: r.CC, Buckets: r.Buckets})
		}
		if err := writeFile(svg, func(w io.Writer) error { return flowgen.WriteSVG(w, series) }); err != nil {
			return err
		}
	}
	return PrintFlowgen(stdout, runs, asJSON)
}

// flowgenLive runs the workload on the stack --stack opens.
func flowgenLive(ctx context.Context, open func() (bench.Stack, func(), error), ccName, addr string, cdf *flowgen.CDF,
	load float64, n int, rate uint64, rtt time.Duration, seed int64, stderr io.Writer) (FlowgenRun, error) {
	st, closeStack, err := open()
	if err != nil {
		return FlowgenRun{}, err
	}
	defer closeStack()
	return FlowgenLive(ctx, st, stackName(st, ccName), addr, cdf, load, n, rate, rtt, seed, stderr)
}

// FlowgenLive runs n flows drawn from cdf at load on st, each to the
// bulk-server at addr over a path of the given rate and round trip, and
// returns the run labelled label, as tasbench flowgen prints it. Tests
// that build their own path call it (interop's live bottleneck).
func FlowgenLive(ctx context.Context, st bench.Stack, label, addr string, cdf *flowgen.CDF,
	load float64, n int, rate uint64, rtt time.Duration, seed int64, stderr io.Writer) (FlowgenRun, error) {
	arr := flowgen.Generate(cdf, load, rate, n, 1, seed)
	fct, err := liveFlows(ctx, st, addr, arr, stderr)
	if err != nil {
		return FlowgenRun{}, err
	}
	sizes := make([]int64, n)
	slow := make([]float64, n)
	for i, a := range arr {
		sizes[i], slow[i] = a.Size, float64(fct[i])/float64(liveIdeal(a.Size, rate, rtt))
	}
	return FlowgenRun{CC: label, Live: true, Flows: n, Finished: n, Buckets: flowgen.ByBucket(sizes, slow)}, nil
}

// stackName labels a live run: the kernel, or gotas and its algorithm.
func stackName(st bench.Stack, ccName string) string {
	if _, ok := st.(bench.Linux); ok {
		return "linux"
	}
	return "gotas:" + ccName
}

// loadCDF reads --cdf or the --dist built-in; a bad file is a usage
// error (exit status 2) naming its line.
func loadCDF(path, dist string) (*flowgen.CDF, error) {
	switch {
	case path != "" && dist != "":
		return nil, fmt.Errorf("--cdf and --dist exclude each other: %w", errUsage)
	case path == "":
		if dist == "" {
			dist = "websearch"
		}
		c, err := flowgen.Builtin(dist)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, errUsage)
		}
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errUsage)
	}
	defer f.Close()
	c, err := flowgen.ParseCDF(f, path)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errUsage)
	}
	return c, nil
}

// flowgenSim runs one algorithm on the generated workload.
func flowgenSim(c sim.Config, cdf *flowgen.CDF, load float64, n int, stderr io.Writer) (FlowgenRun, error) {
	arr := flowgen.Generate(cdf, load, c.HostBps, n, c.Senders, c.Seed)
	for _, a := range arr {
		c.Flows = append(c.Flows, sim.Flow{Sender: a.Sender, Start: a.Start, Size: a.Size})
	}
	c.NoSeries, c.Sample = true, time.Millisecond
	last := arr[len(arr)-1].Start
	c.Duration = last*4 + time.Second // ends early once every flow is done
	if isTerminal(stderr) {
		c.Progress = func(t time.Duration) { progress(stderr, c.CC, min(float64(t)/float64(last), 1)) }
		defer fmt.Fprintln(stderr)
	}
	r, err := sim.Run(c, 0)
	if err != nil {
		return FlowgenRun{}, err
	}
	var sizes []int64
	var slow []float64
	for i, f := range c.Flows {
		if r.FCT[i] > 0 {
			sizes = append(sizes, f.Size)
			slow = append(slow, float64(r.FCT[i])/float64(c.IdealFCT(f.Size)))
		}
	}
	return FlowgenRun{CC: c.CC, Flows: n, Finished: r.Finished, Buckets: flowgen.ByBucket(sizes, slow),
		Utilization: r.Utilization, QueueP50: r.QueueP50, QueueP99: r.QueueP99, VirtualSec: r.Duration.Seconds(),
		RTOs: r.RTOs, Drops: r.Drops}, nil
}

// PrintFlowgen prints runs as a table, or as JSON.
func PrintFlowgen(w io.Writer, runs []FlowgenRun, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(runs)
	}
	for _, r := range runs {
		if r.Live {
			fmt.Fprintf(w, "%s: %d/%d flows done\n", r.CC, r.Finished, r.Flows)
		} else {
			fmt.Fprintf(w, "cc %s: %d/%d flows done in %.2f s virtual; utilization %.3f; queue p50 %d B p99 %d B; RTOs %d, drops %d\n",
				r.CC, r.Finished, r.Flows, r.VirtualSec, r.Utilization, r.QueueP50, r.QueueP99, r.RTOs, r.Drops)
		}
		fmt.Fprintf(w, "  %-10s %6s %8s %8s %8s\n", "size <=", "flows", "p50", "p99", "p99.9")
		for _, b := range r.Buckets {
			fmt.Fprintf(w, "  %-10s %6d %8.2f %8.2f %8.2f\n", sizeLabel(b.MaxSize), b.Flows, b.P50, b.P99, b.P999)
		}
	}
	return nil
}

func sizeLabel(n int64) string {
	if n == flowgen.Buckets[len(flowgen.Buckets)-1] {
		return "larger"
	}
	return fmt.Sprintf("%dKB", n/1000)
}

// isTerminal reports whether w is a terminal (a progress bar goes there only).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progress(w io.Writer, name string, frac float64) {
	const width = 30
	n := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < n {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(w, "\r%-15s [%s] %3.0f%%", name, bar, frac*100)
}
