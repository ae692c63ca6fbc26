package cc

import (
	"flag"
	"fmt"
	"time"
)

// Flags adds --cc and the --cc-* tuning flags to fs (for tas and tasbench)
// and returns a function that validates them after parsing.
func Flags(fs *flag.FlagSet) func() (string, Params, error) {
	name := fs.String("cc", "reno", fmt.Sprintf("congestion control: %v", Names()))
	link := fs.Uint64("cc-link-rate", 0, "host line rate in bit/s (default 10 Gbit/s, TAS's tcp_link_bw)")
	init := fs.Uint64("cc-init-rate", 0, "dctcp-rate, timely: first rate in bit/s (default 10 Mbit/s)")
	step := fs.Uint64("cc-step", 0, "dctcp-rate, timely: additive step in bit/s (default 10 Mbit/s)")
	constRate := fs.Uint64("cc-const-rate", 0, "const-rate: the rate in bit/s (default the line rate)")
	baseRTT := fs.Duration("cc-base-rtt", 0, "powertcp: base RTT τ (default the smallest RTT seen)")
	beta := fs.Uint64("cc-beta", 0, "powertcp: queue bytes each flow may hold (default BDP/10)")
	gamma := fs.Float64("cc-gamma", 0, "powertcp: EWMA weight γ in (0, 1] (default 0.9)")
	interval := fs.Int("cc-interval", 0, "RTTs between updates (default 2; powertcp 1)")
	return func() (string, Params, error) {
		p := Params{LinkBps: *link, InitBps: *init, StepBps: *step, ConstBps: *constRate,
			BaseRTT: *baseRTT, Beta: *beta, Gamma: *gamma, Interval: *interval}
		if *baseRTT < 0 || *baseRTT > time.Second {
			return "", p, fmt.Errorf("--cc-base-rtt=%v: want 0 to 1s: %w", *baseRTT, ErrParams)
		}
		if _, err := New(*name, p); err != nil {
			return "", p, fmt.Errorf("--cc=%s: %w", *name, err)
		}
		return *name, p, nil
	}
}
