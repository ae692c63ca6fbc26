// Package service assembles a gotas service from its parts: it opens the
// NIC, starts the fast-path cores and the slow path, and runs until told to
// stop. cmd/tas is a thin wrapper around it; tests and tasctl embed it.
package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"gotas/internal/nic/nicopen"
)

// Config is everything the service needs to start.
type Config struct {
	// Addr is the service's IPv4 address and prefix (--ip-addr).
	Addr netip.Prefix
	// NIC is the back-end spec kind:name (--nic), see ParseNIC.
	NIC NICSpec
	// XDPMode is auto, native or generic (AF_XDP only).
	XDPMode string
	// BusyPoll makes fast-path cores never block (--fp-no-ints).
	BusyPoll bool
	// Cores is the maximum number of fast-path cores (--fp-cores-max); the
	// service uses min(Cores, queues of the NIC).
	Cores int
	// StatsInterval prints counters this often (0: never).
	StatsInterval time.Duration
}

// NICSpec names a packet I/O back-end and its interface.
type NICSpec = nicopen.Spec

// ParseNIC parses kind:name, e.g. afxdp:eth0.
func ParseNIC(s string) (NICSpec, error) { return nicopen.Parse(s) }

// ErrUsage wraps every flag error, so callers exit with status 2.
var ErrUsage = errors.New("usage")

// ParseFlags parses tas's command line. Errors wrap ErrUsage (or are
// flag.ErrHelp) and say what is wrong; usage text goes to out.
func ParseFlags(args []string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("tas", flag.ContinueOnError)
	var (
		ipAddr  = fs.String("ip-addr", "", "service IPv4 address with prefix length, e.g. 10.0.0.1/24 (required)")
		nicSpec = fs.String("nic", "", "packet I/O back-end: afxdp:IFACE (default kind), afpacket:IFACE or tap:NAME (required)")
		xdpMode = fs.String("xdp-mode", "auto", "AF_XDP attach mode: auto (native, else generic), native or generic")
		noInts  = fs.Bool("fp-no-ints", false, "fast path busy-polls and never blocks")
		cores   = fs.Int("fp-cores-max", 1, "maximum number of fast-path cores")
		stats   = fs.Duration("stats-interval", 0, "print counters at this interval (0: never)")
	)
	// The flag package would print the whole usage on every error; one
	// line saying what is wrong is clearer, and --help prints the rest.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fmt.Fprintf(out, "Usage: tas --ip-addr=A/P --nic=KIND:IFACE [flags]\n\nFlags:\n")
			fs.PrintDefaults()
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	var cfg Config
	if *ipAddr == "" {
		return cfg, fmt.Errorf("%w: --ip-addr is required, e.g. --ip-addr=10.0.0.1/24", ErrUsage)
	}
	p, err := netip.ParsePrefix(*ipAddr)
	if err != nil {
		a, aerr := netip.ParseAddr(*ipAddr)
		if aerr != nil {
			return cfg, fmt.Errorf("%w: --ip-addr=%q: want an IPv4 address with prefix, e.g. 10.0.0.1/24", ErrUsage, *ipAddr)
		}
		p = netip.PrefixFrom(a, 32)
	}
	if !p.Addr().Is4() {
		return cfg, fmt.Errorf("%w: --ip-addr=%q: only IPv4 is supported", ErrUsage, *ipAddr)
	}
	if p.Addr().IsUnspecified() || p.Addr().IsMulticast() || p.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return cfg, fmt.Errorf("%w: --ip-addr=%q is not a unicast address", ErrUsage, *ipAddr)
	}
	cfg.Addr = p
	if *nicSpec == "" {
		return cfg, fmt.Errorf("%w: --nic is required, e.g. --nic=afxdp:eth0", ErrUsage)
	}
	if cfg.NIC, err = ParseNIC(*nicSpec); err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrUsage, strings.TrimPrefix(err.Error(), nicopen.ErrConfig.Error()+": "))
	}
	switch *xdpMode {
	case "auto", "native", "generic":
		cfg.XDPMode = *xdpMode
	default:
		return cfg, fmt.Errorf("%w: --xdp-mode=%q: want auto, native or generic", ErrUsage, *xdpMode)
	}
	if *cores < 1 || *cores > 64 {
		return cfg, fmt.Errorf("%w: --fp-cores-max=%d: want 1 to 64", ErrUsage, *cores)
	}
	cfg.Cores = *cores
	cfg.BusyPoll = *noInts
	if *stats < 0 {
		return cfg, fmt.Errorf("%w: --stats-interval must not be negative", ErrUsage)
	}
	cfg.StatsInterval = *stats
	return cfg, nil
}
