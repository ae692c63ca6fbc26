package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// RunHTTPClient is a closed-loop HTTP/1.1 load like wrk's: cfg.Conns
// keep-alive connections, each sending GET / and reading the whole
// response before the next, for the warm-up plus cfg.Duration. It runs on
// either stack, where wrk runs on Linux's only. cfg.MsgSize and
// cfg.Pending are ignored (one request in flight per connection).
func RunHTTPClient(ctx context.Context, st Stack, cfg EchoConfig) (EchoResult, error) {
	if cfg.Conns < 1 || cfg.Duration <= 0 {
		return EchoResult{}, fmt.Errorf("http client: conns and duration must be positive")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return EchoResult{}, fmt.Errorf("http client: %w", err)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: tasbench\r\n\r\n")
	cfg.MsgSize, cfg.Pending = 0, 1
	return closedLoop(ctx, st, cfg, func(c net.Conn, h *Histogram, measuring, stop *atomic.Bool) error {
		return httpLoop(c, req, h, measuring, stop)
	})
}

func httpLoop(c net.Conn, req []byte, h *Histogram, measuring, stop *atomic.Bool) error {
	br := bufio.NewReader(c)
	for !stop.Load() {
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || resp.Close {
			return fmt.Errorf("http client: status %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		if measuring.Load() {
			h.Record(time.Since(t0))
		}
	}
	return nil
}
