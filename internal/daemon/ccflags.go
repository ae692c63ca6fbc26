package daemon

import (
	"errors"
	"flag"
	"fmt"
	"slices"
)

// ccOptions are the congestion-control flags, TAS's names and defaults
// (tas/config.c) plus PowerTCP's.
type ccOptions struct {
	Name                          string
	ControlGranularityUs          int
	ControlInterval, RexmitInts   int
	DCTCPWeight, DCTCPMIMD        float64
	DCTCPInitKbps, DCTCPStepKbps  int
	DCTCPMinKbps, DCTCPMinPkts    int
	ConstRateKbps                 int
	TimelyTLowUs, TimelyTHighUs   int
	TimelyStepKbps, TimelyInitKbp int
	TimelyAlpha, TimelyBeta       float64
	TimelyMinRTTUs, TimelyMinKbps int
}

// ccNames are the algorithms --cc accepts.
var ccNames = []string{"reno", "dctcp-rate", "dctcp-win", "timely", "const-rate", "powertcp", "theta-powertcp"}

func (c *ccOptions) declare(fs *flag.FlagSet) func() error {
	fs.StringVar(&c.Name, "cc", "reno", fmt.Sprintf("congestion control: one of %v", ccNames))
	fs.IntVar(&c.ControlGranularityUs, "cc-control-granularity", 50, "µs, minimum spacing of control-loop runs")
	fs.IntVar(&c.ControlInterval, "cc-control-interval", 2, "RTTs between control-loop runs of a flow")
	fs.IntVar(&c.RexmitInts, "cc-rexmit-ints", 4, "stalled control intervals before a timeout retransmission")
	fs.Float64Var(&c.DCTCPWeight, "cc-dctcp-weight", 1.0/16, "DCTCP ECN EWMA gain g, 0 < g <= 1")
	fs.IntVar(&c.DCTCPInitKbps, "cc-dctcp-init", 10000, "kbit/s, initial rate of dctcp-rate")
	fs.IntVar(&c.DCTCPStepKbps, "cc-dctcp-step", 10000, "kbit/s, additive increase of dctcp-rate")
	fs.Float64Var(&c.DCTCPMIMD, "cc-dctcp-mimd", 0, "multiplicative increase factor, 1 to 2 (0: off)")
	fs.IntVar(&c.DCTCPMinKbps, "cc-dctcp-min", 0, "kbit/s, rate floor")
	fs.IntVar(&c.DCTCPMinPkts, "cc-dctcp-minpkts", 50, "ACKs needed per rate update")
	fs.IntVar(&c.ConstRateKbps, "cc-const-rate", 0, "kbit/s for const-rate (0: unlimited)")
	fs.IntVar(&c.TimelyTLowUs, "cc-timely-tlow", 30, "µs, TIMELY low RTT threshold")
	fs.IntVar(&c.TimelyTHighUs, "cc-timely-thigh", 150, "µs, TIMELY high RTT threshold")
	fs.IntVar(&c.TimelyStepKbps, "cc-timely-step", 10000, "kbit/s, TIMELY additive increase")
	fs.IntVar(&c.TimelyInitKbp, "cc-timely-init", 10000, "kbit/s, TIMELY initial rate")
	fs.Float64Var(&c.TimelyAlpha, "cc-timely-alpha", 0.02, "TIMELY RTT-difference EWMA gain, 0 < a <= 1")
	fs.Float64Var(&c.TimelyBeta, "cc-timely-beta", 0.8, "TIMELY multiplicative decrease, 0 < b <= 1")
	fs.IntVar(&c.TimelyMinRTTUs, "cc-timely-minrtt", 11, "µs, TIMELY minimum RTT")
	fs.IntVar(&c.TimelyMinKbps, "cc-timely-minrate", 10000, "kbit/s, TIMELY rate floor")
	return c.validate
}

const maxKbps = 400_000_000 // 400 Gbit/s

func (c *ccOptions) validate() error {
	if !slices.Contains(ccNames, c.Name) {
		return fmt.Errorf("--cc=%q: want one of %v", c.Name, ccNames)
	}
	frac := func(name string, v float64) error {
		if !(v > 0 && v <= 1) {
			return fmt.Errorf("--%s=%v: want a number in (0, 1]", name, v)
		}
		return nil
	}
	errs := []error{
		intIn("cc-control-granularity", c.ControlGranularityUs, 1, 1_000_000),
		intIn("cc-control-interval", c.ControlInterval, 1, 1000),
		intIn("cc-rexmit-ints", c.RexmitInts, 1, 1000),
		frac("cc-dctcp-weight", c.DCTCPWeight),
		intIn("cc-dctcp-init", c.DCTCPInitKbps, 1, maxKbps),
		intIn("cc-dctcp-step", c.DCTCPStepKbps, 1, maxKbps),
		intIn("cc-dctcp-min", c.DCTCPMinKbps, 0, maxKbps),
		intIn("cc-dctcp-minpkts", c.DCTCPMinPkts, 1, 1_000_000),
		intIn("cc-const-rate", c.ConstRateKbps, 0, maxKbps),
		intIn("cc-timely-tlow", c.TimelyTLowUs, 1, 10_000_000),
		intIn("cc-timely-thigh", c.TimelyTHighUs, 1, 10_000_000),
		intIn("cc-timely-step", c.TimelyStepKbps, 1, maxKbps),
		intIn("cc-timely-init", c.TimelyInitKbp, 1, maxKbps),
		frac("cc-timely-alpha", c.TimelyAlpha),
		frac("cc-timely-beta", c.TimelyBeta),
		intIn("cc-timely-minrtt", c.TimelyMinRTTUs, 1, 10_000_000),
		intIn("cc-timely-minrate", c.TimelyMinKbps, 1, maxKbps),
	}
	if c.DCTCPMIMD != 0 && !(c.DCTCPMIMD >= 1 && c.DCTCPMIMD <= 2) {
		errs = append(errs, fmt.Errorf("--cc-dctcp-mimd=%v: want 1 to 2, or 0 for off", c.DCTCPMIMD))
	}
	if c.TimelyTLowUs >= c.TimelyTHighUs {
		errs = append(errs, fmt.Errorf("--cc-timely-tlow=%d must be below --cc-timely-thigh=%d", c.TimelyTLowUs, c.TimelyTHighUs))
	}
	return errors.Join(errs...)
}
