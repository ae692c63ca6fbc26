package benchmatrix

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

func progressLine(c *Cell) string {
	switch {
	case c.Skipped != "":
		return fmt.Sprintf("matrix: %s %s: skipped (%s)", c.Pair, c.Workload, c.Skipped)
	case c.Err != "":
		return fmt.Sprintf("matrix: %s %s: FAILED: %s", c.Pair, c.Workload, c.Err)
	}
	return fmt.Sprintf("matrix: %s %s: %s", c.Pair, c.Workload, formatThroughput(c))
}

func formatThroughput(c *Cell) string {
	if c.Unit == "Gbit/s" {
		return fmt.Sprintf("%.2f Gbit/s", c.Throughput)
	}
	return fmt.Sprintf("%.1fk req/s", c.Throughput/1e3)
}

// pairLabel is a pairing as the table prints it.
func pairLabel(name string) string { return strings.Replace(name, "-", " -> ", 1) }

// WriteTable prints the report as an aligned table, one row per cell.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "tasbench matrix: %.1fs per cell; load average %.2f before, %.2f after\n",
		r.DurationSec, r.LoadBefore, r.LoadAfter)
	fmt.Fprintln(w, "client -> server; ratio = throughput / linux -> linux (plain veth) in this run;")
	fmt.Fprintln(w, "csw = voluntary+involuntary context switches of that process; per req, or per MiB for bulk")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tpair\tthroughput\tratio\tp50 µs\tp99 µs\tp99.9 µs\tclient csw\tserver csw\tserver CPU µs\tper\t")
	var notes []string
	for _, c := range sortedCells(r.Cells) {
		if c.Skipped != "" || c.Err != "" {
			word, why := "skipped", c.Skipped
			if c.Err != "" {
				word, why = "FAILED", firstLine(c.Err)
			}
			k := slices.Index(notes, why)
			if k < 0 {
				k = len(notes)
				notes = append(notes, why)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s [%d]\t\t\t\t\t\t\t\t\t\n", c.Workload, pairLabel(c.Pair), word, k+1)
			continue
		}
		lat := "-\t-\t-"
		if c.Unit != "Gbit/s" {
			lat = fmt.Sprintf("%.0f\t%.0f\t%.0f", c.P50Us, c.P99Us, c.P999Us)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.1f\t%s\t\n", c.Workload, pairLabel(c.Pair),
			formatThroughput(&c), ratioText(c.Ratio), lat, c.ClientCswPer, c.ServerCswPer, c.ServerCPUUsPer, c.Per)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, n := range notes {
		fmt.Fprintf(w, "[%d] %s\n", i+1, n)
	}
	return nil
}

func ratioText(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// sortedCells orders cells by workload, then pairing, both in the order
// of Workloads and Pairs, so each workload's rows sit together.
func sortedCells(cells []Cell) []Cell {
	out := slices.Clone(cells)
	wi := func(n string) int { return slices.IndexFunc(Workloads, func(w Workload) bool { return w.Name == n }) }
	all := allPairs()
	pi := func(n string) int { return slices.IndexFunc(all, func(p Pair) bool { return p.Name() == n }) }
	slices.SortStableFunc(out, func(a, b Cell) int {
		if d := wi(a.Workload) - wi(b.Workload); d != 0 {
			return d
		}
		return pi(a.Pair) - pi(b.Pair)
	})
	return out
}

// SVG chart geometry, in user units.
const (
	svgBarW    = 14
	svgGap     = 18 // between workload groups
	svgPlotH   = 240
	svgLeft    = 48
	svgTop     = 40
	svgBottom  = 70
	svgLegendW = 175
)

// pairColors are the bars' colours, one per pairing in allPairs order.
var pairColors = []string{"#888888", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728"}

// WriteSVG draws each workload's ratios to Linux <-> Linux as grouped
// bars, one per pairing, with a line at 1.0.
func WriteSVG(w io.Writer, r *Report) error {
	cells := sortedCells(r.Cells)
	var pairs []Pair // those in the report, in allPairs order
	for _, p := range allPairs() {
		if slices.ContainsFunc(cells, func(c Cell) bool { return c.Pair == p.Name() }) {
			pairs = append(pairs, p)
		}
	}
	var workloads []string
	top := 1.0
	for _, c := range cells {
		if !slices.Contains(workloads, c.Workload) {
			workloads = append(workloads, c.Workload)
		}
		top = max(top, c.Ratio)
	}
	top *= 1.1
	groupW := len(pairs)*svgBarW + svgGap
	width := max(svgLeft+len(workloads)*groupW+20, svgLeft+len(pairs)*svgLegendW)
	height := svgTop + svgPlotH + svgBottom
	y := func(v float64) float64 { return svgTop + svgPlotH*(1-v/top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13">tasbench matrix: throughput / Linux &lt;-&gt; Linux, %.1fs per cell</text>`+"\n", svgLeft, r.DurationSec)
	for _, t := range []float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5} {
		if t <= top {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.1fx</text><line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n",
				svgLeft-4, y(t)+4, t, svgLeft, width-10, y(t), y(t))
		}
	}
	for gi, wl := range workloads {
		x0 := svgLeft + gi*groupW + svgGap/2
		for pi, p := range pairs {
			i := slices.IndexFunc(cells, func(c Cell) bool { return c.Workload == wl && c.Pair == p.Name() })
			if i < 0 || cells[i].Ratio == 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %s (%.2fx)</title></rect>`+"\n",
				x0+pi*svgBarW, y(cells[i].Ratio), svgBarW-2, svgTop+svgPlotH-y(cells[i].Ratio), pairColors[pi],
				html.EscapeString(wl), html.EscapeString(pairLabel(p.Name())), formatThroughput(&cells[i]), cells[i].Ratio)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+len(pairs)*svgBarW/2, svgTop+svgPlotH+16, html.EscapeString(wl))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="4 3"/>`+"\n", svgLeft, width-10, y(1), y(1))
	for pi, p := range pairs {
		lx := svgLeft + pi*svgLegendW
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, height-30, pairColors[pi], lx+14, height-21, html.EscapeString(pairLabel(p.Name())))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
