package benchcli

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"gotas/internal/bench"
	"gotas/internal/cc/flowgen"
)

// liveFlows runs the workload against a bulk-server at addr on a real
// stack: each flow is one connection, opened at its arrival time, that
// sends its bytes, half-closes and waits for the server's count. Its FCT
// runs from the arrival (so a late start counts) to the count.
func liveFlows(ctx context.Context, st bench.Stack, addr string, arr []flowgen.Arrival, stderr io.Writer) ([]time.Duration, error) {
	fct := make([]time.Duration, len(arr))
	errs := make([]error, len(arr))
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i, a := range arr {
		if d := time.Until(start.Add(a.Start)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = oneFlow(ctx, st, addr, a.Size)
			fct[i] = time.Since(start.Add(a.Start))
			mu.Lock()
			done++
			if isTerminal(stderr) {
				progress(stderr, "live", float64(done)/float64(len(arr)))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if isTerminal(stderr) {
		fmt.Fprintln(stderr)
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("flow %d (%d bytes): %w", i, arr[i].Size, err)
		}
	}
	return fct, nil
}

// oneFlow sends size bytes to a bulk-server and checks its count.
func oneFlow(ctx context.Context, st bench.Stack, addr string, size int64) error {
	c, err := st.DialContext(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, min(size, 64<<10))
	for left := size; left > 0; {
		n, err := c.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			return err
		}
		left -= int64(n)
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("%T cannot half-close", c)
	}
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	var b [8]byte
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("reading the server's count: %w", err)
	}
	if got := binary.LittleEndian.Uint64(b[:]); got != uint64(size) {
		return fmt.Errorf("server counted %d bytes of %d", got, size)
	}
	return nil
}

// liveIdeal is a flow's FCT alone on a path of rateBps and base RTT rtt:
// the handshake, half an RTT for the last byte and its frames at the rate.
func liveIdeal(size int64, rateBps uint64, rtt time.Duration) time.Duration {
	wire := float64(size) / flowgen.Goodput * 8 / float64(rateBps)
	return time.Duration(1.5*float64(rtt) + wire*float64(time.Second))
}
