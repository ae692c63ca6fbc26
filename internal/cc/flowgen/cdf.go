// Package flowgen generates flow workloads for congestion-control
// experiments: flow sizes drawn from an empirical CDF, Poisson arrivals
// at a target load, and flow-completion-time slowdown by size bucket, the
// measure the PowerTCP and HPCC papers report.
package flowgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ErrCDF is returned for a CDF file that is not one.
var ErrCDF = errors.New("flowgen: bad CDF")

// CDF is a flow-size distribution: sizes (bytes) with cumulative
// probabilities in [0, 1], both non-decreasing, the last probability 1.
type CDF struct {
	Size []float64
	P    []float64
}

// ParseCDF reads one "size probability" pair a line (blank lines are
// skipped). Probabilities may be fractions (ending at 1) or percentages
// (ending at 100); sizes and probabilities must not decrease. Any other
// content is an error naming the line.
func ParseCDF(r io.Reader, name string) (*CDF, error) {
	c := &CDF{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		size, p, err := parsePair(f)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v: %w", name, line, err, ErrCDF)
		}
		if n := len(c.Size); n > 0 && (size < c.Size[n-1] || p < c.P[n-1]) {
			return nil, fmt.Errorf("%s:%d: %q decreases: %w", name, line, sc.Text(), ErrCDF)
		}
		c.Size, c.P = append(c.Size, size), append(c.P, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, c.normalize(name, line)
}

func parsePair(f []string) (size, p float64, err error) {
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("want \"size probability\", got %d fields", len(f))
	}
	size, err1 := strconv.ParseFloat(f[0], 64)
	p, err2 := strconv.ParseFloat(f[1], 64)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("not numbers: %q %q", f[0], f[1])
	case math.IsInf(size, 0) || size < 0 || p < 0 || p > 100 || math.IsNaN(p):
		return 0, 0, fmt.Errorf("size %v or probability %v out of range", size, p)
	}
	return size, p, nil
}

// normalize checks the end point and scales percentages to fractions.
func (c *CDF) normalize(name string, line int) error {
	n := len(c.P)
	if n < 2 {
		return fmt.Errorf("%s: %d points, want at least 2: %w", name, n, ErrCDF)
	}
	var scale float64
	switch c.P[n-1] {
	case 1:
		scale = 1
	case 100:
		scale = 100
	default:
		return fmt.Errorf("%s:%d: last probability %v, want 1 (fraction) or 100 (percent): %w", name, line, c.P[n-1], ErrCDF)
	}
	for i := range c.P {
		c.P[i] /= scale
	}
	if c.Size[n-1] < 1 {
		return fmt.Errorf("%s:%d: largest size %v, want at least 1 byte: %w", name, line, c.Size[n-1], ErrCDF)
	}
	return nil
}

// Quantile is the size at cumulative probability u in [0, 1], by linear
// interpolation between the points; at least 1 byte.
func (c *CDF) Quantile(u float64) int64 {
	i := sort.SearchFloat64s(c.P, u)
	switch {
	case i == 0:
		return max(int64(c.Size[0]), 1)
	case i >= len(c.P):
		return max(int64(c.Size[len(c.Size)-1]), 1)
	}
	x0, x1, p0, p1 := c.Size[i-1], c.Size[i], c.P[i-1], c.P[i]
	x := x1
	if p1 > p0 {
		x = x0 + (x1-x0)*(u-p0)/(p1-p0)
	}
	return max(int64(x), 1)
}

// Mean is the mean size by the trapezoid rule, as the HPCC generator.
func (c *CDF) Mean() float64 {
	var m float64
	for i := 1; i < len(c.P); i++ {
		m += (c.Size[i] + c.Size[i-1]) / 2 * (c.P[i] - c.P[i-1])
	}
	return m
}

// webSearch is the web-search workload of the DCTCP paper (Alizadeh et
// al., SIGCOMM 2010) as published in alibaba-edu/High-Precision-
// Congestion-Control traffic_gen/WebSearch_distribution.txt (percent).
const webSearch = `0 0
10000 15
20000 20
30000 30
50000 40
80000 53
200000 60
1000000 70
2000000 80
5000000 90
10000000 97
30000000 100
`

// Builtin returns a built-in distribution by name ("websearch").
func Builtin(name string) (*CDF, error) {
	if name != "websearch" {
		return nil, fmt.Errorf("--dist=%q: have websearch: %w", name, ErrCDF)
	}
	return ParseCDF(strings.NewReader(webSearch), "websearch")
}
