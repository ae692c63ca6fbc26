package cc

import (
	"flag"
	"fmt"
	"strings"
	"time"
)

// Flags adds --cc and the --cc-* tuning flags to fs (for tas and tasbench)
// and returns a function that validates them after parsing.
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

func flags(fs *flag.FlagSet, usage string) func() ([]string, Params, error) {
	name := fs.String("cc", "reno", fmt.Sprintf(usage, Names()))
	link := fs.Uint64("cc-link-rate", 0, "host line rate in bit/s (default 10 Gbit/s, TAS's tcp_link_bw)")
	init := fs.Uint64("cc-init-rate", 0, "dctcp-rate, timely: first rate in bit/s (default 10 Mbit/s)")
	step := fs.Uint64("cc-step", 0, "dctcp-rate, timely: additive step in bit/s (default 10 Mbit/s)")
	constRate := fs.Uint64("cc-const-rate", 0, "const-rate: the rate in bit/s (default the line rate)")
	baseRTT := fs.Duration("cc-base-rtt", 0, "powertcp: base RTT τ (default the smallest RTT seen)")
	beta := fs.Uint64("cc-beta", 0, "powertcp: queue bytes each flow may hold (default BDP/10)")
	gamma := fs.Float64("cc-gamma", 0, "powertcp: EWMA weight γ in (0, 1] (default 0.9)")
	interval := fs.Int("cc-interval", 0, "RTTs between updates (default 2; powertcp 1)")
	minAcks := fs.Int("cc-min-acks", 0, "dctcp-rate: ACKs an update waits for (default 50)")
	tLow := fs.Duration("cc-tlow", 0, "timely: T_low (default 30µs)")
	tHigh := fs.Duration("cc-thigh", 0, "timely: T_high (default 150µs)")
	return func() ([]string, Params, error) {
		p := Params{LinkBps: *link, InitBps: *init, StepBps: *step, ConstBps: *constRate,
			BaseRTT: *baseRTT, Beta: *beta, Gamma: *gamma, Interval: *interval, MinAcks: *minAcks, TLow: *tLow, THigh: *tHigh}
		if *baseRTT < 0 || *baseRTT > time.Second {
			return nil, p, fmt.Errorf("--cc-base-rtt=%v: want 0 to 1s: %w", *baseRTT, ErrParams)
		}
		names := strings.Split(*name, ",")
		for _, n := range names {
			if _, err := New(n, p); err != nil {
				return nil, p, fmt.Errorf("--cc=%s: %w", *name, err)
			}
		}
		return names, p, nil
	}
}
