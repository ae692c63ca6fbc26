package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// BulkServer receives one-way streams: it counts the bytes of each
// connection until the sender half-closes, then answers with the count as a
// little-endian uint64, so the sender learns what really arrived.
func BulkServer(ln net.Listener) error {
	return serveConns(ln, func(c net.Conn) {
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(n))
		c.Write(b[:])
	})
}

// BulkResult is a one-way stream's outcome.
type BulkResult struct {
	Bytes   uint64        `json:"bytes"`
	Elapsed time.Duration `json:"-"`
	Gbps    float64       `json:"gbit_per_s"`
}

// RunBulkClient streams to a BulkServer for d over conns connections and
// reports the bytes the server confirmed, per second of the whole run.
func RunBulkClient(ctx context.Context, st Stack, addr string, conns int, d time.Duration) (BulkResult, error) {
	if conns < 1 || d <= 0 {
		return BulkResult{}, fmt.Errorf("bulk client: conns and duration must be positive")
	}
	type closeWriter interface{ CloseWrite() error }
	var (
		mu    sync.Mutex
		total uint64
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := func() (uint64, error) {
				c, err := st.DialContext(ctx, addr)
				if err != nil {
					return 0, err
				}
				defer c.Close()
				cw, ok := c.(closeWriter)
				if !ok {
					return 0, fmt.Errorf("bulk client: %T cannot half-close", c)
				}
				buf := make([]byte, bulkChunk)
				for time.Now().Before(deadline) && ctx.Err() == nil {
					if _, err := c.Write(buf); err != nil {
						return 0, err
					}
				}
				if err := cw.CloseWrite(); err != nil {
					return 0, err
				}
				var b [8]byte
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(c, b[:]); err != nil {
					return 0, fmt.Errorf("bulk client: reading the server's count: %w", err)
				}
				return binary.LittleEndian.Uint64(b[:]), nil
			}()
			mu.Lock()
			total += n
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := BulkResult{Bytes: total, Elapsed: elapsed, Gbps: float64(total) * 8 / elapsed.Seconds() / 1e9}
	return r, first
}

// HTTPServer serves bodySize bytes for every GET, until ln closes.
func HTTPServer(ln net.Listener, bodySize int) error {
	if bodySize < 0 {
		return fmt.Errorf("body size %d: want at least 0", bodySize)
	}
	body := make([]byte, bodySize)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	err := srv.Serve(ln)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// bulkChunk is the size of each Write of a bulk sender: large enough that
// the per-call cost vanishes against the copy, as iperf3's 128 KiB does.
const bulkChunk = 256 << 10

// SourceServer is BulkServer's reverse: on every accepted connection it
// writes as fast as the connection takes data until the client closes it,
// so a client measures the server-to-client direction.
func SourceServer(ln net.Listener) error {
	return serveConns(ln, func(c net.Conn) {
		buf := make([]byte, bulkChunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// RunSourceClient reads from a SourceServer for d over one connection and
// reports the bytes it received itself, per second of reading.
func RunSourceClient(ctx context.Context, st Stack, addr string, d time.Duration) (BulkResult, error) {
	if d <= 0 {
		return BulkResult{}, fmt.Errorf("source client: duration must be positive")
	}
	c, err := st.DialContext(ctx, addr)
	if err != nil {
		return BulkResult{}, err
	}
	defer c.Close()
	buf := make([]byte, bulkChunk)
	start := time.Now()
	deadline := start.Add(d)
	c.SetReadDeadline(deadline)
	var total uint64
	for ctx.Err() == nil {
		n, err := c.Read(buf)
		total += uint64(n)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return BulkResult{Bytes: total}, fmt.Errorf("source client: %w", err)
			}
			break
		}
	}
	elapsed := time.Since(start)
	return BulkResult{Bytes: total, Elapsed: elapsed, Gbps: float64(total) * 8 / elapsed.Seconds() / 1e9}, nil
}
