package flowgen

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Series is one algorithm's slowdowns for the plot.
type Series struct {
	Name    string
	Buckets []BucketStats
}

// Plot geometry (pixels).
const (
	plotW, plotH = 640, 400
	marginL      = 60
	marginB      = 40
	marginT      = 20
	marginR      = 150
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"}

// WriteSVG plots p50 (dashed) and p99 (solid) slowdown against the flow
// size bucket, one colour per algorithm, on a log scale.
func WriteSVG(w io.Writer, runs []Series) error {
	top := 2.0
	for _, r := range runs {
		for _, b := range r.Buckets {
			top = max(top, b.P99)
		}
	}
	logTop := math.Ceil(math.Log10(top)*2) / 2
	x := func(i int) float64 {
		return marginL + (float64(i)+0.5)*float64(plotW-marginL-marginR)/float64(len(Buckets))
	}
	y := func(v float64) float64 {
		return marginT + (1-math.Log10(max(v, 1))/logTop)*float64(plotH-marginT-marginB)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	axes(&b, x, y, logTop)
	for k, r := range runs {
		c := palette[k%len(palette)]
		for _, q := range []struct {
			dash string
			v    func(BucketStats) float64
		}{{"6,4", func(s BucketStats) float64 { return s.P50 }}, {"", func(s BucketStats) float64 { return s.P99 }}} {
			var pts []string
			for _, s := range r.Buckets {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(bucketIndex(s.MaxSize)), y(q.v(s))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n",
				c, q.dash, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", plotW-marginR+10, marginT+20*(k+1), c, r.Name)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">dashed p50, solid p99</text>`+"\n", plotW-marginR+10, marginT+20*(len(runs)+2))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// axes draws the frame, the bucket labels and the decades.
func axes(b *strings.Builder, x func(int) float64, y func(float64) float64, logTop float64) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n",
		marginL, marginT, plotW-marginL-marginR, plotH-marginT-marginB)
	labels := []string{"<=10KB", "<=100KB", "<=1MB", ">1MB"}
	for i, l := range labels {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), plotH-marginB+18, l)
	}
	for d := 0.0; d <= logTop; d += 0.5 {
		v := math.Pow(10, d)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n", marginL-6, y(v)+4, v)
	}
	fmt.Fprintf(b, `<text x="12" y="%d" transform="rotate(-90 12 %d)">FCT slowdown</text>`+"\n", plotH/2, plotH/2)
}

func bucketIndex(maxSize int64) int {
	for i, m := range Buckets {
		if m == maxSize {
			return i
		}
	}
	return len(Buckets) - 1
}
