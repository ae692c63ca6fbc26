package sim

import (
	"os"
	"testing"
	"time"
)

func TestExplore2(t *testing.T) {
	if os.Getenv("SIM_EXPLORE") == "" {
		t.Skip("set SIM_EXPLORE")
	}
	type sc struct {
		name string
		n    int
		bps  uint64
		dur  time.Duration
	}
	for _, s := range []sc{{"theta-powertcp", 4, 1e9, 100 * time.Millisecond}, {"theta-powertcp", 8, 1e9, 100 * time.Millisecond},
		{"dctcp-rate", 4, 10e9, 60 * time.Millisecond}, {"dctcp-win", 4, 10e9, 60 * time.Millisecond}} {
		cfg := baseCfg(s.name, s.n)
		cfg.HostBps = s.bps
		cfg.Duration = s.dur
		cfg.CCParams.BaseRTT = 45 * time.Microsecond
		cfg.CCParams.Beta = 3000
		if s.bps > 1e9 {
			cfg.K = 65 * 1514
		}
		for i := range s.n {
			cfg.Flows = append(cfg.Flows, Flow{Sender: i})
		}
		r, err := Run(cfg, s.dur/2)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v: %v cpu %v", s, r, r.CPU)
	}
}
