package benchmatrix

import (
	"errors"
	"testing"
)

func TestParseSelection(t *testing.T) {
	p, err := ParsePairs("gotas-gotas, linux-linux,linux-linux+xdp-generic")
	if err != nil || len(p) != 3 || p[0] != (Pair{Client: Gotas, Server: Gotas}) || p[1] != (Pair{Client: Linux, Server: Linux}) ||
		p[2].Attach != "generic" {
		t.Fatalf("ParsePairs = %v, %v", p, err)
	}
	w, err := ParseWorkloads("bulk-down,rpc-64")
	if err != nil || len(w) != 2 || !w[0].Reverse || w[1].Conns != 64 {
		t.Fatalf("ParseWorkloads = %v, %v", w, err)
	}
	for _, bad := range []string{"", "linux", "gotas-dpdk"} {
		if _, err := ParsePairs(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("ParsePairs(%q): %v", bad, err)
		}
	}
	if _, err := ParseWorkloads("rpc-2"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParseWorkloads(rpc-2): %v", err)
	}
}

// Ratios divide by the Linux <-> Linux cell of the same workload; a cell
// without a reference, or one that failed, gets none.
func TestFillRatios(t *testing.T) {
	cells := []Cell{
		{Pair: "linux-linux", Workload: "rpc-1", Throughput: 20, Units: 1},
		{Pair: "gotas-gotas", Workload: "rpc-1", Throughput: 30, Units: 1},
		{Pair: "gotas-gotas", Workload: "rpc-64", Throughput: 30, Units: 1},
		{Pair: "linux-gotas", Workload: "rpc-1", Throughput: 30, Units: 1, Err: "broke"},
	}
	fillRatios(cells)
	for i, want := range []float64{1, 1.5, 0, 0} {
		if cells[i].Ratio != want {
			t.Errorf("cell %d (%s %s) ratio %v, want %v", i, cells[i].Pair, cells[i].Workload, cells[i].Ratio, want)
		}
	}
}
