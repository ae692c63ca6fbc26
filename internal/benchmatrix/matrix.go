// Package benchmatrix runs tasbench's side-by-side matrix: every workload
// (64-byte RPC at several connection counts, HTTP with wrk, one bulk
// stream each way) for every pairing of Linux's TCP and gotas as client
// and server, one after another on one machine, so that every figure has a
// Linux <-> Linux reference from the same run.
//
// Each pairing gets its own topology, two namespaces over a veth made by
// testnet with unique names and deleted by name when the pairing is done:
// Linux <-> Linux runs on a plain veth, with no XDP program attached, and
// a gotas end attaches AF_XDP only to its own side. Servers and clients
// are separate tasbench processes, so each one's CPU time and context
// switches are its own.
package benchmatrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gotas/internal/bench"
)

// Stack names, as tasbench's --stack takes them.
const (
	Linux = "linux"
	Gotas = "gotas"
)

// Pair is one pairing of stacks.
type Pair struct {
	Client, Server string
	// Attach, for a Linux server, is the XDP mode of an idle gotas stack
	// on another address of the server's interface: what attaching
	// AF_XDP costs Linux's own TCP there ("" for none).
	Attach string
}

// Name is how the pairing is named on the command line: client-server,
// with +xdp-MODE for an attached program.
func (p Pair) Name() string {
	n := p.Client + "-" + p.Server
	if p.Attach != "" {
		n += "+xdp-" + p.Attach
	}
	return n
}

// Pairs is every pairing run by default, the reference first.
var Pairs = []Pair{{Client: Linux, Server: Linux}, {Client: Linux, Server: Gotas}, {Client: Gotas, Server: Linux}, {Client: Gotas, Server: Gotas}}

// AttachPairs are Linux <-> Linux with gotas's XDP program attached on the
// server's interface, natively or generically; run on request.
var AttachPairs = []Pair{{Client: Linux, Server: Linux, Attach: "native"}, {Client: Linux, Server: Linux, Attach: "generic"}}

// allPairs is every pairing there is, in the order reports list them.
func allPairs() []Pair { return append(slices.Clone(Pairs), AttachPairs...) }

// Kind is what a workload measures.
type Kind int

const (
	KindRPC    Kind = iota // tasbench echo-client, 64-byte messages, one in flight per connection
	KindHTTP               // wrk against tasbench's HTTP server
	KindGoHTTP             // tasbench http-client (Go, either stack) against the same server
	KindBulk               // one stream, client to server or server to client
)

// Workload is one column of the matrix.
type Workload struct {
	Name    string
	Kind    Kind
	Conns   int  // RPC and HTTP
	Reverse bool // bulk: the server sends
	// MTUFrames turns off TSO and GSO on a Linux client's interface for
	// the cell, and a gotas client's (--xdp-tx=ring), so that both send
	// MTU-sized frames
	// (the reference for gotas as a sender).
	MTUFrames bool
}

// Workloads is every workload, in the order they run.
var Workloads = []Workload{
	{Name: "rpc-1", Kind: KindRPC, Conns: 1},
	{Name: "rpc-64", Kind: KindRPC, Conns: 64},
	{Name: "rpc-1000", Kind: KindRPC, Conns: 1000},
	{Name: "http-1", Kind: KindHTTP, Conns: 1},
	{Name: "http-16", Kind: KindHTTP, Conns: 16},
	{Name: "gohttp-1", Kind: KindGoHTTP, Conns: 1},
	{Name: "gohttp-16", Kind: KindGoHTTP, Conns: 16},
	{Name: "bulk-up", Kind: KindBulk},
	{Name: "bulk-down", Kind: KindBulk, Reverse: true},
	{Name: "bulk-up-mtu", Kind: KindBulk, MTUFrames: true},
}

// The workloads' fixed sizes, after the table: 64-byte RPC
// messages (TAS's micro_rpc benchmark) and a 64-byte HTTP body.
const (
	rpcMsgSize   = 64
	httpBodySize = 64
)

// Options configures a run.
type Options struct {
	// Bin is the tasbench executable that servers and clients run as.
	Bin string
	// Env is added to the environment of every process Bin runs as.
	Env []string
	// Duration is each cell's measured time; Warmup runs before it (RPC).
	Duration, Warmup time.Duration
	Pairs            []Pair
	Workloads        []Workload
	// XDPMode is gotas's AF_XDP attach mode (auto, native, generic).
	XDPMode string
	// GotasArgs are added to the command line of every gotas process
	// (tasbench stack flags such as --threads), to compare variants.
	GotasArgs []string
	// Progress, if set, gets one line per cell as it completes.
	Progress io.Writer
}

// Cell is one workload on one pairing.
type Cell struct {
	Pair     string `json:"pair"` // client-server
	Workload string `json:"workload"`
	// Unit is what Throughput counts: "req/s" or "Gbit/s".
	Unit       string  `json:"unit"`
	Throughput float64 `json:"throughput"`
	// Ratio is Throughput over the Linux <-> Linux cell of the same
	// workload in the same run (0 if that one did not run).
	Ratio  float64 `json:"ratio"`
	P50Us  float64 `json:"p50_us,omitempty"`
	P99Us  float64 `json:"p99_us,omitempty"`
	P999Us float64 `json:"p999_us,omitempty"`
	// Per is what the per-unit figures below are divided by: "req", or
	// "MiB" for bulk; Units is how many there were.
	Per   string  `json:"per"`
	Units float64 `json:"units"`
	// Client and Server are each process's usage over the measured
	// window, and the per-unit figures derived from them.
	Client         bench.ProcUsage `json:"client"`
	Server         bench.ProcUsage `json:"server"`
	ClientCswPer   float64         `json:"client_csw_per_unit"`
	ServerCswPer   float64         `json:"server_csw_per_unit"`
	ServerCPUUsPer float64         `json:"server_cpu_us_per_unit"`
	// Errors counts failed requests or connections the client reported.
	Errors uint64 `json:"errors,omitempty"`
	// Skipped says why the cell did not run; Err why it failed.
	Skipped string `json:"skipped,omitempty"`
	Err     string `json:"error,omitempty"`
}

// Moved reports whether the cell ran and moved data.
func (c *Cell) Moved() bool { return c.Err == "" && c.Skipped == "" && c.Throughput > 0 && c.Units > 0 }

// Report is a whole run.
type Report struct {
	Start       time.Time `json:"start"`
	DurationSec float64   `json:"cell_duration_s"`
	// LoadBefore and LoadAfter are the 1-minute load averages around the
	// run, for telling an idle machine from a busy one.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
	Cells      []Cell  `json:"cells"`
}

// ErrOptions is returned for an unusable Options.
var ErrOptions = errors.New("benchmatrix: bad options")

// Run runs every selected cell, pairing by pairing, and returns them with
// their ratios filled in. A cell that fails is recorded with its error and
// the run goes on; only a context cancellation stops it early.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Bin == "" || o.Duration <= 0 || o.Warmup < 0 || len(o.Pairs) == 0 || len(o.Workloads) == 0 {
		return nil, fmt.Errorf("need a binary, a positive duration, pairs and workloads: %w", ErrOptions)
	}
	rep := &Report{Start: time.Now(), DurationSec: o.Duration.Seconds(), LoadBefore: loadAvg()}
	for _, p := range o.Pairs {
		cells := runPair(ctx, o, p)
		rep.Cells = append(rep.Cells, cells...)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	rep.LoadAfter = loadAvg()
	fillRatios(rep.Cells)
	return rep, nil
}

func fillRatios(cells []Cell) {
	ref := map[string]float64{}
	for _, c := range cells {
		if c.Pair == (Pair{Client: Linux, Server: Linux}).Name() && c.Moved() {
			ref[c.Workload] = c.Throughput
		}
	}
	for i := range cells {
		if r := ref[cells[i].Workload]; r > 0 && cells[i].Moved() {
			cells[i].Ratio = cells[i].Throughput / r
		}
	}
}

// ParsePairs parses a comma-separated list of pairing names.
func ParsePairs(s string) ([]Pair, error) {
	var out []Pair
	for _, name := range strings.Split(s, ",") {
		all := allPairs()
		i := slices.IndexFunc(all, func(p Pair) bool { return p.Name() == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("pairing %q: want one of %s: %w", name, pairNames(), ErrOptions)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// ParseWorkloads parses a comma-separated list of workload names.
func ParseWorkloads(s string) ([]Workload, error) {
	var out []Workload
	for _, name := range strings.Split(s, ",") {
		i := slices.IndexFunc(Workloads, func(w Workload) bool { return w.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("workload %q: want one of %s: %w", name, workloadNames(), ErrOptions)
		}
		out = append(out, Workloads[i])
	}
	return out, nil
}

func pairNames() string {
	var n []string
	for _, p := range allPairs() {
		n = append(n, p.Name())
	}
	return strings.Join(n, ",")
}

func workloadNames() string {
	var n []string
	for _, w := range Workloads {
		n = append(n, w.Name)
	}
	return strings.Join(n, ",")
}
