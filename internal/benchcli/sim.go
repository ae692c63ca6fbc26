package benchcli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"gotas/internal/cc"
	"gotas/internal/cc/sim"
	"gotas/internal/slowpath"
)

// simFlags are the network flags tasbench sim and flowgen --sim share.
type simFlags struct {
	rate, delay, k, buffer, seed, hosts *int64
	ccFlags                             func() ([]string, cc.Params, error)
}

func addSimFlags(fs *flag.FlagSet) *simFlags {
	return &simFlags{
		rate:    fs.Int64("rate", 1_000_000_000, "link rate of every host and the bottleneck, bit/s"),
		delay:   fs.Int64("delay-us", 5, "one-way propagation delay of each link, µs"),
		k:       fs.Int64("k", 30_000, "ECN marking threshold at the bottleneck, bytes (0: none)"),
		buffer:  fs.Int64("buffer", 4<<20, "bottleneck buffer, bytes"),
		seed:    fs.Int64("seed", 1, "seed of the links' random draws"),
		hosts:   fs.Int64("hosts", 0, "sender hosts (default: one per flow, at most 15)"),
		ccFlags: cc.FlagsList(fs),
	}
}

// config builds a scenario for n flows for each algorithm --cc names;
// the flows are the caller's.
func (f *simFlags) configs(n int, dur time.Duration) ([]sim.Config, error) {
	names, p, err := f.ccFlags()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errUsage)
	}
	var out []sim.Config
	for _, name := range names {
		c, err := f.config(name, p, n, dur)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *simFlags) config(name string, p cc.Params, n int, dur time.Duration) (sim.Config, error) {
	hosts := int(*f.hosts)
	if hosts == 0 {
		hosts = min(max(n, 1), 15)
	}
	if *f.rate < 1_000_000 || *f.delay < 0 || *f.k < 0 || *f.buffer < 10_000 || hosts < 1 || hosts > 250 {
		return sim.Config{}, fmt.Errorf("--rate >= 1e6, --delay-us >= 0, --k >= 0, --buffer >= 10000, --hosts 1..250: %w", errUsage)
	}
	c := sim.Config{Seed: *f.seed, Senders: hosts, HostBps: uint64(*f.rate), Delay: time.Duration(*f.delay) * time.Microsecond,
		K: int(*f.k), Buffer: int(*f.buffer), CC: name, CCParams: p, Duration: dur,
		Stack: slowpath.Config{RTOMin: 2 * time.Millisecond, MSL: 10 * time.Millisecond, SynRTO: 5 * time.Millisecond}}
	if c.CCParams.BaseRTT == 0 {
		c.CCParams.BaseRTT = c.BaseRTT() // the simulator knows τ; a host would measure it
	}
	return c, nil
}

// simReport is tasbench sim's output.
type simReport struct {
	CC          string    `json:"cc"`
	Flows       int       `json:"flows"`
	Incast      bool      `json:"incast"`
	Utilization float64   `json:"utilization"`
	QueueP50    int       `json:"queue_p50_bytes"`
	QueueP99    int       `json:"queue_p99_bytes"`
	QueueMax    int       `json:"queue_max_bytes"`
	RatesMbps   []float64 `json:"flow_rates_mbps"`
	Jain        float64   `json:"jain"`
	Finished    int       `json:"finished"`
	DurationMs  float64   `json:"virtual_ms"`
	RTOs        uint64    `json:"rtos"`
	Drops       uint64    `json:"drops"`
	Marks       uint64    `json:"ce_marks"`
	CPUSeconds  float64   `json:"cpu_seconds"`
}

func simCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sf := addSimFlags(fs)
	flows := fs.Int("flows", 1, "flows to the receiver")
	incast := fs.Bool("incast", false, "all flows start together with --size bytes each")
	size := fs.Int64("size", 1<<20, "--incast: bytes per flow")
	dur := fs.Duration("duration", 200*time.Millisecond, "virtual time to simulate")
	warmup := fs.Duration("warmup", 100*time.Millisecond, "virtual time before measuring (long flows)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *flows < 1 || *flows > 1000 || *size < 1 || *dur <= 0 || *warmup < 0 || *warmup >= *dur {
		return fmt.Errorf("--flows 1..1000, --size >= 1, 0 <= --warmup < --duration: %w", errUsage)
	}
	cs, err := sf.configs(*flows, *dur)
	if err != nil {
		return err
	}
	if len(cs) != 1 {
		return fmt.Errorf("sim runs one --cc at a time: %w", errUsage)
	}
	c := cs[0]
	for i := range *flows {
		f := sim.Flow{Sender: i % c.Senders}
		if *incast {
			f.Size = *size
		}
		c.Flows = append(c.Flows, f)
	}
	if *incast {
		*warmup = 0
	}
	r, err := sim.Run(c, *warmup)
	if err != nil {
		return err
	}
	rep := simReport{CC: c.CC, Flows: *flows, Incast: *incast, Utilization: r.Utilization, QueueP50: r.QueueP50,
		QueueP99: r.QueueP99, QueueMax: r.QueueMax, Jain: r.Jain, Finished: r.Finished, DurationMs: ms(r.Duration),
		RTOs: r.RTOs, Drops: r.Drops, Marks: r.Marks, CPUSeconds: r.CPU.Seconds()}
	for _, v := range r.Rates {
		rep.RatesMbps = append(rep.RatesMbps, math.Round(v/1e4)/100)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "cc %s flows %d: utilization %.3f, queue p50 %d B p99 %d B max %d B, Jain %.3f\n",
		rep.CC, rep.Flows, rep.Utilization, rep.QueueP50, rep.QueueP99, rep.QueueMax, rep.Jain)
	fmt.Fprintf(stdout, "rates (Mbit/s) %v; finished %d in %.1f ms; RTOs %d, drops %d, CE marks %d; cpu %.2fs\n",
		rep.RatesMbps, rep.Finished, rep.DurationMs, rep.RTOs, rep.Drops, rep.Marks, rep.CPUSeconds)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
