// Command tas runs the gotas service on one network interface.
//
//	tas --ip-addr=10.0.0.1/24 --nic=afxdp:eth0
//
// It answers ARP and ICMP echo for its address; TCP comes next. SIGINT and
// SIGTERM stop it cleanly, detaching the XDP program.
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
	"time"

	"gotas/internal/service"
	"gotas/internal/wire"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := service.ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tas: %v\nRun 'tas --help' for the flags.\n", trimUsage(err))
		return 2
	}
	svc, err := service.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tas: %v\n", trimUsage(err))
		if errors.Is(err, service.ErrUsage) {
			return 2
		}
		return 1
	}
	info := svc.Info()
	mode := ""
	if info.Mode != "" {
		mode = info.Mode + " mode, "
	}
	fmt.Fprintf(stdout, "tas ready: %s on %s:%s (%smac %s, %d core(s))\n", cfg.Addr, info.Kind, info.Name,
		mode, wire.MAC(info.MAC), svc.Cores())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var tick <-chan time.Time
	if cfg.StatsInterval > 0 {
		t := time.NewTicker(cfg.StatsInterval)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-tick:
			printStats(stdout, svc.Stats())
		case <-ctx.Done():
			break wait
		case <-svc.Failed():
			break wait
		}
	}
	err = svc.Stop()
	printStats(stdout, svc.Stats())
	if err != nil {
		fmt.Fprintf(stderr, "tas: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "tas stopped")
	return 0
}

func printStats(w io.Writer, s service.Stats) {
	fmt.Fprintf(w, "stats: rx %d frames %d bytes (dropped %d), tx %d frames %d bytes (dropped %d); arp replies %d, echo replies %d, not for us %d, malformed %d, unhandled %d\n",
		s.NIC.RxFrames, s.NIC.RxBytes, s.NIC.RxDropped, s.NIC.TxFrames, s.NIC.TxBytes, s.NIC.TxDropped+s.Core.TxRetryDropped,
		s.Host.ARPReplies, s.Host.EchoReplies, s.Host.NotForUs, s.Host.Malformed, s.Host.Unhandled)
}

// trimUsage drops the "usage: " prefix the sentinel adds; the message
// itself says what is wrong.
func trimUsage(err error) string {
	msg := err.Error()
	const p = "usage: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
