// Package daemon is the tas service's command: flags, the stack, the
// control socket, the metrics socket, signals. cmd/tas runs it; tasctl
// demo runs it as a process of its own too.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"gotas"
	"gotas/internal/ctlsock"
	"gotas/internal/nic/nicopen"
	"gotas/internal/stats"
)

// Run runs tas with args until SIGINT or SIGTERM and returns its exit
// status: 0 after a clean stop, 2 for a usage error, 1 otherwise.
func Run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tas: %v\nRun 'tas --help' for the flags.\n", trimUsage(err))
		return 2
	}
	st, err := gotas.New(o.stack) // embedded: --nic is set

	if err != nil {
		fmt.Fprintf(stderr, "tas: %v\n", err)
		if errors.Is(err, nicopen.ErrConfig) {
			return 2
		}
		return 1
	}
	srv, err := ctlsock.Listen(o.socket, st.Engine(), o.serve)
	if err != nil {
		st.Close()
		fmt.Fprintf(stderr, "tas: control socket: %v\n", err)
		return 1
	}
	var metrics *stats.HTTPServer
	if o.metricsAddr != "" {
		if metrics, err = stats.Serve(o.metricsAddr, stats.Source{Stack: st.Engine(), Server: srv}); err != nil {
			srv.Close()
			st.Close()
			fmt.Fprintf(stderr, "tas: --metrics-addr: %v\n", err)
			return 1
		}
	}
	info := st.Engine().NICInfo()
	fmt.Fprintf(stdout, "tas ready: %s on %s:%s (%s mode, mac %s), applications register at %s\n", st.Addr(),
		info.Kind, info.Name, orDash(info.Mode), macString(info.MAC), srv.Path())
	signalReady(o.readyFD)
	code := wait(o, st, stdout)
	if metrics != nil {
		metrics.Close()
	}
	srv.Close()
	if !o.quiet {
		printStats(stdout, st)
	}
	if err := st.Close(); err != nil {
		fmt.Fprintf(stderr, "tas: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "tas stopped")
	return code
}

// wait runs until a signal or a failed loop.
func wait(o options, st *gotas.Stack, stdout io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var tick <-chan time.Time
	if o.statsInterval > 0 && !o.quiet {
		t := time.NewTicker(o.statsInterval)
		defer t.Stop()
		tick = t.C
	}
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-tick:
			printStats(stdout, st)
		case <-check.C:
			if err := st.Engine().Err(); err != nil {
				fmt.Fprintf(stdout, "tas: %v\n", err)
				return 1
			}
		case <-ctx.Done():
			return 0
		}
	}
}

// signalReady tells whoever started us: an eventfd gets a count of 1 (as
// TAS does), anything else the line "ready".
func signalReady(fd int) {
	if fd < 0 {
		return
	}
	link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if link == "anon_inode:[eventfd]" {
		var one = [8]byte{1}
		syscall.Write(fd, one[:])
		return
	}
	syscall.Write(fd, []byte("ready\n"))
}

func printStats(w io.Writer, st *gotas.Stack) {
	e := st.Engine()
	n, h, sl := e.NICStats(), e.Stats().Host, e.Stats()
	fmt.Fprintf(w, "stats: rx %d frames %d bytes (dropped %d), tx %d frames %d bytes (dropped %d); "+
		"established %d, resets sent %d; arp replies %d, echo replies %d; apps freed %d\n",
		n.RxFrames, n.RxBytes, n.RxDropped, n.TxFrames, n.TxBytes, n.TxDropped,
		sl.Established, sl.RstsSent, h.ARPReplies, h.EchoReplies, sl.AppsFreed)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
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
