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
	if err := fs.Parse([]string{"--cc=powertcp", "--cc-beta=3000", "--cc-base-rtt=20us", "--cc-gamma=0.5"}); err != nil {
		t.Fatal(err)
	}
	name, p, err := get()
	if err != nil || name != "powertcp" || p.Beta != 3000 || p.BaseRTT != 20*time.Microsecond || p.Gamma != 0.5 {
		t.Fatalf("got %q %+v %v", name, p, err)
	}
	fl := flag.NewFlagSet("x", flag.ContinueOnError)
	list := FlagsList(fl)
	if err := fl.Parse([]string{"--cc=timely,powertcp"}); err != nil {
		t.Fatal(err)
	}
	if names, _, err := list(); err != nil || len(names) != 2 || names[1] != "powertcp" {
		t.Fatalf("list: %v %v", names, err)
	}
	for _, args := range [][]string{{"--cc=cubic"}, {"--cc=powertcp", "--cc-gamma=2"}, {"--cc-base-rtt=-1s"},
		{"--cc=reno,timely"}, {"--cc=reno,"}} {
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
