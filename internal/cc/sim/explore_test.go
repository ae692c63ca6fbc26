package sim

import (
	"os"
	"testing"
	"time"

	"gotas/internal/slowpath"
)

func baseCfg(ccName string, senders int) Config {
	return Config{Seed: 1, Senders: senders, HostBps: 1_000_000_000, Delay: 5 * time.Microsecond,
		K: 15_000, CC: ccName, Duration: 50 * time.Millisecond,
		Stack: slowpath.Config{RTOMin: 2 * time.Millisecond, MSL: 10 * time.Millisecond, SynRTO: 5 * time.Millisecond}}
}

func TestExplore(t *testing.T) {
	if os.Getenv("SIM_EXPLORE") == "" {
		t.Skip("set SIM_EXPLORE")
	}
	for _, name := range []string{"reno", "dctcp-rate", "dctcp-win", "timely", "powertcp", "theta-powertcp"} {
		for _, nf := range []int{1, 4} {
			cfg := baseCfg(name, nf)
			for i := range nf {
				cfg.Flows = append(cfg.Flows, Flow{Sender: i})
			}
			r, err := Run(cfg, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s n=%d: %v cpu %v", name, nf, r, r.CPU)
		}
	}
}
