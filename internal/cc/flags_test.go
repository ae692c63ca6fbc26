package cc

import (
	"errors"
	"flag"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	get := Flags(fs)
	if err := fs.Parse([]string{"--cc=powertcp", "--cc-powertcp-beta=3000", "--cc-powertcp-base-rtt=20us", "--cc-powertcp-gamma=0.5"}); err != nil {
		t.Fatal(err)
	}
	name, p, err := get()
	if err != nil || name != "powertcp" || p.Beta != 3000 || p.BaseRTT != 20*time.Microsecond || p.Gamma != 0.5 {
		t.Fatalf("got %q %+v %v", name, p, err)
	}
	// Without --tcp-link-bw the line rate stays unset, for the stack to
	// default to TAS's and the simulator to its hosts' rate: a fixed
	// 10 Gbit/s made simulated PowerTCP over 1 Gbit/s hosts overfill
	// the bottleneck (a 4 MB queue in the web-search run).
	if p.LinkBps != 0 {
		t.Errorf("LinkBps %d without --tcp-link-bw, want 0 (each user's default)", p.LinkBps)
	}
	fl := flag.NewFlagSet("x", flag.ContinueOnError)
	list := FlagsList(fl)
	if err := fl.Parse([]string{"--cc=timely,powertcp"}); err != nil {
		t.Fatal(err)
	}
	if names, _, err := list(); err != nil || len(names) != 2 || names[1] != "powertcp" {
		t.Fatalf("list: %v %v", names, err)
	}
	// TAS's names and units: kbit/s, µs.
	fd := flag.NewFlagSet("x", flag.ContinueOnError)
	getD := Flags(fd)
	if err := fd.Parse([]string{"--cc=dctcp-rate", "--cc-dctcp-init=20000", "--cc-dctcp-step=5000", "--cc-dctcp-minpkts=10",
		"--cc-control-interval=3", "--tcp-link-bw=25", "--cc-dctcp-weight=0.0625"}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := getD(); err != nil || p.InitBps != 20e6 || p.StepBps != 5e6 || p.MinAcks != 10 || p.Interval != 3 || p.LinkBps != 25e9 {
		t.Fatalf("dctcp flags: %+v %v", p, err)
	}
	ft := flag.NewFlagSet("x", flag.ContinueOnError)
	getT := Flags(ft)
	if err := ft.Parse([]string{"--cc=timely", "--cc-timely-init=30000", "--cc-timely-tlow=40", "--cc-timely-thigh=200"}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := getT(); err != nil || p.InitBps != 30e6 || p.TLow != 40*time.Microsecond || p.THigh != 200*time.Microsecond {
		t.Fatalf("timely flags: %+v %v", p, err)
	}
	for _, args := range [][]string{{"--cc=cubic"}, {"--cc=powertcp", "--cc-powertcp-gamma=2"}, {"--cc-powertcp-base-rtt=-1s"},
		{"--cc=reno,timely"}, {"--cc=reno,"}, {"--cc-dctcp-weight=0.5"}, {"--cc-timely-tlow=200"}, {"--tcp-link-bw=0"},
		{"--cc-timely-beta=0.5"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		get := Flags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(); !errors.Is(err, ErrUnknown) && !errors.Is(err, ErrParams) {
			t.Fatalf("%v: %v, want ErrUnknown or ErrParams", args, err)
		}
	}
}
