package sim

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Result is what a run measured. Rates and queue statistics cover the
// window from Config.Warmup to the end.
type Result struct {
	Duration    time.Duration // virtual time simulated
	Utilization float64       // bottleneck wire bytes·8 / (rate·window)
	QueueP50    int           // bytes, bottleneck queue percentiles over the window
	QueueP99    int
	QueueMax    int
	Queue       []int     // bottleneck queue samples (bytes), one per Config.Sample
	Rates       []float64 // per flow: goodput bit/s over the window
	Jain        float64   // Jain's fairness index of Rates
	// Series holds each flow's goodput (bit/s) per sample period.
	Series   [][]float64
	FCT      []time.Duration // per flow: start to last byte (0: not finished)
	RTOs     uint64          // retransmission timeouts, all senders
	FastRetx uint64
	Drops    uint64 // tail drops at the bottleneck
	Marks    uint64 // CE marks at the bottleneck
	Finished int    // flows with a size that completed
	Errors   []error
	CPU      time.Duration // wall time the run took
	// INTUpdates and NoINTUpdates count the senders' PowerTCP updates
	// with and without fresh telemetry; BadINT telemetry options ignored.
	INTUpdates, NoINTUpdates, BadINT uint64
}

// Run simulates cfg from start to end and returns the measurements.
func Run(cfg Config, warmup time.Duration) (*Result, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return n.run(warmup)
}

func (n *Net) run(warmup time.Duration) (*Result, error) {
	t0 := time.Now()
	n.warmup = warmup
	cfg := &n.cfg
	n.flows = make([]flowState, len(cfg.Flows))
	ports := map[netip.AddrPort]int{}
	for i, f := range cfg.Flows {
		n.flows[i].Flow = f
		n.hosts[f.Sender].app.mine = append(n.hosts[f.Sender].app.mine, i)
	}
	recv := n.hosts[cfg.Senders]
	if _, err := recv.app.ctx.Listen(simPort, 1024); err != nil {
		return nil, err
	}
	r := &Result{Series: make([][]float64, len(n.flows))}
	var prev []int64
	next := cfg.Sample
	for {
		w, err := n.stepAll(ports)
		if err != nil {
			return nil, err
		}
		if n.elapsed() >= next {
			prev = n.sample(r, prev)
			next += cfg.Sample
			if cfg.Progress != nil {
				cfg.Progress(n.elapsed())
			}
		}
		if n.finished() || n.elapsed() >= cfg.Duration {
			break
		}
		if !w {
			n.advance(next)
		}
	}
	n.summarize(r, warmup)
	r.CPU = time.Since(t0)
	return r, nil
}

// stepAll runs every stack, application and the switch once.
func (n *Net) stepAll(ports map[netip.AddrPort]int) (bool, error) {
	worked := n.forward()
	for _, h := range n.hosts {
		worked = h.st.Step() || worked
		w, err := h.app.step(n.flows, ports)
		if err != nil {
			return false, err
		}
		worked = w || worked
	}
	return worked, nil
}

// advance moves virtual time to the next event: a link delivery, a stack
// timer, a flow start or the next sample, at least 100 ns on.
func (n *Net) advance(sample time.Duration) {
	next := n.start.Add(min(sample, n.cfg.Duration))
	if t, ok := n.clock.NextDeadline(); ok && t.Before(next) {
		next = t
	}
	for _, h := range n.hosts {
		if d, ok := h.st.NextDeadline(); ok {
			if t := n.start.Add(time.Duration(d - 1_000_000_000)); t.Before(next) {
				next = t
			}
		}
	}
	for i := range n.flows {
		if f := &n.flows[i]; !f.started {
			if t := n.start.Add(f.Start); t.Before(next) {
				next = t
			}
		}
	}
	if m := n.clock.Now().Add(100 * time.Nanosecond); next.Before(m) {
		next = m
	}
	n.clock.AdvanceTo(next)
}

// finished reports whether every flow has a size and is done.
func (n *Net) finished() bool {
	for i := range n.flows {
		f := &n.flows[i]
		if f.Size > 0 && !f.done || f.Size == 0 && (f.Stop == 0 || !f.shut) {
			return false
		}
	}
	return true
}

// sample records the bottleneck queue and each flow's goodput since the
// previous sample.
func (n *Net) sample(r *Result, prev []int64) []int64 {
	recv := n.hosts[n.cfg.Senders]
	if len(r.Queue) == int(n.warmup/n.cfg.Sample) {
		n.deliveredAtWarmup = recv.port.Queue().LinkStats().DeliveredBytes
	}
	_, q := recv.sw.Queue().TxBacklog()
	r.Queue = append(r.Queue, q)
	if prev == nil {
		prev = make([]int64, len(n.flows))
	}
	if n.cfg.NoSeries {
		return prev
	}
	secs := n.cfg.Sample.Seconds()
	for i := range n.flows {
		d := n.flows[i].rcvd - prev[i]
		prev[i] = n.flows[i].rcvd
		r.Series[i] = append(r.Series[i], float64(d)*8/secs)
	}
	return prev
}

// summarize computes the window statistics and collects the counters.
func (n *Net) summarize(r *Result, warmup time.Duration) {
	cfg := &n.cfg
	r.Duration = n.elapsed()
	skip := min(int(warmup/cfg.Sample), len(r.Queue))
	win := r.Queue[skip:]
	if len(win) > 0 {
		s := slices.Clone(win)
		slices.Sort(s)
		r.QueueP50, r.QueueP99, r.QueueMax = s[len(s)/2], s[(len(s)*99)/100], s[len(s)-1]
	}
	span := float64(len(win)) * cfg.Sample.Seconds()
	for i := range n.flows {
		if !cfg.NoSeries && span > 0 {
			var sum float64
			for _, v := range r.Series[i][skip:] {
				sum += v * cfg.Sample.Seconds()
			}
			r.Rates = append(r.Rates, sum/span)
		}
		f := &n.flows[i]
		r.FCT = append(r.FCT, time.Duration(f.fct))
		if f.done && f.Size > 0 && f.err == nil {
			r.Finished++
		}
		if f.err != nil {
			r.Errors = append(r.Errors, f.err)
		}
	}
	r.Jain = Jain(r.Rates)
	n.linkCounters(r, span)
}

// linkCounters fills utilization, drops, marks and the senders' losses.
func (n *Net) linkCounters(r *Result, span float64) {
	recv := n.hosts[n.cfg.Senders]
	ls := recv.port.Queue().LinkStats()
	r.Drops, r.Marks = ls.TailDropped, ls.CEMarked
	if span > 0 {
		r.Utilization = float64(ls.DeliveredBytes-min(n.deliveredAtWarmup, ls.DeliveredBytes)) * 8 /
			(float64(n.cfg.BottleneckBps) * span)
	}
	for _, h := range n.hosts[:n.cfg.Senders] {
		es := h.st.EngineStats(0)
		r.RTOs += es.RTOs
		r.FastRetx += es.FastRetx
		r.BadINT += es.RxBadINT
		ss := h.st.Stats()
		r.INTUpdates += ss.CCINT
		r.NoINTUpdates += ss.CCNoINT
	}
}

// Jain is Jain's fairness index (Σx)²/(n·Σx²): 1 when all shares are equal,
// 1/n when one flow has everything.
func Jain(x []float64) float64 {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return 0
	}
	return s * s / (float64(len(x)) * s2)
}

func (r *Result) String() string {
	return fmt.Sprintf("util %.3f queue p50 %d p99 %d max %d jain %.3f rtos %d drops %d marks %d int %d/%d rates %v",
		r.Utilization, r.QueueP50, r.QueueP99, r.QueueMax, r.Jain, r.RTOs, r.Drops, r.Marks, r.INTUpdates,
		r.NoINTUpdates, roundMbps(r.Rates))
}

func roundMbps(x []float64) []float64 {
	o := make([]float64, len(x))
	for i, v := range x {
		o[i] = math.Round(v/1e4) / 100
	}
	return o
}

// StepResponse is how long after at flow i's goodput first reaches want
// (bit/s) for a whole sample period; false if it never does.
func StepResponse(r *Result, i int, at, sample time.Duration, want float64) (time.Duration, bool) {
	from := int(at / sample)
	for k := from; k < len(r.Series[i]); k++ {
		if r.Series[i][k] >= want {
			return time.Duration(k+1)*sample - at, true
		}
	}
	return 0, false
}
