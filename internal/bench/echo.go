package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gotas"
)

// Stack is what a workload runs on: the Linux kernel through package net,
// or gotas through its embedded API. Both give standard net types.
type Stack interface {
	Listen(addr string) (net.Listener, error)
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

// Linux is the kernel's TCP stack.
type Linux struct{}

// Listen listens on a TCP address.
func (Linux) Listen(addr string) (net.Listener, error) { return net.Listen("tcp4", addr) }

// DialContext connects to a TCP address.
func (Linux) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", addr)
}

// EchoServer echoes fixed-size messages back on every accepted connection,
// as TAS's micro_rpc echoserver does: read msgSize bytes, write them back.
// It returns when ln is closed.
func EchoServer(ln net.Listener, msgSize int) error {
	if msgSize < 1 {
		return fmt.Errorf("message size %d: want at least 1", msgSize)
	}
	return serveConns(ln, func(c net.Conn) {
		if tc, ok := c.(interface{ SetNoDelay(bool) error }); ok {
			tc.SetNoDelay(true)
		}
		buf := make([]byte, msgSize)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// serveConns accepts connections until ln is closed and runs handle on
// each in its own goroutine, closing the connection afterwards.
func serveConns(ln net.Listener, handle func(net.Conn)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			handle(c)
		}()
	}
}

// MarkStart and MarkStop are the lines tasbench echo-client --marks
// prints on stderr as its measured window opens and closes.
const (
	MarkStart = "tasbench: measuring"
	MarkStop  = "tasbench: measured"
)

// EchoConfig describes a closed-loop echo client run.
type EchoConfig struct {
	Addr     string
	MsgSize  int
	Conns    int
	Pending  int // messages in flight per connection
	Duration time.Duration
	Warmup   time.Duration // excluded from the results
	// OnMeasure, if set, is called as measuring starts (true) and ends
	// (false), so that another process can sample its own counters over
	// the same window (tasbench matrix samples the server's).
	OnMeasure func(start bool)
}

// EchoResult is what an echo client run measured.
type EchoResult struct {
	Requests      uint64        `json:"requests"`
	Elapsed       time.Duration `json:"-"`
	ThroughputRPS float64       `json:"throughput_rps"`
	MeanUs        float64       `json:"mean_us"`
	P50Us         float64       `json:"p50_us"`
	P99Us         float64       `json:"p99_us"`
	P999Us        float64       `json:"p999_us"`
	// CPUUsPerReq is busy CPU time of the whole machine (all processes,
	// kernel included) per request, from /proc/stat.
	CPUUsPerReq float64 `json:"cpu_us_per_req"`
	Conns       int     `json:"conns"`
	MsgSize     int     `json:"msg_size"`
	Pending     int     `json:"pending"`
	Errors      uint64  `json:"errors"`
	// Self is this client process's own CPU time and context switches
	// over the measured window.
	Self ProcUsage `json:"self"`
}

// RunEchoClient drives cfg.Conns connections, each keeping cfg.Pending
// messages in flight, for the warm-up plus cfg.Duration, and measures
// round-trip latency per message and total throughput.
func RunEchoClient(ctx context.Context, st Stack, cfg EchoConfig) (EchoResult, error) {
	if cfg.MsgSize < 1 || cfg.Conns < 1 || cfg.Pending < 1 || cfg.Duration <= 0 {
		return EchoResult{}, fmt.Errorf("echo client: msg size, conns, pending and duration must be positive")
	}
	return closedLoop(ctx, st, cfg, func(c net.Conn, h *Histogram, measuring, stop *atomic.Bool) error {
		return echoLoop(c, cfg, h, measuring, stop)
	})
}

// connLoop runs one connection's requests until stop, recording each
// latency in h while measuring is set.
type connLoop func(c net.Conn, h *Histogram, measuring, stop *atomic.Bool) error

// closedLoop dials cfg.Conns connections, runs loop on each for the
// warm-up plus cfg.Duration, and merges what they measured.
func closedLoop(ctx context.Context, st Stack, cfg EchoConfig, loop connLoop) (EchoResult, error) {
	conns := make([]net.Conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < cfg.Conns; i++ {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := st.DialContext(dctx, cfg.Addr)
		cancel()
		if err != nil {
			return EchoResult{}, fmt.Errorf("connection %d of %d: %w", i+1, cfg.Conns, err)
		}
		if tc, ok := c.(interface{ SetNoDelay(bool) error }); ok {
			tc.SetNoDelay(true)
		}
		conns = append(conns, c)
	}

	var measuring atomic.Bool
	var stop atomic.Bool
	var errs atomic.Uint64
	hists := make([]Histogram, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(c, &hists[i], &measuring, &stop); err != nil && !stop.Load() {
				errs.Add(1)
			}
		}()
	}
	if !sleepCtx(ctx, cfg.Warmup) {
		stop.Store(true)
	}
	mark := func(start bool) {
		if cfg.OnMeasure != nil {
			cfg.OnMeasure(start)
		}
	}
	mark(true)
	self0, cpu0 := SelfUsage(), cpuBusy()
	start := time.Now()
	measuring.Store(true)
	sleepCtx(ctx, cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	self1, cpu1 := SelfUsage(), cpuBusy()
	mark(false)
	stop.Store(true)
	// Closing unblocks loops waiting for a reply.
	for _, c := range conns {
		c.SetDeadline(time.Now())
	}
	wg.Wait()

	var h Histogram
	for i := range hists {
		h.Merge(&hists[i])
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	r := EchoResult{
		Requests: h.Count(), Elapsed: elapsed,
		ThroughputRPS: float64(h.Count()) / elapsed.Seconds(),
		MeanUs:        us(h.Mean()), P50Us: us(h.Quantile(0.5)), P99Us: us(h.Quantile(0.99)), P999Us: us(h.Quantile(0.999)),
		Conns: cfg.Conns, MsgSize: cfg.MsgSize, Pending: cfg.Pending, Errors: errs.Load(),
		Self: self1.Sub(self0),
	}
	if h.Count() > 0 && cpu1 > cpu0 {
		r.CPUUsPerReq = us(cpu1-cpu0) / float64(h.Count())
	}
	if h.Count() == 0 {
		return r, fmt.Errorf("client: no request completed (%d connection errors)", r.Errors)
	}
	return r, nil
}

func echoLoop(c net.Conn, cfg EchoConfig, h *Histogram, measuring, stop *atomic.Bool) error {
	out := make([]byte, cfg.MsgSize)
	in := make([]byte, cfg.MsgSize)
	sent := make([]time.Time, cfg.Pending) // send times, a ring in message order
	var next, done uint64
	send := func() error {
		if len(out) >= 8 {
			binary.LittleEndian.PutUint64(out, next)
		}
		sent[next%uint64(cfg.Pending)] = time.Now()
		next++
		_, err := c.Write(out)
		return err
	}
	for i := 0; i < cfg.Pending; i++ {
		if err := send(); err != nil {
			return err
		}
	}
	for !stop.Load() {
		if _, err := io.ReadFull(c, in); err != nil {
			return err
		}
		if len(in) >= 8 && binary.LittleEndian.Uint64(in) != done {
			return fmt.Errorf("echo: got message %d, want %d", binary.LittleEndian.Uint64(in), done)
		}
		rtt := time.Since(sent[done%uint64(cfg.Pending)])
		done++
		if measuring.Load() {
			h.Record(rtt)
		}
		if err := send(); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Gotas runs workloads on an embedded gotas stack.
type Gotas struct{ Stack *gotas.Stack }

// Listen listens on a TCP address of the stack.
func (g Gotas) Listen(addr string) (net.Listener, error) { return g.Stack.Listen("tcp", addr) }

// DialContext connects from the stack.
func (g Gotas) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return g.Stack.DialContext(ctx, "tcp", addr)
}
