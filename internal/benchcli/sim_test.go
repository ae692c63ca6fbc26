package benchcli

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSimCommand(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"sim", "--cc=theta-powertcp", "--flows=2", "--duration=40ms", "--warmup=20ms", "--json"}
	if rc := Run(args, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	var rep simReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// Two long flows on a 1 Gbit/s bottleneck fill it and share it.
	if rep.Flows != 2 || len(rep.RatesMbps) != 2 || rep.Utilization < 0.9 || rep.Jain < 0.9 {
		t.Fatalf("report %+v", rep)
	}
	for _, bad := range [][]string{{"sim", "--cc=cubic"}, {"sim", "--flows=0"}, {"sim", "--warmup=1s"}} {
		out.Reset()
		errb.Reset()
		if rc := Run(bad, &out, &errb); rc != 2 {
			t.Fatalf("%v: exit %d, want 2 (%s)", bad, rc, errb.String())
		}
	}
}
