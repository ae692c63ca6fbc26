package cc

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Flags adds --cc and the --cc-* tuning flags to fs (for tas and tasbench)
// and returns a function that validates them after parsing. The names,
// units and defaults are TAS's (tas/config.c) where TAS has the knob,
// PowerTCP's are ours.
func Flags(fs *flag.FlagSet) func() (string, Params, error) {
	get := flags(fs, "congestion control: %v")
	return func() (string, Params, error) {
		names, p, err := get()
		if err == nil && len(names) != 1 {
			err = fmt.Errorf("--cc=%v: want one algorithm: %w", names, ErrParams)
		}
		if err != nil {
			return "", p, err
		}
		return names[0], p, nil
	}
}

// FlagsList is Flags for commands that compare algorithms: --cc takes a
// comma-separated list.
func FlagsList(fs *flag.FlagSet) func() ([]string, Params, error) {
	return flags(fs, "congestion control, or a comma-separated list to compare: %v")
}

// fixedFlag is a TAS knob whose value gotas's algorithm has built in: the
// flag is accepted at that value (scripts written for TAS run) and any
// other value is refused rather than silently ignored.
type fixedFlag struct {
	name string
	val  *float64
	want float64
}

func flags(fs *flag.FlagSet, usage string) func() ([]string, Params, error) {
	name := fs.String("cc", "reno", fmt.Sprintf(usage, Names()))
	linkGbps := fs.Float64("tcp-link-bw", DefaultLinkBps/1e9, "host line rate, Gbit/s (TAS: tcp_link_bw; the simulator's default is its own host rate)")
	interval := fs.Int("cc-control-interval", 0, "RTTs between a flow's updates (default 2, TAS's; powertcp 1)")
	dctcpInit := fs.Uint64("cc-dctcp-init", dctcpInitBps/1000, "dctcp-rate: first rate, kbit/s")
	dctcpStep := fs.Uint64("cc-dctcp-step", dctcpStepBps/1000, "dctcp-rate: additive increase, kbit/s")
	minPkts := fs.Int("cc-dctcp-minpkts", dctcpMinAcks, "dctcp-rate: ACKs an update waits for")
	constRate := fs.Uint64("cc-const-rate", 0, "const-rate: the rate, kbit/s (0: the line rate)")
	tLow := fs.Uint64("cc-timely-tlow", timelyTLowUs, "timely: T_low, µs")
	tHigh := fs.Uint64("cc-timely-thigh", timelyTHighUs, "timely: T_high, µs")
	timelyInit := fs.Uint64("cc-timely-init", timelyInitBps/1000, "timely: first rate, kbit/s")
	timelyStep := fs.Uint64("cc-timely-step", timelyStepBps/1000, "timely: additive step δ, kbit/s")
	baseRTT := fs.Duration("cc-powertcp-base-rtt", 0, "powertcp: base RTT τ (default the smallest RTT seen)")
	beta := fs.Uint64("cc-powertcp-beta", 0, "powertcp: queue bytes each flow may hold (default BDP/10)")
	gamma := fs.Float64("cc-powertcp-gamma", 0, "powertcp: EWMA weight γ in (0, 1] (default 0.9)")
	fixed := []fixedFlag{
		{name: "cc-control-granularity", want: 50},
		{name: "cc-rexmit-ints", want: 4},
		{name: "cc-dctcp-weight", want: dctcpG},
		{name: "cc-dctcp-mimd", want: 0},
		{name: "cc-dctcp-min", want: 0},
		{name: "cc-timely-alpha", want: timelyAlpha},
		{name: "cc-timely-beta", want: timelyBeta},
		{name: "cc-timely-minrtt", want: timelyMinRTT},
		{name: "cc-timely-minrate", want: timelyMinBps / 1000},
	}
	for i := range fixed {
		f := &fixed[i]
		f.val = fs.Float64(f.name, f.want, "TAS's knob; gotas has this value built in and accepts only it")
	}
	return func() ([]string, Params, error) {
		names := strings.Split(*name, ",")
		timely := len(names) == 1 && names[0] == "timely"
		p := Params{InitBps: *dctcpInit * 1000, StepBps: *dctcpStep * 1000,
			ConstBps: *constRate * 1000, BaseRTT: *baseRTT, Beta: *beta, Gamma: *gamma, Interval: *interval,
			MinAcks: *minPkts, TLow: time.Duration(*tLow) * time.Microsecond, THigh: time.Duration(*tHigh) * time.Microsecond}
		// Only when asked: zero lets each user default it (cc.Params:
		// TAS's 10 Gbit/s; sim.Config: the simulated hosts' rate, which
		// PowerTCP's b must match or it overfills the bottleneck).
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "tcp-link-bw" {
				p.LinkBps = uint64(*linkGbps * 1e9)
			}
		})
		if timely {
			// TAS keeps separate knobs; one Params field serves both.
			p.InitBps, p.StepBps = *timelyInit*1000, *timelyStep*1000
		}
		var errs []error
		if !(*linkGbps > 0 && *linkGbps <= 400) {
			errs = append(errs, fmt.Errorf("--tcp-link-bw=%v: want 0 to 400 Gbit/s", *linkGbps))
		}
		if *baseRTT < 0 || *baseRTT > time.Second {
			errs = append(errs, fmt.Errorf("--cc-powertcp-base-rtt=%v: want 0 to 1s", *baseRTT))
		}
		if *tLow >= *tHigh {
			errs = append(errs, fmt.Errorf("--cc-timely-tlow=%d must be below --cc-timely-thigh=%d", *tLow, *tHigh))
		}
		for _, f := range fixed {
			if *f.val != f.want {
				errs = append(errs, fmt.Errorf("--%s=%v: only %v is implemented", f.name, *f.val, f.want))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, p, fmt.Errorf("%w: %w", err, ErrParams)
		}
		for _, n := range names {
			if _, err := New(n, p); err != nil {
				return nil, p, fmt.Errorf("--cc=%s: %w", *name, err)
			}
		}
		return names, p, nil
	}
}
