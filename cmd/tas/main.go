// Command tas runs the gotas service on one network interface: the TCP
// stack for every application on the machine that registers on its
// control socket (TAS_SOCKET), each in its own shared memory.
//
//	tas --ip-addr=10.0.0.1/24 --nic=afxdp:eth0
//
// SIGINT and SIGTERM close the applications' connections, remove the
// control socket and the shared memory, detach the XDP program and exit 0.
package main

import (
	"io"
	"os"

	"gotas/internal/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int { return daemon.Run(args, stdout, stderr) }
