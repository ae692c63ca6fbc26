package benchmatrix

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"gotas/internal/bench"
)

// runCell runs one workload from the client side and fills c.
func runCell(ctx context.Context, o Options, w Workload, cl side, srv *server, c *Cell) {
	var err error
	switch w.Kind {
	case KindRPC:
		err = runClosedLoop(ctx, o, w, cl, srv, c, "echo-client", echoPort)
	case KindGoHTTP:
		err = runClosedLoop(ctx, o, w, cl, srv, c, "http-client", httpPort)
	case KindHTTP:
		if cl.stack != Linux {
			c.Skipped = "wrk runs on Linux's TCP only"
			return
		}
		err = runWrk(ctx, o, w, cl, srv, c)
	case KindBulk:
		if w.MTUFrames && cl.stack == Linux {
			if err = segmentation(ctx, cl, false); err != nil {
				break
			}
			defer segmentation(ctx, cl, true)
		}
		if w.MTUFrames && cl.stack != Linux {
			o.GotasArgs = append(o.GotasArgs[:len(o.GotasArgs):len(o.GotasArgs)], "--xdp-tx=ring")
		}
		err = runBulk(ctx, o, w, cl, srv, c)
	}
	if err == nil && !c.Moved() {
		err = errNoData
	}
	if err != nil {
		c.Err = err.Error()
		return
	}
	if c.Units > 0 {
		c.ClientCswPer = float64(c.Client.Voluntary+c.Client.Involuntary) / c.Units
		c.ServerCswPer = float64(c.Server.Voluntary+c.Server.Involuntary) / c.Units
		c.ServerCPUUsPer = float64(c.Server.CPU) / 1e3 / c.Units
	}
}

// segmentation turns TSO and GSO on the client's interface on or off.
func segmentation(ctx context.Context, cl side, on bool) error {
	v := "off"
	if on {
		v = "on"
	}
	_, err := cl.host.Run(ctx, "ethtool", "-K", cl.ifc, "tso", v, "gso", v)
	return err
}

func addr(port int) string { return net.JoinHostPort(serverIP, strconv.Itoa(port)) }

// runJSON runs a client process on the client side (runClient) and
// decodes the JSON object it prints last.
func runJSON[T any](ctx context.Context, o Options, cl side, srv *server, name string, args ...string) (T, client, error) {
	var r T
	out, err := runClient(ctx, o, cl.host, srv, name, args...)
	if err == nil {
		err = decodeJSON(out.stdout, &r)
	}
	return r, out, err
}

// runClosedLoop runs tasbench echo-client or http-client (cmd) against
// port with --marks, so the server's usage and the client's own (which it
// reports) cover the same window.
func runClosedLoop(ctx context.Context, o Options, w Workload, cl side, srv *server, c *Cell, cmd string, port int) error {
	args := append([]string{cmd}, cl.stackArgs(&o)...)
	args = append(args, "--addr="+addr(port), "--conns="+strconv.Itoa(w.Conns),
		"--msg-size="+strconv.Itoa(rpcMsgSize), "--duration="+o.Duration.String(),
		"--warmup="+o.Warmup.String(), "--json", "--marks")
	r, out, err := runJSON[bench.EchoResult](ctx, o, cl, srv, o.Bin, args...)
	if err != nil {
		return err
	}
	c.Throughput, c.P50Us, c.P99Us, c.P999Us = r.ThroughputRPS, r.P50Us, r.P99Us, r.P999Us
	c.Units, c.Errors = float64(r.Requests), r.Errors
	c.Client, c.Server = r.Self, out.server
	return nil
}

// runBulk runs one tasbench bulk stream, the client sending (bulk-up) or
// receiving (bulk-down).
func runBulk(ctx context.Context, o Options, w Workload, cl side, srv *server, c *Cell) error {
	args := append([]string{"bulk"}, cl.stackArgs(&o)...)
	port := bulkPort
	if w.Reverse {
		port = sourcePort
		args = append(args, "--reverse")
	}
	args = append(args, "--addr="+addr(port), "--duration="+o.Duration.String(), "--json")
	r, out, err := runJSON[bench.BulkResult](ctx, o, cl, srv, o.Bin, args...)
	if err != nil {
		return err
	}
	c.Throughput, c.Units = r.Gbps, float64(r.Bytes)/(1<<20)
	c.Client, c.Server = out.usage, out.server
	return nil
}

// wrkScript makes wrk print one JSON line at the end with the figures the
// matrix needs; its own report has no p99.9.
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`

type wrkResult struct {
	Requests   uint64  `json:"requests"`
	DurationUs float64 `json:"duration_us"`
	P50Us      float64 `json:"p50_us"`
	P99Us      float64 `json:"p99_us"`
	P999Us     float64 `json:"p999_us"`
	Errors     uint64  `json:"errors"`
}

// wrkMaxThreads is wrk's thread count at most: one per vCPU of this
// machine kind (2); wrk needs at least one connection per thread.
const wrkMaxThreads = 2

// runWrk runs wrk against the server's HTTP port. wrk's usage and the
// server's cover wrk's whole run, connection setup included.
func runWrk(ctx context.Context, o Options, w Workload, cl side, srv *server, c *Cell) error {
	script, err := os.CreateTemp("", "tasbench-wrk-*.lua")
	if err != nil {
		return err
	}
	defer os.Remove(script.Name())
	if _, err := script.WriteString(wrkScript); err != nil {
		script.Close()
		return err
	}
	script.Close()
	d := max(o.Duration.Round(time.Second), time.Second) // wrk takes whole seconds
	r, out, err := runJSON[wrkResult](ctx, o, cl, srv, "wrk", "-t"+strconv.Itoa(min(w.Conns, wrkMaxThreads)),
		"-c"+strconv.Itoa(w.Conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s", "-s", script.Name(),
		"http://"+addr(httpPort)+"/")
	if err != nil {
		return err
	}
	if r.DurationUs <= 0 {
		return fmt.Errorf("wrk reported a duration of %v µs", r.DurationUs)
	}
	c.Throughput = float64(r.Requests) / (r.DurationUs / 1e6)
	c.P50Us, c.P99Us, c.P999Us = r.P50Us, r.P99Us, r.P999Us
	c.Units, c.Errors = float64(r.Requests), r.Errors
	c.Client, c.Server = out.usage, out.server
	return nil
}
