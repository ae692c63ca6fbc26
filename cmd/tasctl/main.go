// Command tasctl operates gotas. Its demo subcommand builds a small network
// of namespaces, runs the service on it and shows it working next to Linux.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: tasctl COMMAND [flags]

Commands:
  demo    build two namespaces joined by a veth, run gotas on one side over
          each packet I/O back-end, and compare it with Linux from the other
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = demo(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tasctl: unknown command %q\n%s", args[0], usage)
		return 2
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
