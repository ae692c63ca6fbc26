package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"gotas/internal/stats"
)

// statsCmd is TAS's statetool: the service's applications, flows, cores
// and drops, once, as JSON, or refreshed in place.
func statsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	addr := fs.String("metrics-addr", stats.DefaultAddr, "where tas serves its counters (its --metrics-addr)")
	asJSON := fs.Bool("json", false, "print one JSON object (apps, flows, listeners, cores, nic, slow_path)")
	watch := fs.Duration("watch", 0, "refresh in place at this interval (e.g. 1s)")
	maxFlows := fs.Int("flows", 50, "flows to list (0: all)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *watch < 0 || *maxFlows < 0 {
		return fmt.Errorf("%w: --watch and --flows must not be negative", errUsage)
	}
	for {
		r, err := stats.Fetch(*addr)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else {
			if *watch > 0 {
				fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear: refresh in place
			}
			printReport(stdout, &r, *maxFlows)
		}
		if *watch == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*watch):
		}
	}
}

func printReport(w io.Writer, r *stats.Report, maxFlows int) {
	fmt.Fprintf(w, "gotas %s at %s: %d applications, %d flows, %d listeners, %d in TIME_WAIT\n\n",
		r.Addr, r.Time.Format(time.TimeOnly), len(r.Apps), len(r.Flows), len(r.Listeners), r.TimeWait)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tPID\tUID\tFLOWS\tLISTENERS\tCONTEXTS\t")
	for _, a := range r.Apps {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d/%d\t%d\t%d\t\n", a.ID, a.Pid, a.Uid, a.Flows, a.MaxFlows, a.Listeners, a.Contexts)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "LOCAL\tREMOTE\tSTATE\tPID\tRX FILL\tTX FILL\tSRTT µs\tRATE kbit/s\tACKED\tECN\tRETX\tRTO\t")
	for i, f := range r.Flows {
		if maxFlows > 0 && i == maxFlows {
			fmt.Fprintf(tw, "... %d more\t\n", len(r.Flows)-maxFlows)
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%d/%d\t%d\t%s\t%d\t%d\t%d\t%d\t\n", f.Local, f.Remote, f.State, f.Pid,
			f.RxFill, f.RxBuf, f.TxFill, f.TxBuf, f.SRTTus, rate(f.RateKbps), f.AckedBytes, f.ECNBytes, f.Retransmits, f.RTOs)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "CORE\tRX SEG\tTX SEG\tRETX\tRTO\tOUT OF WINDOW\tBAD ACK\tCTX DETACHED\tSLEEPS\t")
	for i, c := range r.Cores {
		e := c.Engine
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", i, e.RxSegments, e.TxSegments, e.TxRetransmits, e.RTOs,
			e.RxOutOfWindow, e.RxBadAck, e.ContextsDetached, c.Loop.Sleeps)
	}
	tw.Flush()
	s := &r.Slow
	fmt.Fprintf(w, "\nnic: rx %d frames (%d dropped), tx %d frames (%d dropped)\n", r.NIC.RxFrames, r.NIC.RxDropped, r.NIC.TxFrames, r.NIC.TxDropped)
	fmt.Fprintf(w, "slow path: established %d, resets sent %d, refused %d, timed out %d, syn cookies %d sent %d ok, "+
		"apps freed %d stalled %d limited %d, registrations refused %d\n",
		s.Established, s.RstsSent, s.Refused, s.TimedOut, s.CookiesSent, s.CookiesOK, s.AppsFreed, s.AppsStalled, s.AppLimited, r.Refused)
}

func rate(kbps uint32) string {
	if kbps == 0 {
		return "-"
	}
	return fmt.Sprint(kbps)
}
