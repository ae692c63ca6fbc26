package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gotas"
	"gotas/internal/cc"
	"gotas/internal/ctlsock"
	"gotas/internal/nic/nicopen"
	"gotas/internal/slowpath"
	"gotas/internal/stats"
)

// errUsage wraps every flag error, so run exits with status 2.
var errUsage = errors.New("usage")

// options is everything the command line sets.
type options struct {
	stack         gotas.Config
	serve         ctlsock.Options
	socket        string
	metricsAddr   string
	readyFD       int
	quiet         bool
	statsInterval time.Duration
}

// DefaultControlSocket is where applications register (TAS_SOCKET).
const DefaultControlSocket = "/run/gotas/tas.sock"

// Buffer bounds: a ring must hold a few segments and fit the 32-bit ring
// positions with room for the window-scale arithmetic.
const (
	minRingLen = 4 << 10
	maxRingLen = 1 << 30
)

// flagSet declares tas's flags with TAS's names and, where they apply,
// its defaults (tas/config.c); the parsed values land in o.
func flagSet(o *options) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet("tas", flag.ContinueOnError)
	var routes []string
	fs.Func("ip-route", "static route DEST/P,NEXTHOP, e.g. 10.1.0.0/16,10.0.0.254 (repeatable)", func(v string) error {
		routes = append(routes, v)
		return nil
	})
	var (
		ipAddr     = fs.String("ip-addr", "", "service IPv4 address with prefix length, e.g. 10.0.0.1/24 (required)")
		nicSpec    = fs.String("nic", "", "packet I/O back-end: afxdp:IFACE, afpacket:IFACE or tap:NAME (required)")
		xdpMode    = fs.String("xdp-mode", "auto", "AF_XDP attach mode: auto (native, else generic), native or generic")
		xdpTx      = fs.String("xdp-tx", "gso", "AF_XDP transmit path: gso (64 KB frames through a packet socket with segmentation offload, the rest on the XSK's TX ring) or ring (the TX ring only)")
		cores      = fs.Int("fp-cores-max", 1, "maximum number of fast-path cores (one per NIC queue; the stack drives one queue today)")
		noInts     = fs.Bool("fp-no-ints", false, "fast path busy-polls and never blocks")
		_          = fs.Bool("fp-no-autoscale", false, "keep the number of cores fixed (gotas does not autoscale: accepted for TAS scripts)")
		_          = fs.Bool("fp-no-xsumoffload", false, "compute TX checksums in software (what gotas does on every back-end today)")
		pollTas    = fs.Int("fp-poll-interval-tas", 50, "µs a fast-path core polls an idle queue before it blocks (TAS: 10000)")
		pollApp    = fs.Int("fp-poll-interval-app", 0, "µs applications poll before they block, told at registration (0: the library's default)")
		shmLen     = fs.String("shm-len", "0", "bytes of shared memory per application, suffix K/M/G (0: room for its flows' buffers; sparse)")
		rxBuf      = fs.String("tcp-rxbuf-len", strconv.Itoa(slowpath.DefaultRingSize), "receive buffer bytes per connection, a power of two; pages are used as bytes arrive and given back when idle (TAS: 8192)")
		txBuf      = fs.String("tcp-txbuf-len", strconv.Itoa(slowpath.DefaultRingSize), "send buffer bytes per connection, a power of two, used and given back like the receive buffer (TAS: 8192)")
		hsTimeout  = fs.Int("tcp-handshake-timeout", 1000000, "µs before the first SYN or SYN-ACK is retransmitted, doubling (TAS: 10000)")
		hsRetries  = fs.Int("tcp-handshake-retries", 5, "SYN / SYN-ACK retransmissions before a connect fails (TAS: 10)")
		maxFlows   = fs.Int("max-flows", slowpath.DefaultMaxFlows, "connections the service holds")
		appFlows   = fs.Int("app-flows-max", 0, "connections (and so local ports) one application may hold (0: --max-flows)")
		appListens = fs.Int("app-listeners-max", 1024, "listening ports one application may hold")
		appsMax    = fs.Int("apps-max", 64, "applications registered at once")
		appUIDs    = fs.String("app-uids", "", "comma-separated uids whose applications may register (empty: any user; SO_PEERCRED)")
		socket     = fs.String("control-socket", DefaultControlSocket, "unix socket where applications register (their TAS_SOCKET)")
		metrics    = fs.String("metrics-addr", stats.DefaultAddr, "serve counters as JSON (/stats, what tasctl stats reads) and Prometheus text (/metrics) on HOST:PORT or unix:PATH; empty: off")
		readyFD    = fs.Int("ready-fd", -1, "file descriptor to write \"1\" (eventfd: a count of 1) to when ready")
		quiet      = fs.Bool("quiet", false, "print no periodic or final counters")
		stats      = fs.Duration("stats-interval", 0, "print counters at this interval (0: never)")
	)
	ccParse := cc.Flags(fs)
	finish := func() error {
		var err error
		if o.stack.Addr, err = parseIPAddr(*ipAddr); err != nil {
			return err
		}
		for _, r := range routes {
			rt, err := gotas.ParseRoute(r)
			if err != nil {
				return fmt.Errorf("--ip-route: %v", err)
			}
			o.stack.Routes = append(o.stack.Routes, rt)
		}
		if *nicSpec == "" {
			return errors.New("--nic is required, e.g. --nic=afxdp:eth0")
		}
		if _, err := nicopen.Parse(*nicSpec); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), nicopen.ErrConfig.Error()+": "))
		}
		// The service's applications are other processes, which cannot
		// run its cores' iterations: a thread per core serves them.
		o.stack.NIC, o.stack.Threads = *nicSpec, true
		switch *xdpMode {
		case "auto", "native", "generic":
			o.stack.XDPMode = *xdpMode
		default:
			return fmt.Errorf("--xdp-mode=%q: want auto, native or generic", *xdpMode)
		}
		switch *xdpTx {
		case "gso", "ring":
			o.stack.XDPTx = *xdpTx
		default:
			return fmt.Errorf("--xdp-tx=%q: want gso or ring", *xdpTx)
		}
		sc := &o.stack.Stack
		checks := []error{
			intIn("fp-cores-max", *cores, 1, 64),
			intIn("fp-poll-interval-tas", *pollTas, 0, 10_000_000),
			intIn("fp-poll-interval-app", *pollApp, 0, 10_000_000),
			intIn("tcp-handshake-timeout", *hsTimeout, 1000, 60_000_000),
			intIn("tcp-handshake-retries", *hsRetries, 1, 32),
			intIn("max-flows", *maxFlows, 1, 1<<24),
			intIn("app-flows-max", *appFlows, 0, *maxFlows),
			intIn("app-listeners-max", *appListens, 1, 65535),
			intIn("apps-max", *appsMax, 1, 256),
			intIn("ready-fd", *readyFD, -1, 1<<20),
		}
		if err := errors.Join(checks...); err != nil {
			return err
		}
		sc.BusyPoll = *noInts
		sc.SpinBeforeBlock = time.Duration(*pollTas) * time.Microsecond
		sc.SynRTO, sc.SynRetries = time.Duration(*hsTimeout)*time.Microsecond, *hsRetries
		sc.MaxFlows = *maxFlows
		if sc.RxBuf, err = ringLen("tcp-rxbuf-len", *rxBuf); err != nil {
			return err
		}
		if sc.TxBuf, err = ringLen("tcp-txbuf-len", *txBuf); err != nil {
			return err
		}
		if sc.RegionSize, err = parseSize("shm-len", *shmLen); err != nil {
			return err
		}
		o.serve = ctlsock.Options{MaxApps: *appsMax, AppPoll: time.Duration(*pollApp) * time.Microsecond,
			Limits: slowpath.AppLimits{MaxFlows: *appFlows, MaxListeners: *appListens}}
		if o.serve.AllowUIDs, err = parseUIDs(*appUIDs); err != nil {
			return err
		}
		if *socket == "" {
			return errors.New("--control-socket must not be empty")
		}
		o.socket, o.metricsAddr, o.readyFD, o.quiet = *socket, *metrics, *readyFD, *quiet
		if *stats < 0 {
			return errors.New("--stats-interval must not be negative")
		}
		o.statsInterval = *stats
		sc.CC, sc.CCParams, err = ccParse()
		return err
	}
	return fs, finish
}

// parseFlags parses tas's command line. Errors wrap errUsage (or are
// flag.ErrHelp) and say what is wrong in one line; --help goes to out.
func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs, finish := flagSet(&o)
	// The flag package would print the whole usage on every error; one
	// line saying what is wrong is clearer, and --help prints the rest.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fmt.Fprintf(out, "Usage: tas --ip-addr=A/P --nic=KIND:IFACE [flags]\n\nFlags:\n")
			fs.PrintDefaults()
			return o, err
		}
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if err := finish(); err != nil {
		return o, fmt.Errorf("%w: %s", errUsage, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return o, nil
}

func parseIPAddr(v string) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, errors.New("--ip-addr is required, e.g. --ip-addr=10.0.0.1/24")
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return p, fmt.Errorf("--ip-addr=%q: want an IPv4 address with prefix, e.g. 10.0.0.1/24", v)
		}
		p = netip.PrefixFrom(a, 32)
	}
	a := p.Addr()
	switch {
	case !a.Is4():
		return p, fmt.Errorf("--ip-addr=%q: only IPv4 is supported", v)
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return p, fmt.Errorf("--ip-addr=%q is not a unicast address", v)
	}
	return p, nil
}

func intIn(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s=%d: want %d to %d", name, v, lo, hi)
	}
	return nil
}

// parseSize reads a byte count with an optional K, M or G suffix (powers
// of 1024).
func parseSize(name, v string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult, v = 1<<10, v[:len(v)-1]
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, v[:len(v)-1]
	case strings.HasSuffix(v, "G"):
		mult, v = 1<<30, v[:len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > (1<<46)/mult {
		return 0, fmt.Errorf("--%s=%q: want a byte count such as 1G", name, v)
	}
	return n * mult, nil
}

func ringLen(name, v string) (uint32, error) {
	n, err := parseSize(name, v)
	if err != nil {
		return 0, err
	}
	if n < minRingLen || n > maxRingLen || bits.OnesCount64(n) != 1 {
		return 0, fmt.Errorf("--%s=%s: want a power of two from %d to %d", name, v, minRingLen, maxRingLen)
	}
	return uint32(n), nil
}

func parseUIDs(v string) ([]uint32, error) {
	if v == "" {
		return nil, nil
	}
	var out []uint32
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--app-uids=%q: %q is not a uid", v, f)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
