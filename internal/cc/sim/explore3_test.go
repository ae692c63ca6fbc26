package sim

import (
	"os"
	"testing"
	"time"
)

func TestExplore3(t *testing.T) {
	if os.Getenv("SIM_EXPLORE") == "" {
		t.Skip("set SIM_EXPLORE")
	}
	d := 250 * time.Microsecond
	for _, beta := range []uint64{3000, 0} {
		cfg := baseCfg("theta-powertcp", 4)
		cfg.Delay = d
		cfg.Duration = 200 * time.Millisecond
		cfg.CCParams.BaseRTT = 4*d + 25*time.Microsecond
		cfg.CCParams.Beta = beta
		for i := range 4 {
			cfg.Flows = append(cfg.Flows, Flow{Sender: i})
		}
		r, err := Run(cfg, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("beta=%d: %v cpu %v q %v", beta, r, r.CPU, r.Queue[len(r.Queue)-30:])
	}
}
