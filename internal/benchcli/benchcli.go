// Package benchcli is tasbench's command line, shared with tasctl, which
// runs the same workloads inside namespaces for its demo.
//
//	tasbench echo-server --port 7 [--msg-size 64]
//	tasbench echo-client --addr IP:P --msg-size N --conns C --pending K --duration D [--json]
//	tasbench http-server --port 8080 --body-size N
//	tasbench bulk-server --port P
//	tasbench bulk --addr IP:P --conns C --duration D [--json]
//	tasbench hold --addr IP:P --conns N --duration D [--src IP,IP] [--json]
//	tasbench sim --cc NAME --flows N [--incast] [--json]
//	tasbench flowgen --sim --cdf PATH|--dist websearch --load 0.6 --flows N --cc A,B [--json] [--svg F]
//	tasbench flowgen --addr IP:P --rate BPS --rtt D [--stack gotas --cc NAME] --cdf PATH|--dist websearch ...
//
// The echo protocol is TAS's micro_rpc one: fixed-size messages echoed back.
package benchcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gotas"
	"gotas/internal/bench"
	"gotas/internal/cc"
	"gotas/internal/nic/nicopen"
)

const usage = `Usage: tasbench COMMAND [flags]

Commands:
  echo-server   echo fixed-size messages (TAS micro_rpc protocol)
  echo-client   closed-loop echo load; prints throughput and latency percentiles
  http-server   serve a fixed-size body for every GET
  bulk-server   count one-way streams and confirm the byte count
  bulk          one-way stream to a bulk-server; prints Gbit/s
  hold          open N connections to an echo-server, echo once on each,
                hold them idle; prints how many stayed open
  sim           run a congestion-control scenario on real gotas stacks in
                virtual time (--cc=NAME --flows=N [--incast] [--json])
  flowgen       Poisson flows with sizes from a CDF at a target load;
                FCT slowdown by flow size (--cdf=PATH|--dist=websearch
                --load=0.6 --flows=N [--json] [--svg=FILE]; --sim
                --cc=A[,B...] in the simulator, or live to a bulk-server:
                --addr=IP:P --rate=BPS --rtt=D [--stack=gotas --cc=NAME])

Every command but sim takes --stack=linux|gotas (flowgen without --sim).
`

var errUsage = errors.New("usage")

// Run runs one tasbench command and returns its exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "echo-server", "http-server", "bulk-server":
		err = serve(ctx, cmd, rest, stdout)
	case "echo-client":
		err = echoClient(ctx, rest, stdout)
	case "bulk":
		err = bulkClient(ctx, rest, stdout)
	case "hold":
		err = holdClient(ctx, rest, stdout)
	case "sim":
		err = simCmd(rest, stdout)
	case "flowgen":
		err = flowgenCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tasbench: unknown command %q\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tasbench %s: %v\n", cmd, err)
		return 2
	default:
		fmt.Fprintf(stderr, "tasbench %s: %v\n", cmd, err)
		return 1
	}
}

// stackFlag adds --stack and, for gotas, the service's --ip-addr, --nic
// and --xdp-mode flags; it returns a function that opens the chosen stack
// and one that closes it.
func stackFlag(fs *flag.FlagSet) func() (bench.Stack, func(), error) {
	return stackFlagCC(fs, cc.Flags(fs))
}

// stackFlagCC is stackFlag with the gotas stack's congestion control taken
// from ccFlags (a command that defines --cc itself).
func stackFlagCC(fs *flag.FlagSet, ccFlags func() (string, cc.Params, error)) func() (bench.Stack, func(), error) {
	name := fs.String("stack", "linux", "TCP stack: linux or gotas")
	ipAddr := fs.String("ip-addr", "", "gotas: the stack's IPv4 address with prefix, e.g. 10.0.0.1/24")
	nicSpec := fs.String("nic", "", "gotas: packet I/O back-end, e.g. afxdp:eth0")
	xdpMode := fs.String("xdp-mode", "auto", "gotas: AF_XDP attach mode (auto, native, generic)")
	busyPoll := fs.Bool("fp-no-ints", false, "gotas: the fast path busy-polls and never sleeps")
	var routes routeFlag
	fs.Var(&routes, "ip-route", "gotas: static route DEST/P,NEXTHOP (repeatable)")
	return func() (bench.Stack, func(), error) {
		switch *name {
		case "linux":
			return bench.Linux{}, func() {}, nil
		case "gotas":
			prefix, err := netip.ParsePrefix(*ipAddr)
			if err != nil || !prefix.Addr().Is4() {
				return nil, nil, fmt.Errorf("%w: --stack=gotas needs --ip-addr=A/P (got %q)", errUsage, *ipAddr)
			}
			if _, err := nicopen.Parse(*nicSpec); err != nil {
				return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			cfg := gotas.Config{Addr: prefix, NIC: *nicSpec, XDPMode: *xdpMode, Routes: routes}
			cfg.Stack.BusyPoll = *busyPoll
			if cfg.Stack.CC, cfg.Stack.CCParams, err = ccFlags(); err != nil {
				return nil, nil, fmt.Errorf("%v: %w", err, errUsage)
			}
			st, err := gotas.New(cfg)
			if err != nil {
				if errors.Is(err, nicopen.ErrConfig) {
					err = fmt.Errorf("%w: %v", errUsage, err)
				}
				return nil, nil, err
			}
			return bench.Gotas{Stack: st}, func() { st.Close() }, nil
		}
		return nil, nil, fmt.Errorf("%w: --stack=%q: want linux or gotas", errUsage, *name)
	}
}

// routeFlag collects repeated --ip-route=DEST/P,NEXTHOP flags.
type routeFlag []gotas.Route

func (r *routeFlag) String() string { return fmt.Sprint(*r) }

func (r *routeFlag) Set(s string) error {
	rt, err := gotas.ParseRoute(s)
	if err != nil {
		return err
	}
	*r = append(*r, rt)
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func serve(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	openStack := stackFlag(fs)
	port := fs.Int("port", 0, "TCP port to listen on (required)")
	bind := fs.String("bind", "0.0.0.0", "address to listen on")
	msgSize := fs.Int("msg-size", 64, "echo-server: message size in bytes")
	bodySize := fs.Int("body-size", 1024, "http-server: response body size in bytes")
	bulkPort := fs.Int("bulk-port", 0, "also run a bulk-server on this port of the same stack (0: none)")
	statsEvery := fs.Duration("stats-every", 0, "gotas: print the stack's resources and counters this often (0: never)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *port < 1 || *port > 65535 {
		return fmt.Errorf("%w: --port=%d: want 1 to 65535", errUsage, *port)
	}
	if *msgSize < 1 || *bodySize < 0 {
		return fmt.Errorf("%w: --msg-size must be positive and --body-size not negative", errUsage)
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	ln, err := st.Listen(net.JoinHostPort(*bind, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s listening on %s\n", cmd, ln.Addr())
	if *bulkPort > 0 && *bulkPort < 65536 {
		bl, err := st.Listen(net.JoinHostPort(*bind, strconv.Itoa(*bulkPort)))
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stdout, "bulk-server listening on %s\n", bl.Addr())
		go bench.BulkServer(bl)
		defer bl.Close()
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	if g, ok := st.(bench.Gotas); ok && *statsEvery > 0 {
		go printStats(ctx, stdout, g.Stack, *statsEvery)
	}
	switch cmd {
	case "echo-server":
		return bench.EchoServer(ln, *msgSize)
	case "http-server":
		return bench.HTTPServer(ln, *bodySize)
	default:
		return bench.BulkServer(ln)
	}
}

func echoClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("echo-client", flag.ContinueOnError)
	openStack := stackFlag(fs)
	var cfg bench.EchoConfig
	fs.StringVar(&cfg.Addr, "addr", "", "server IP:PORT (required)")
	fs.IntVar(&cfg.MsgSize, "msg-size", 64, "message size in bytes")
	fs.IntVar(&cfg.Conns, "conns", 1, "connections")
	fs.IntVar(&cfg.Pending, "pending", 1, "messages in flight per connection")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "time before measuring starts")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("%w: --addr=%q: want IP:PORT", errUsage, cfg.Addr)
	}
	if cfg.MsgSize < 1 || cfg.Conns < 1 || cfg.Conns > 100000 || cfg.Pending < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return fmt.Errorf("%w: --msg-size, --conns (up to 100000), --pending and --duration must be positive", errUsage)
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	r, err := bench.RunEchoClient(ctx, st, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "%d conns x %d pending, %d-byte messages, %v: %.0f req/s; latency mean %.1f µs, p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs; %.2f µs CPU/req; %d errors\n",
		r.Conns, r.Pending, r.MsgSize, r.Elapsed.Round(time.Millisecond), r.ThroughputRPS, r.MeanUs, r.P50Us, r.P99Us, r.P999Us, r.CPUUsPerReq, r.Errors)
	return nil
}

func bulkClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bulk", flag.ContinueOnError)
	openStack := stackFlag(fs)
	addr := fs.String("addr", "", "bulk-server IP:PORT (required)")
	conns := fs.Int("conns", 1, "parallel streams")
	d := fs.Duration("duration", 10*time.Second, "how long to send")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("%w: --addr=%q: want IP:PORT", errUsage, *addr)
	}
	if *conns < 1 || *d <= 0 {
		return fmt.Errorf("%w: --conns and --duration must be positive", errUsage)
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	r, err := bench.RunBulkClient(ctx, st, *addr, *conns, *d)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "%d stream(s), %v: %.3f Gbit/s (%d bytes confirmed by the server)\n", *conns, r.Elapsed.Round(time.Millisecond), r.Gbps, r.Bytes)
	return nil
}

func holdClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	openStack := stackFlag(fs)
	var cfg bench.HoldConfig
	fs.StringVar(&cfg.Addr, "addr", "", "echo-server IP:PORT (required)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open and hold")
	fs.IntVar(&cfg.MsgSize, "msg-size", 64, "size of the one message echoed on each connection (the server's --msg-size)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to hold them once open")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "dials in flight")
	src := fs.String("src", "", "linux: comma-separated local addresses to dial from, in turn")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("%w: --addr=%q: want IP:PORT", errUsage, cfg.Addr)
	}
	if cfg.Conns < 1 || cfg.MsgSize < 1 || cfg.Duration < 0 || cfg.Parallel < 1 {
		return fmt.Errorf("%w: --conns, --msg-size and --parallel must be positive", errUsage)
	}
	if *src != "" {
		cfg.Sources = strings.Split(*src, ",")
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	if !*asJSON {
		cfg.Progress = stdout
	}
	r, err := bench.RunHold(ctx, st, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "%d opened, %d failed, %d still open after %v\n", r.Opened, r.Failed, r.Open, cfg.Duration)
	if r.FirstErr != "" {
		fmt.Fprintf(stdout, "first error: %s\n", r.FirstErr)
	}
	return nil
}

// printStats prints a gotas stack's resources and counters every d.
func printStats(ctx context.Context, w io.Writer, st *gotas.Stack, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e := st.Engine()
		ss := e.Stats()
		fmt.Fprintf(w, "stats: %+v dropped-events %d ring-bytes-discarded %d accept-no-mem %d backlog-overflow %d\nengine: %+v\ncore: %+v\nnic: %+v\n",
			e.Resources(), st.DroppedEvents(), ss.RingBytesDiscarded, ss.AcceptNoMem, ss.BacklogOverflow, e.EngineStats(0),
			e.CoreStats(0), e.NICStats())
	}
}
