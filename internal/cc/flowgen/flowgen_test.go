package flowgen

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shared tables parse on both scales, and their trapezoid means match
// the ones SOURCES.md lists.
func TestSharedWorkloads(t *testing.T) {
	want := map[string]float64{"WebSearch_distribution.txt": 1_711_250, "FbHdp_distribution.txt": 120_421,
		"AliStorage2019.txt": 40_870, "GoogleRPC2008.txt": 2_892, "VL2_CDF.txt": 12_658_199, "FB_CDF.txt": 342,
		"ns3-datacenter_websearch.txt": 1_711_222}
	for name, mean := range want {
		p := filepath.Join("/work/shared/workloads", name)
		f, err := os.Open(p)
		if err != nil {
			t.Skipf("workloads not here: %v", err)
		}
		c, err := ParseCDF(f, name)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m := c.Mean(); math.Abs(m-mean) > 1 {
			t.Errorf("%s: mean %.0f, want %.0f", name, m, mean)
		}
	}
	w, err := Builtin("websearch")
	if err != nil || math.Abs(w.Mean()-1_711_250) > 1 {
		t.Fatalf("built-in websearch: %v, mean %v", err, w.Mean())
	}
}

func TestParseCDFRejects(t *testing.T) {
	for _, c := range []struct{ in, line string }{
		{"0 0\n10 0.5\n5 1\n", "x:3:"},          // size decreases
		{"0 0\n10 0.6\n20 0.5\n30 1\n", "x:3:"}, // probability decreases
		{"0 0\n10 50\n", "x:2:"},                // ends at 50: neither scale
		{"0 0\nten 1\n", "x:2:"},                // not a number
		{"0 0 0\n10 1\n", "x:1:"},               // three fields
		{"0 0\n10 -1\n", "x:2:"},                // negative
		{"0 0\n10 1e400\n", "x:2:"},             // out of range
		{"10 1\n", "x:"},                        // one point
	} {
		_, err := ParseCDF(strings.NewReader(c.in), "x")
		if !errors.Is(err, ErrCDF) || !strings.HasPrefix(err.Error(), c.line) {
			t.Errorf("%q: %v, want ErrCDF at %s", c.in, err, c.line)
		}
	}
	// Percent and fraction scales give the same distribution; a flat
	// stretch (non-decreasing) is fine.
	a, err1 := ParseCDF(strings.NewReader("0 0\n2000 0\n10000 50\n20000 100\n"), "pct")
	b, err2 := ParseCDF(strings.NewReader("0 0\n2000 0.0\n10000 0.5\n\n20000 1\n"), "frac")
	if err1 != nil || err2 != nil || a.Quantile(0.75) != b.Quantile(0.75) || a.Quantile(0.75) != 15_000 {
		t.Fatalf("%v %v: quantiles %d %d, want 15000 (halfway from 10000 to 20000)", err1, err2, a.Quantile(0.75), b.Quantile(0.75))
	}
	if q := a.Quantile(0.25); q != 6_000 {
		t.Fatalf("Quantile(0.25) = %d, want 6000 (halfway from 2000 to 10000)", q)
	}
}

// 10^4 flows at 60% of 1 Gbit/s: the offered load is within 5% of the
// target, and the sizes follow the CDF (mean within 10%: web search is
// heavy-tailed).
func TestGenerateLoad(t *testing.T) {
	c, _ := Builtin("websearch")
	fl := Generate(c, 0.6, 1e9, 10_000, 4, 7)
	var bytes float64
	senders := map[int]bool{}
	for i, f := range fl {
		bytes += float64(f.Size)
		senders[f.Sender] = true
		if i > 0 && f.Start < fl[i-1].Start {
			t.Fatal("arrivals out of order")
		}
	}
	load := bytes * 8 / Goodput / fl[len(fl)-1].Start.Seconds() / 1e9
	if math.Abs(load-0.6) > 0.03 || len(senders) != 4 {
		t.Fatalf("offered load %.3f (want 0.6 ± 5%%), %d senders", load, len(senders))
	}
	if m := bytes / float64(len(fl)); math.Abs(m-c.Mean())/c.Mean() > 0.1 {
		t.Fatalf("mean size %.0f, want %.0f ± 10%%", m, c.Mean())
	}
}

func TestSlowdownBuckets(t *testing.T) {
	b := ByBucket([]int64{5_000, 50_000, 60_000, 2_000_000}, []float64{1, 3, 2, 5})
	if len(b) != 3 || b[0].Flows != 1 || b[1].Flows != 2 || b[1].P50 != 2 || b[1].P99 != 3 || b[2].MaxSize != Buckets[3] {
		t.Fatalf("buckets %+v", b)
	}
}

func TestWriteSVG(t *testing.T) {
	var b strings.Builder
	runs := []Series{{"powertcp", []BucketStats{{MaxSize: 10_000, P50: 1.5, P99: 4}, {MaxSize: Buckets[3], P50: 2, P99: 30}}},
		{"timely", []BucketStats{{MaxSize: 10_000, P50: 3, P99: 40}}}}
	if err := WriteSVG(&b, runs); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	// Two lines (p50, p99) per algorithm, each named in the legend.
	if strings.Count(s, "<polyline") != 4 || !strings.Contains(s, ">powertcp<") || !strings.Contains(s, ">timely<") ||
		!strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") {
		t.Fatalf("svg:\n%s", s)
	}
}
