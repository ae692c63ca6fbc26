// Package benchcli is tasbench's command line, shared with tasctl, which
// runs the same workloads inside namespaces for its demo.
//
//	tasbench echo-server --port 7 [--msg-size 64] [--bulk-port P] [--source-port P] [--http-port P]
//	tasbench echo-client --addr IP:P --msg-size N --conns C --pending K --duration D [--json] [--marks]
//	tasbench http-server --port 8080 --body-size N
//	tasbench http-client --addr IP:P --conns C --duration D [--json] [--marks]
//	tasbench bulk-server --port P
//	tasbench bulk --addr IP:P --conns C --duration D [--reverse] [--json]
//	tasbench hold --addr IP:P --conns N --duration D [--src IP,IP] [--json]
//	tasbench matrix [--duration 4s] [--quick] [--cells W,W] [--pairs P,P] [--json] [--svg FILE]
//	tasbench sim --cc NAME --flows N [--incast] [--json]
//	tasbench flowgen --sim --cdf PATH|--dist websearch --load 0.6 --flows N --cc A,B [--json] [--svg F]
//	tasbench flowgen --addr IP:P --rate BPS --rtt D [--stack gotas --cc NAME] --cdf PATH|--dist websearch ...
//
// The echo protocol is TAS's micro_rpc one: fixed-size messages echoed back.
package benchcli

import (
	"cmp"
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
	"runtime/pprof"
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
  http-client   closed-loop HTTP/1.1 GETs on keep-alive connections, like wrk,
                on either stack; same flags and output as echo-client
  http-server   serve a fixed-size body for every GET
  bulk-server   count one-way streams and confirm the byte count
  bulk          one-way stream to a bulk-server; prints Gbit/s
  hold          open N connections to an echo-server, echo once on each,
                hold them idle; prints how many stayed open
  matrix        run every workload for every pairing of Linux and gotas as
                client and server, each pairing on its own two namespaces
                over a veth; prints ratios to Linux <-> Linux (root)

  sim           run a congestion-control scenario on real gotas stacks in
                virtual time (--cc=NAME --flows=N [--incast] [--json])
  flowgen       Poisson flows with sizes from a CDF at a target load;
                FCT slowdown by flow size (--cdf=PATH|--dist=websearch
                --load=0.6 --flows=N [--json] [--svg=FILE]; --sim
                --cc=A[,B...] in the simulator, or live to a bulk-server:
                --addr=IP:P --rate=BPS --rtt=D [--stack=gotas --cc=NAME])

Every command but sim takes --stack=linux|gotas|tas (flowgen without
--sim; tas: an application of the running service whose control socket
--tas-socket or TAS_SOCKET names).
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
	case "echo-client", "http-client":
		err = loadClient(ctx, cmd, rest, stdout, stderr)
	case "bulk":
		err = bulkClient(ctx, rest, stdout)
	case "hold":
		err = holdClient(ctx, rest, stdout)
	case "matrix":
		err = matrix(ctx, rest, stdout, stderr)
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
	name := fs.String("stack", "linux", "TCP stack: linux, gotas (embedded) or tas (the running service)")
	socket := fs.String("tas-socket", "", "tas: the service's control socket (default: $TAS_SOCKET, else /run/gotas/tas.sock)")
	ipAddr := fs.String("ip-addr", "", "gotas: the stack's IPv4 address with prefix, e.g. 10.0.0.1/24")
	nicSpec := fs.String("nic", "", "gotas: packet I/O back-end, e.g. afxdp:eth0")
	xdpMode := fs.String("xdp-mode", "auto", "gotas: AF_XDP attach mode (auto, native, generic)")
	xdpTx := fs.String("xdp-tx", "gso", "gotas: AF_XDP transmit path: gso (64 KB frames through a packet socket with segmentation offload, the rest on the XSK's TX ring) or ring (the TX ring only)")
	busyPoll := fs.Bool("fp-no-ints", false, "gotas: the fast path busy-polls and never sleeps")
	threads := fs.Bool("threads", false, "gotas: a locked thread per fast-path core instead of running inline on the application's goroutines")
	spin := fs.Duration("fp-spin", 0, "gotas: how long an idle core polls before it blocks (0: the default)")
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
			cfg := gotas.Config{Addr: prefix, NIC: *nicSpec, XDPMode: *xdpMode, XDPTx: *xdpTx, Routes: routes, Threads: *threads}
			cfg.Stack.BusyPoll, cfg.Stack.SpinBeforeBlock = *busyPoll, *spin
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
		case "tas":
			path := cmp.Or(*socket, os.Getenv(gotas.ServiceEnv), defaultTasSocket)
			st, err := gotas.New(gotas.Config{Service: path})
			if err != nil {
				return nil, nil, err
			}
			return bench.Gotas{Stack: st}, func() { st.Close() }, nil
		}
		return nil, nil, fmt.Errorf("%w: --stack=%q: want linux, gotas or tas", errUsage, *name)
	}
}

// defaultTasSocket is tas's default --control-socket.
const defaultTasSocket = "/run/gotas/tas.sock"

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
	var extra [3]int
	fs.IntVar(&extra[0], "bulk-port", 0, "also run a bulk-server on this port of the same stack (0: none)")
	fs.IntVar(&extra[1], "source-port", 0, "also send a stream to every connection on this port (bulk --reverse; 0: none)")
	fs.IntVar(&extra[2], "http-port", 0, "also run an http-server (--body-size) on this port (0: none)")
	statsEvery := fs.Duration("stats-every", 0, "gotas: print the stack's resources and counters this often (0: never)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server's life to this file (go tool pprof)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *port < 1 || *port > 65535 {
		return fmt.Errorf("%w: --port=%d: want 1 to 65535", errUsage, *port)
	}
	for _, p := range extra {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%w: port %d: want 1 to 65535, or 0 for none", errUsage, p)
		}
	}
	if *msgSize < 1 || *bodySize < 0 {
		return fmt.Errorf("%w: --msg-size must be positive and --body-size not negative", errUsage)
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	main := map[string]func(net.Listener) error{
		"echo-server": func(ln net.Listener) error { return bench.EchoServer(ln, *msgSize) },
		"http-server": func(ln net.Listener) error { return bench.HTTPServer(ln, *bodySize) },
		"bulk-server": bench.BulkServer,
	}
	servers := []struct {
		name string
		port int
		run  func(net.Listener) error
	}{
		{cmd, *port, main[cmd]},
		{"bulk-server", extra[0], bench.BulkServer},
		{"source-server", extra[1], bench.SourceServer},
		{"http-server", extra[2], main["http-server"]},
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, s := range servers {
		if s.port == 0 {
			continue
		}
		ln, err := st.Listen(net.JoinHostPort(*bind, strconv.Itoa(s.port)))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Fprintf(stdout, "%s listening on %s\n", s.name, ln.Addr())
		if len(lns) > 1 {
			go s.run(ln)
		}
	}
	go func() {
		<-ctx.Done()
		lns[0].Close()
	}()
	if g, ok := st.(bench.Gotas); ok && *statsEvery > 0 {
		go printStats(ctx, stdout, g.Stack, *statsEvery)
	}
	return servers[0].run(lns[0])
}

// loadClient runs echo-client or http-client: the same closed loop, with
// the echo protocol or HTTP GETs.
func loadClient(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	openStack := stackFlag(fs)
	var cfg bench.EchoConfig
	fs.StringVar(&cfg.Addr, "addr", "", "server IP:PORT (required)")
	fs.IntVar(&cfg.MsgSize, "msg-size", 64, "message size in bytes")
	fs.IntVar(&cfg.Conns, "conns", 1, "connections")
	fs.IntVar(&cfg.Pending, "pending", 1, "messages in flight per connection")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "time before measuring starts")
	asJSON := fs.Bool("json", false, "print one JSON object")
	marks := fs.Bool("marks", false, "print "+bench.MarkStart+" and "+bench.MarkStop+" lines on stderr around the measured window")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("%w: --addr=%q: want IP:PORT", errUsage, cfg.Addr)
	}
	if *marks {
		cfg.OnMeasure = func(start bool) {
			if start {
				fmt.Fprintln(stderr, bench.MarkStart)
			} else {
				fmt.Fprintln(stderr, bench.MarkStop)
			}
		}
	}
	if cfg.MsgSize < 1 || cfg.Conns < 1 || cfg.Conns > 100000 || cfg.Pending < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return fmt.Errorf("%w: --msg-size, --conns (up to 100000), --pending and --duration must be positive", errUsage)
	}
	st, closeStack, err := openStack()
	if err != nil {
		return err
	}
	defer closeStack()
	run := bench.RunEchoClient
	if cmd == "http-client" {
		run = bench.RunHTTPClient
	}
	r, err := run(ctx, st, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	what := fmt.Sprintf("%d-byte messages", r.MsgSize)
	if cmd == "http-client" {
		what = "HTTP GETs"
	}
	fmt.Fprintf(stdout, "%d conns x %d pending, %s, %v: %.0f req/s; latency mean %.1f µs, p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs; %.2f µs CPU/req; %d errors\n",
		r.Conns, r.Pending, what, r.Elapsed.Round(time.Millisecond), r.ThroughputRPS, r.MeanUs, r.P50Us, r.P99Us, r.P999Us, r.CPUUsPerReq, r.Errors)
	return nil
}

func bulkClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bulk", flag.ContinueOnError)
	openStack := stackFlag(fs)
	addr := fs.String("addr", "", "bulk-server IP:PORT (required)")
	conns := fs.Int("conns", 1, "parallel streams")
	d := fs.Duration("duration", 10*time.Second, "how long to send")
	reverse := fs.Bool("reverse", false, "receive from a --source-port instead of sending (one stream)")
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
	var r bench.BulkResult
	if *reverse {
		r, err = bench.RunSourceClient(ctx, st, *addr, *d)
	} else {
		r, err = bench.RunBulkClient(ctx, st, *addr, *conns, *d)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	by := "confirmed by the server"
	if *reverse {
		by = "received"
	}
	fmt.Fprintf(stdout, "%d stream(s), %v: %.3f Gbit/s (%d bytes %s)\n", *conns, r.Elapsed.Round(time.Millisecond), r.Gbps, r.Bytes, by)
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
	if st.Engine() == nil {
		fmt.Fprintln(w, "stats: the stack is the tas service's; tasctl stats shows its counters")
		return
	}
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

// startProfile starts a CPU profile into path; the returned func ends it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
