// Command tasctl operates gotas. Its demo subcommand builds a small network
// of namespaces, runs the service on it and shows it working next to Linux.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"gotas/internal/benchcli"
	"gotas/internal/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: tasctl COMMAND [flags]

Commands:
  demo    build two namespaces joined by a veth; run an echo server on gotas
          and one on Linux side by side in one, drive both from the same
          Linux client in the other, and print a comparison table
  ping    run gotas over each packet I/O back-end and ping it and Linux
  stats   the running service's applications, flows, cores and drops
          (--json, --watch=1s)
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// A signal cancels the run so that its namespaces are still removed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "demo":
		err = demo(ctx, args[1:], stdout, stderr)
	case "ping":
		err = pingDemo(ctx, args[1:], stdout, stderr)
	case "stats":
		err = statsCmd(ctx, args[1:], stdout, stderr)
	case benchWorker:
		// tasctl re-runs itself as the demo's Linux-side processes.
		return benchcli.Run(args[1:], stdout, stderr)
	case tasWorker:
		return daemon.Run(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tasctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil && ctx.Err() != nil {
		err = errors.New("interrupted; what the run made is removed")
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tasctl: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "tasctl: %v\n", err)
		return 1
	}
}

var errUsage = errors.New("usage")

// parseFlags parses a subcommand's flags: --help prints them, any other
// error is a usage error (exit status 2).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == flag.ErrHelp:
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return err
	case err != nil:
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
