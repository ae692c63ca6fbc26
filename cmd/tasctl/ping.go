package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"text/tabwriter"
	"time"

	"gotas"
	"gotas/internal/testnet"
)

const (
	demoServiceAddr = "10.203.0.1" // gotas
	demoLinuxAddr   = "10.203.0.3" // the kernel, on the same interface
	demoPeerAddr    = "10.203.0.2" // the Linux client
	// The tas service runs on a second veth, since XDP attaches one
	// program per interface and the embedded stack has the first.
	demoTasAddr     = "10.203.1.1"
	demoPeerTasAddr = "10.203.1.2"
)

// pingDemo runs the service over each back-end in a fresh pair of
// namespaces and pings it and the Linux stack on the same link from a Linux
// peer.
func pingDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	pings := fs.Int("pings", 50, "echo requests per target")
	interval := fs.Duration("interval", 10*time.Millisecond, "time between echo requests (ping needs >= 2ms as root)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *pings < 1 || *pings > 100000 {
		return fmt.Errorf("%w: --pings=%d: want 1 to 100000", errUsage, *pings)
	}
	if *interval < 2*time.Millisecond {
		return fmt.Errorf("%w: --interval=%v: want at least 2ms", errUsage, *interval)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		return fmt.Errorf("ping is not installed (apt-get install iputils-ping, or run scripts/setup.sh)")
	}
	lab, err := testnet.New("ping")
	if err != nil {
		return err
	}
	defer lab.Close()

	fmt.Fprintf(stdout, "gotas ping: namespaces %s-{svc,peer}, veth s0 <-> p0\n", lab.Prefix())
	fmt.Fprintf(stdout, "gotas serves %s on s0; Linux owns %s on the same interface; the peer is %s\n\n",
		demoServiceAddr, demoLinuxAddr, demoPeerAddr)
	svcHost, err := lab.Host("svc")
	if err != nil {
		return err
	}
	peer, err := lab.Host("peer")
	if err != nil {
		return err
	}
	if err := lab.Link(svcHost, "s0", peer, "p0"); err != nil {
		return err
	}
	if err := svcHost.Addr("s0", demoLinuxAddr+"/24"); err != nil {
		return err
	}
	if err := peer.Addr("p0", demoPeerAddr+"/24"); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tback-end\treceived\tmin µs\tavg µs\tmax µs\t")
	for _, kind := range []string{"afxdp", "afpacket", "tap"} {
		pinger, target := peer, demoServiceAddr
		spec := kind + ":s0"
		if kind == "tap" {
			// The kernel side of a TAP lives in the service's namespace,
			// so Linux there plays the peer.
			spec = "tap:gdemo0"
			pinger = svcHost
		}
		var svc *gotas.Stack
		err := svcHost.Do(func() (err error) {
			svc, err = gotas.New(gotas.Config{Addr: netip.MustParsePrefix(demoServiceAddr + "/24"), NIC: spec,
				XDPMode: "auto"})
			return err
		})
		if err != nil {
			return fmt.Errorf("starting gotas on %s: %w", spec, err)
		}
		if kind == "tap" {
			if err := svcHost.Addr("gdemo0", "10.204.0.2/24"); err != nil {
				svc.Close()
				return err
			}
			if _, err := svcHost.IP("route", "replace", demoServiceAddr+"/32", "dev", "gdemo0"); err != nil {
				svc.Close()
				return err
			}
		}
		res, perr := pingStats(ctx, pinger, target, *pings, *interval)
		info := svc.Engine().NICInfo()
		if err := svc.Close(); err != nil {
			return err
		}
		if perr != nil {
			return fmt.Errorf("ping over %s: %w", spec, perr)
		}
		mode := kind
		if info.Mode != "" {
			mode += " (" + info.Mode + ")"
		}
		fmt.Fprintf(tw, "gotas %s\t%s\t%d/%d\t%.0f\t%.0f\t%.0f\t\n", target, mode, res.received, *pings, res.min, res.avg, res.max)
	}
	res, err := pingStats(ctx, peer, demoLinuxAddr, *pings, *interval)
	if err != nil {
		return fmt.Errorf("ping Linux: %w", err)
	}
	fmt.Fprintf(tw, "Linux %s\tkernel\t%d/%d\t%.0f\t%.0f\t%.0f\t\n", demoLinuxAddr, res.received, *pings, res.min, res.avg, res.max)
	tw.Flush()
	fmt.Fprintf(stdout, "\nICMP echo round trips from a Linux ping; gotas answers from its fast-path core.\n")
	fmt.Fprintf(stdout, "removed %s-*\n", lab.Prefix())
	return nil
}

type pingResult struct {
	received      int
	min, avg, max float64 // microseconds
}

var (
	receivedRE = regexp.MustCompile(`(\d+) received`)
	rttRE      = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/`)
)

func pingStats(ctx context.Context, h *testnet.Host, addr string, count int, interval time.Duration) (pingResult, error) {
	out, err := h.Run(ctx, "ping", "-q", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "2", addr)
	var r pingResult
	if m := receivedRE.FindStringSubmatch(out); m != nil {
		r.received, _ = strconv.Atoi(m[1])
	}
	if m := rttRE.FindStringSubmatch(out); m != nil {
		ms := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v * 1000 }
		r.min, r.avg, r.max = ms(m[1]), ms(m[2]), ms(m[3])
	}
	if r.received == 0 {
		return r, fmt.Errorf("no replies from %s: %v", addr, err)
	}
	return r, nil
}
