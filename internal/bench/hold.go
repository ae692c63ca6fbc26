package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HoldConfig configures RunHold.
type HoldConfig struct {
	Addr     string        // echo server IP:PORT
	Conns    int           // connections to open and hold
	MsgSize  int           // one message of this size is echoed on each
	Duration time.Duration // how long to hold them once all are open
	Parallel int           // dials in flight (default 64)
	// Sources are local addresses to dial from, in turn (Linux only; a
	// 4-tuple set has ~28k ephemeral ports per source address).
	Sources []string
	// Progress, if set, gets a line now and then while connections open.
	Progress io.Writer
}

// HoldResult is what RunHold saw.
type HoldResult struct {
	Opened   int    // connections that opened and echoed their message
	Failed   int    // dials or echoes that failed
	Open     int    // connections still open (no error or EOF) at the end
	FirstErr string `json:",omitempty"`
	OpenTime time.Duration
}

// RunHold opens cfg.Conns connections to an echo server, echoes one
// message on each, keeps them all open for cfg.Duration and reports how
// many stayed open. It is the idle-connection memory benchmark: measure
// the server while it holds them.
func RunHold(ctx context.Context, st Stack, cfg HoldConfig) (HoldResult, error) {
	if cfg.Conns < 1 || cfg.MsgSize < 1 {
		return HoldResult{}, fmt.Errorf("hold: need at least one connection and a positive message size")
	}
	par := cfg.Parallel
	if par <= 0 {
		par = 64
	}
	dial := st.DialContext
	if len(cfg.Sources) > 0 {
		if _, ok := st.(Linux); !ok {
			return HoldResult{}, fmt.Errorf("hold: source addresses need the Linux stack")
		}
		var next atomic.Uint64
		dialers := make([]net.Dialer, len(cfg.Sources))
		for i, s := range cfg.Sources {
			ip := net.ParseIP(s)
			if ip == nil {
				return HoldResult{}, fmt.Errorf("hold: bad source address %q", s)
			}
			dialers[i].LocalAddr = &net.TCPAddr{IP: ip}
		}
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return dialers[next.Add(1)%uint64(len(dialers))].DialContext(ctx, "tcp4", addr)
		}
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		res    HoldResult
		todo   atomic.Int64
		wg     sync.WaitGroup
		start  = time.Now()
		lastPr = start
	)
	todo.Store(int64(cfg.Conns))
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, cfg.MsgSize)
			for todo.Add(-1) >= 0 && ctx.Err() == nil {
				c, err := dial(ctx, cfg.Addr)
				if err == nil {
					c.SetDeadline(time.Now().Add(30 * time.Second))
					if _, err = c.Write(buf); err == nil {
						_, err = io.ReadFull(c, buf)
					}
					c.SetDeadline(time.Time{})
					if err != nil {
						c.Close()
					}
				}
				mu.Lock()
				if err != nil {
					res.Failed++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
				} else {
					conns = append(conns, c)
				}
				if cfg.Progress != nil && time.Since(lastPr) > 2*time.Second {
					lastPr = time.Now()
					fmt.Fprintf(cfg.Progress, "hold: %d open, %d failed after %v\n", len(conns), res.Failed, time.Since(start).Round(time.Millisecond))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Opened, res.OpenTime = len(conns), time.Since(start)
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "hold: %d open, %d failed in %v; holding for %v\n", res.Opened, res.Failed, res.OpenTime.Round(time.Millisecond), cfg.Duration)
	}
	// Hold: a reader per connection notices a reset or EOF.
	var closed atomic.Int64
	for _, c := range conns {
		go func() {
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				closed.Add(1)
			}
		}()
	}
	sleepCtx(ctx, cfg.Duration)
	res.Open = res.Opened - int(closed.Load())
	for _, c := range conns {
		c.Close()
	}
	return res, nil
}
