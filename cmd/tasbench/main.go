// Command tasbench runs benchmark servers and clients on either the Linux
// stack or gotas, so both are measured with the same code. Run it without
// arguments for the commands; internal/benchcli has the details.
package main

import (
	"os"

	"gotas/internal/benchcli"
)

func main() {
	os.Exit(benchcli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
