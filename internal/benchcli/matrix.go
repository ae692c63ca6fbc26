package benchcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gotas/internal/benchmatrix"
)

// quickWorkloads is what --quick runs unless --cells says otherwise: one
// cell of each kind, for tests and a first look.
const quickWorkloads = "rpc-1,http-1,bulk-up"

// Durations of --quick: enough for a few thousand requests.
const (
	quickDuration = 300 * time.Millisecond
	quickWarmup   = 100 * time.Millisecond
)

// matrix runs benchmatrix and prints its table or JSON, and its chart.
func matrix(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	d := fs.Duration("duration", 4*time.Second, "measured time of each cell")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "RPC cells: time before measuring starts")
	quick := fs.Bool("quick", false, "short cells ("+quickDuration.String()+"), and only "+quickWorkloads+" unless --cells is given")
	cells := fs.String("cells", "", "comma-separated workloads (default all): rpc-1,rpc-64,rpc-1000,http-1,http-16,gohttp-1,gohttp-16,bulk-up,bulk-down,bulk-up-mtu")
	pairs := fs.String("pairs", "", "comma-separated client-server pairings (default the first four): linux-linux,linux-gotas,gotas-linux,gotas-gotas,\n"+
		"linux-linux+xdp-native,linux-linux+xdp-generic (Linux on both ends, gotas's XDP program attached on the server's interface)")
	xdpMode := fs.String("xdp-mode", "auto", "gotas: AF_XDP attach mode (auto, native, generic)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	out := fs.String("out", "", "also write the JSON object to this file")
	svg := fs.String("svg", "", "also write an SVG chart of the ratios to this file")
	bin := fs.String("bin", "", "tasbench executable the servers and clients run as (default: this one)")
	gotasFlags := fs.String("gotas-flags", "", "space-separated flags added to every gotas process, e.g. \"--threads\"")
	if err := parse(fs, args); err != nil {
		return err
	}
	o := benchmatrix.Options{Duration: *d, Warmup: *warmup, XDPMode: *xdpMode, Bin: *bin, Progress: stderr,
		GotasArgs: strings.Fields(*gotasFlags)}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			o.Duration = quickDuration
		}
		if !set["warmup"] {
			o.Warmup = quickWarmup
		}
		if *cells == "" {
			*cells = quickWorkloads
		}
	}
	if err := matrixSelection(&o, *cells, *pairs); err != nil {
		return err
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Bin = exe
	}
	rep, err := benchmatrix.Run(ctx, o)
	if errors.Is(err, benchmatrix.ErrOptions) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if rep == nil {
		return err
	}
	if *svg != "" {
		if werr := writeFile(*svg, func(w io.Writer) error { return benchmatrix.WriteSVG(w, rep) }); werr != nil {
			return werr
		}
	}
	if *out != "" {
		if werr := writeJSON(*out, rep); werr != nil {
			return werr
		}
	}
	if *asJSON {
		if jerr := json.NewEncoder(stdout).Encode(rep); jerr != nil {
			return jerr
		}
	} else if terr := benchmatrix.WriteTable(stdout, rep); terr != nil {
		return terr
	}
	return err
}

func matrixSelection(o *benchmatrix.Options, cells, pairs string) error {
	o.Workloads, o.Pairs = benchmatrix.Workloads, benchmatrix.Pairs
	var err error
	if cells != "" {
		if o.Workloads, err = benchmatrix.ParseWorkloads(cells); err != nil {
			return fmt.Errorf("%w: --cells: %v", errUsage, err)
		}
	}
	if pairs != "" {
		if o.Pairs, err = benchmatrix.ParsePairs(pairs); err != nil {
			return fmt.Errorf("%w: --pairs: %v", errUsage, err)
		}
	}
	if o.Duration <= 0 || o.Warmup < 0 {
		return fmt.Errorf("%w: --duration must be positive and --warmup not negative", errUsage)
	}
	return nil
}

func writeJSON(path string, rep *benchmatrix.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
