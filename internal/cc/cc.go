// Package cc holds the congestion-control algorithms the slow path runs
// for each flow, TAS-style: every few RTTs the slow path takes the deltas
// of a flow's fast-path counters, hands them to the flow's Controller, and
// writes the rate it returns into the flow state, where the fast-path
// pacer enforces it. The algorithms are pure and deterministic: the same
// sequence of Samples gives the same sequence of rates, so tests can check
// them against hand-computed values and the simulator can replay runs.
//
// The control laws, TAS's defaults and PowerTCP's equilibrium are
// summarized in ../shared/references/cc.md; docs/CC.md describes how the
// stack uses them.
package cc

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrUnknown is returned for an algorithm name New does not know.
var ErrUnknown = errors.New("cc: unknown algorithm")

// ErrParams is returned for parameters out of range.
var ErrParams = errors.New("cc: bad parameters")

// Sample is what the slow path measured for one flow since the previous
// Update: counter deltas and the latest RTT.
type Sample struct {
	Elapsed uint64 // ns since the previous Update (or since the flow started)
	Acks    uint64 // ACKs that acknowledged new data
	Acked   uint64 // bytes newly acknowledged
	ECN     uint64 // of those, bytes acknowledged by ACKs carrying ECE
	Losses  uint64 // loss events: retransmitted segments, fast retransmits, RTOs
	RTT     uint32 // µs, a raw RTT sample taken since the previous Update (0: none)
	SRTT    uint32 // µs, the smoothed RTT (0: none yet)
	// Hops is the in-band telemetry the receiver echoed on the latest
	// ACK, one record per switch hop; nil when there is none.
	Hops []Hop
}

// Hop is one switch's in-band telemetry record (cc.md 1.5), already
// widened from its wire encoding so deltas need no wrap handling here.
type Hop struct {
	QLen    uint64 // bytes queued at the egress port after the packet left
	TxBytes uint64 // bytes the port has transmitted (cumulative)
	TS      uint64 // ns, when the packet left the port
	RateBps uint64 // the port's line rate
}

// Controller is one flow's congestion controller.
type Controller interface {
	// Update consumes one control interval's measurements and returns
	// the flow's new rate in kbit/s (TAS's unit); 0 means no rate limit,
	// which leaves the fast path's window in sole control.
	Update(s *Sample) uint32
	// Interval is how many RTTs the slow path waits between Updates.
	Interval() int
}

// Windowed is a Controller that also bounds the bytes in flight: the slow
// path caps the fast path's congestion window at Window, so the flow is
// ACK-clocked as well as paced.
type Windowed interface {
	Window() uint32 // bytes; 0 = no cap
}

// Params tunes the algorithms. Zero fields take the documented defaults.
type Params struct {
	LinkBps  uint64        // host line rate (default DefaultLinkBps)
	MSS      uint32        // payload bytes per segment (default DefaultMSS)
	InitBps  uint64        // dctcp-rate, timely: first rate (default 10 Mbit/s)
	StepBps  uint64        // dctcp-rate, timely: additive step (default 10 Mbit/s)
	ConstBps uint64        // const-rate: the rate (default LinkBps)
	BaseRTT  time.Duration // powertcp: τ (default: the smallest RTT seen)
	Beta     uint64        // powertcp: bytes of queue each flow may hold (default BDP/10)
	Gamma    float64       // powertcp: EWMA weight γ in (0, 1] (default 0.9)
	Interval int           // RTTs between updates (default: the algorithm's)
	MinAcks  int           // dctcp-rate: ACKs an update waits for (default 50)
	TLow     time.Duration // timely: T_low (default 30 µs)
	THigh    time.Duration // timely: T_high (default 150 µs)
}

// Defaults the algorithms share.
const (
	// DefaultLinkBps is TAS's tcp_link_bw (tas/config.c): 10 Gbit/s.
	DefaultLinkBps = 10_000_000_000
	// DefaultMSS is the payload of a 1500-byte frame with timestamps.
	DefaultMSS = 1448
	// DefaultInterval is TAS's cc_control_interval (tas/config.c): the
	// slow path updates a flow every 2 RTTs.
	DefaultInterval = 2
	// initRTTUs is TAS's tcp_rtt_init (tas/config.c): the RTT assumed
	// before the first sample, 50 µs.
	initRTTUs = 50
	// minKbps is the lowest rate a controller returns: 0 would mean
	// "unlimited" to the fast path.
	minKbps = 1
)

func (p Params) withDefaults() (Params, error) {
	if p.LinkBps == 0 {
		p.LinkBps = DefaultLinkBps
	}
	if p.MSS == 0 {
		p.MSS = DefaultMSS
	}
	if p.ConstBps == 0 {
		p.ConstBps = p.LinkBps
	}
	if p.Gamma == 0 {
		p.Gamma = powerGamma
	}
	if !(p.Gamma > 0 && p.Gamma <= 1) || p.Interval < 0 || p.BaseRTT < 0 || p.MinAcks < 0 {
		return p, fmt.Errorf("gamma %v, interval %d, base RTT %v, min ACKs %d: %w", p.Gamma, p.Interval, p.BaseRTT,
			p.MinAcks, ErrParams)
	}
	if p.TLow == 0 {
		p.TLow = timelyTLowUs * time.Microsecond
	}
	if p.THigh == 0 {
		p.THigh = timelyTHighUs * time.Microsecond
	}
	if p.TLow < time.Microsecond || p.THigh <= p.TLow {
		return p, fmt.Errorf("T_low %v, T_high %v: want 1µs <= T_low < T_high: %w", p.TLow, p.THigh, ErrParams)
	}
	return p, nil
}

type factory func(p Params) Controller

var algorithms = map[string]factory{
	"reno":           newReno,
	"dctcp-rate":     newDCTCPRate,
	"dctcp-win":      newDCTCPWin,
	"timely":         newTimely,
	"const-rate":     newConstRate,
	"powertcp":       newPowerTCP,
	"theta-powertcp": newThetaPowerTCP,
}

// Names lists the algorithms New accepts, sorted.
func Names() []string {
	var n []string
	for k := range algorithms {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Valid reports whether name is an algorithm New accepts.
func Valid(name string) bool { _, ok := algorithms[name]; return ok }

// New returns a controller for one flow running algorithm name.
func New(name string, p Params) (Controller, error) {
	f, ok := algorithms[name]
	if !ok {
		return nil, fmt.Errorf("%q (have %v): %w", name, Names(), ErrUnknown)
	}
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return f(p), nil
}

// interval returns p.Interval or the algorithm's default def.
func (p Params) interval(def int) int {
	if p.Interval > 0 {
		return p.Interval
	}
	return def
}

// kbps converts a rate in bit/s to the kbit/s Update returns, never 0
// (unlimited) and never above what the counter holds.
func kbps(bps float64) uint32 {
	k := math.Floor(bps / 1000)
	if !(k >= minKbps) { // also NaN
		return minKbps
	}
	return uint32(min(k, math.MaxUint32))
}

// rateOf is the rate in bit/s at which acked bytes arrived over elapsed ns.
func rateOf(acked, elapsed uint64) float64 {
	if elapsed == 0 {
		return 0
	}
	return float64(acked) * 8e9 / float64(elapsed)
}

// ids numbers the algorithms for the application ABI (the Flags byte of a
// connect or listen request, appif.Ctl): 0 is the stack's default. The
// numbers are part of the ABI: append only.
var ids = [...]string{"", "reno", "dctcp-rate", "dctcp-win", "timely", "const-rate", "powertcp", "theta-powertcp"}

// ID returns the ABI number of algorithm name ("" is 0, the default).
func ID(name string) (uint8, error) {
	for i, n := range ids {
		if n == name {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("%q (have %v): %w", name, Names(), ErrUnknown)
}

// NameOf returns the algorithm with ABI number id; false for a number no
// algorithm has (an application's value: validate it).
func NameOf(id uint8) (string, bool) {
	if int(id) >= len(ids) {
		return "", false
	}
	return ids[id], true
}
