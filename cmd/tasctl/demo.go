package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gotas"
	"gotas/internal/bench"
	"gotas/internal/testnet"
)

// benchWorker is the hidden subcommand under which tasctl re-runs itself
// as the demo's Linux server and client, each a process of its own inside
// a namespace, as an application would be.
const benchWorker = "__bench"

// tasWorker is the hidden subcommand under which tasctl re-runs itself as
// the tas service (internal/daemon, what cmd/tas runs).
const tasWorker = "__tas"

const (
	demoPort     = 7 // echo
	demoBulkPort = 9 // discard, with a confirmed byte count
)

// demo compares gotas with Linux as echo servers on one link, driven by the
// same Linux client.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 3*time.Second, "measured time of each run")
	msgSize := fs.Int("msg-size", 64, "echo message size in bytes")
	busyPoll := fs.Bool("fp-no-ints", false, "gotas fast path busy-polls instead of sleeping when idle")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour {
		return fmt.Errorf("%w: --duration=%v: want up to an hour", errUsage, *duration)
	}
	if *msgSize < 1 || *msgSize > 1<<20 {
		return fmt.Errorf("%w: --msg-size=%d: want 1 to 1048576", errUsage, *msgSize)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	lab, err := testnet.New("demo")
	if err != nil {
		return err
	}
	defer lab.Close()
	svcHost, peer, err := demoTopology(lab)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gotas demo: namespaces %s-{svc,peer} joined by veth s0 <-> p0\n", lab.Prefix())
	fmt.Fprintf(stdout, "echo servers in svc: gotas embedded on %s (AF_XDP on s0), Linux on %s (same interface),\n", demoServiceAddr, demoLinuxAddr)
	fmt.Fprintf(stdout, "  and an echo-server process on the tas service at %s (AF_XDP on s1, veth s1 <-> p1)\n", demoTasAddr)
	fmt.Fprintf(stdout, "client in peer (%s): tasbench echo-client, Linux TCP, %d-byte messages, 1 in flight per connection, %v per run\n\n",
		demoPeerAddr, *msgSize, *duration)

	// gotas runs in this process, as an embedded stack would.
	var st *gotas.Stack
	err = svcHost.Do(func() (err error) {
		cfg := gotas.Config{Addr: netip.MustParsePrefix(demoServiceAddr + "/24"), NIC: "afxdp:s0"}
		cfg.Stack.BusyPoll = *busyPoll
		st, err = gotas.New(cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("starting gotas: %w", err)
	}
	defer st.Close()
	ln, err := st.Listen("tcp", ":"+strconv.Itoa(demoPort))
	if err != nil {
		return err
	}
	defer ln.Close()
	go bench.EchoServer(ln, *msgSize)
	bulkLn, err := st.Listen("tcp", ":"+strconv.Itoa(demoBulkPort))
	if err != nil {
		return err
	}
	defer bulkLn.Close()
	go bench.BulkServer(bulkLn)

	// The Linux server is a process of its own in the same namespace.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var kids children
	defer kids.stop() // on every path: an early error must not leave servers behind
	if err := kids.start(svcHost, svcHost.CommandContext(ctx, self, benchWorker, "echo-server", "--bind", demoLinuxAddr,
		"--port", strconv.Itoa(demoPort), "--msg-size", strconv.Itoa(*msgSize))); err != nil {
		return err
	}
	if err := kids.start(svcHost, svcHost.CommandContext(ctx, self, benchWorker, "bulk-server", "--bind", demoLinuxAddr,
		"--port", strconv.Itoa(demoBulkPort))); err != nil {
		return err
	}
	if err := startTasServer(ctx, &kids, svcHost, self, *msgSize, *busyPoll); err != nil {
		return err
	}
	for _, srv := range []string{demoLinuxAddr, demoTasAddr} {
		for _, port := range []int{demoPort, demoBulkPort} {
			if err := waitListening(peer, srv, port, 10*time.Second); err != nil {
				return fmt.Errorf("the server at %s did not come up: %w", srv, err)
			}
		}
	}

	dbg := newDemoDebug(stderr, st)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\tserver\treq/s\tp50 µs\tp99 µs\tp99.9 µs\tCPU µs/req\t")
	for _, conns := range dbg.conns([]int{1, 64}) {
		for _, srv := range demoServers {
			if !dbg.wantServer(srv.name) {
				continue
			}
			done := dbg.start(srv.name, conns)
			r, err := runClient(ctx, peer, self, srv.addr, conns, *msgSize, *duration)
			done(r)
			if err != nil {
				return fmt.Errorf("%s with %d connections: %w", srv.name, conns, err)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", conns, srv.name, r.ThroughputRPS, r.P50Us, r.P99Us, r.P999Us, r.CPUUsPerReq)
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nCPU µs/req is busy time of the whole machine (client, servers, kernel) per request.\n")
	fmt.Fprintf(stdout, "gotas: the server embeds the stack; tas: the server is another process, on the service.\n\n")
	fmt.Fprintf(stdout, "bulk: one stream from the Linux client to a sink, %v\n", *duration)
	for _, srv := range demoServers {
		r, err := runBulk(ctx, peer, self, srv.addr, *duration)
		if err != nil {
			return fmt.Errorf("bulk to %s: %w", srv.name, err)
		}
		fmt.Fprintf(stdout, "  %-6s %6.2f Gbit/s\n", srv.name, r.Gbps)
	}
	fmt.Fprintf(stdout, "\nremoved %s-*\n", lab.Prefix())
	return nil
}

// demoServers are the rows of the demo, in order.
var demoServers = []struct{ name, addr string }{{"gotas", demoServiceAddr}, {"tas", demoTasAddr}, {"Linux", demoLinuxAddr}}

// startTasServer runs the tas service on s1 and, as a process of its own
// registered on it, an echo server and a bulk server.
func startTasServer(ctx context.Context, kids *children, h *testnet.Host, self string, msgSize int, busyPoll bool) error {
	dir, err := os.MkdirTemp("", "gotas-demo-")
	if err != nil {
		return err
	}
	kids.dirs = append(kids.dirs, dir)
	socket := filepath.Join(dir, "tas.sock")
	args := []string{tasWorker, "--ip-addr=" + demoTasAddr + "/24", "--nic=afxdp:s1", "--quiet",
		"--control-socket=" + socket, "--metrics-addr=unix:" + filepath.Join(dir, "metrics.sock")}
	if busyPoll {
		args = append(args, "--fp-no-ints")
	}
	tas := h.CommandContext(ctx, self, args...)
	out, err := tas.StdoutPipe()
	if err != nil {
		return err
	}
	if err := kids.start(h, tas); err != nil {
		return err
	}
	if err := waitReady(out, 10*time.Second); err != nil {
		return fmt.Errorf("tas service: %w", err)
	}
	for _, a := range [][]string{{"echo-server", "--port", strconv.Itoa(demoPort), "--msg-size", strconv.Itoa(msgSize)},
		{"bulk-server", "--port", strconv.Itoa(demoBulkPort)}} {
		app := h.CommandContext(ctx, self, append([]string{benchWorker}, append(a, "--stack=tas", "--tas-socket="+socket)...)...)
		if err := kids.start(h, app); err != nil {
			return err
		}
	}
	return nil
}

// children are the demo's server processes: stop kills each (by pid)
// and waits for it, in reverse order (applications before their
// service), then removes their directories.
type children struct {
	cmds []*exec.Cmd
	dirs []string
}

func (k *children) start(h *testnet.Host, cmd *exec.Cmd) error {
	if err := h.Start(cmd); err != nil {
		return err
	}
	k.cmds = append(k.cmds, cmd)
	return nil
}

func (k *children) stop() {
	for i := len(k.cmds) - 1; i >= 0; i-- {
		k.cmds[i].Process.Kill()
		k.cmds[i].Wait()
	}
	for _, d := range k.dirs {
		os.RemoveAll(d)
	}
}

// waitReady reads tas's output until its ready line.
func waitReady(r io.Reader, timeout time.Duration) error {
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "tas ready") {
				ready <- nil
				io.Copy(io.Discard, r)
				return
			}
		}
		ready <- errors.New("exited before it was ready")
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("not ready after %v", timeout)
	}
}

func demoTopology(lab *testnet.Lab) (svc, peer *testnet.Host, err error) {
	if svc, err = lab.Host("svc"); err != nil {
		return
	}
	if peer, err = lab.Host("peer"); err != nil {
		return
	}
	if err = lab.Link(svc, "s0", peer, "p0"); err != nil {
		return
	}
	if err = svc.Addr("s0", demoLinuxAddr+"/24"); err != nil {
		return
	}
	if err = peer.Addr("p0", demoPeerAddr+"/24"); err != nil {
		return
	}
	if err = lab.Link(svc, "s1", peer, "p1"); err != nil {
		return
	}
	err = peer.Addr("p1", demoPeerTasAddr+"/24")
	return
}

// waitListening polls until addr:port accepts TCP connections from h.
func waitListening(h *testnet.Host, addr string, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := h.Do(func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runWorker runs tasctl's benchmark worker in h and decodes its JSON.
func runWorker(ctx context.Context, h *testnet.Host, self string, out any, args ...string) error {
	cmd := h.CommandContext(ctx, self, append([]string{benchWorker}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal([]byte(stdout.String()), out); err != nil {
		return fmt.Errorf("worker output %q: %w", stdout.String(), err)
	}
	return nil
}

func runBulk(ctx context.Context, h *testnet.Host, self, addr string, d time.Duration) (bench.BulkResult, error) {
	var r bench.BulkResult
	err := runWorker(ctx, h, self, &r, "bulk", "--addr", net.JoinHostPort(addr, strconv.Itoa(demoBulkPort)),
		"--duration", d.String(), "--json")
	return r, err
}

func runClient(ctx context.Context, h *testnet.Host, self, addr string, conns, msgSize int, d time.Duration) (bench.EchoResult, error) {
	var r bench.EchoResult
	err := runWorker(ctx, h, self, &r, "echo-client", "--addr", net.JoinHostPort(addr, strconv.Itoa(demoPort)),
		"--conns", strconv.Itoa(conns), "--msg-size", strconv.Itoa(msgSize), "--duration", d.String(), "--warmup", "500ms", "--json")
	if err == nil && r.Errors > 0 {
		err = fmt.Errorf("%d connections failed", r.Errors)
	}
	return r, err
}
