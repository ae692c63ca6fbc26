package benchmatrix

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gotas/internal/bench"
	"gotas/internal/testnet"
)

// The topology: client namespace c with c0, server namespace s with s0.
const (
	clientIf = "c0"
	serverIf = "s0"
	clientIP = "10.231.0.1"
	serverIP = "10.231.0.2"
	// attachIP is the idle gotas stack's address beside a Linux server
	// (Pair.Attach).
	attachIP   = "10.231.0.3"
	prefixBits = "/24"
)

// The server process's ports, one per workload kind.
const (
	echoPort   = 7000
	bulkPort   = 7001
	sourcePort = 7002
	httpPort   = 8080
)

// serverUp is how long a server gets to listen on all its ports; a gotas
// server loads an XDP program and maps its region first.
const serverUp = 20 * time.Second

// side is one end of the topology.
type side struct {
	host  *testnet.Host
	stack string
	ifc   string
	ip    string
}

// stackArgs are the tasbench flags that select this side's stack.
func (s side) stackArgs(o *Options) []string {
	if s.stack == Linux {
		return []string{"--stack=linux"}
	}
	args := []string{"--stack=gotas", "--ip-addr=" + s.ip + prefixBits, "--nic=afxdp:" + s.ifc, "--xdp-mode=" + o.XDPMode}
	return append(args, o.GotasArgs...)
}

// runPair builds the pairing's topology, starts its server and runs every
// workload against it. The lab is deleted by name before it returns.
func runPair(ctx context.Context, o Options, p Pair) []Cell {
	cells := make([]Cell, len(o.Workloads))
	for i, w := range o.Workloads {
		cells[i] = Cell{Pair: p.Name(), Workload: w.Name, Unit: "req/s", Per: "req"}
		if w.Kind == KindBulk {
			cells[i].Unit, cells[i].Per = "Gbit/s", "MiB"
		}
	}
	failAll := func(err error) []Cell {
		for i := range cells {
			if cells[i].Skipped == "" {
				cells[i].Err = err.Error()
			}
		}
		return cells
	}
	lab, err := testnet.New("mx")
	if err != nil {
		return failAll(err)
	}
	defer lab.Close()
	cl, sv, err := topology(lab, p)
	if err != nil {
		return failAll(err)
	}
	if p.Attach != "" {
		idle, err := startServer(ctx, o, sv.host, []string{"echo-server", "--stack=gotas", "--ip-addr=" + attachIP + prefixBits,
			"--nic=afxdp:" + sv.ifc, "--xdp-mode=" + p.Attach, "--port=" + strconv.Itoa(echoPort)}, 1)
		if err != nil {
			return failAll(fmt.Errorf("the idle gotas stack: %w", err))
		}
		defer idle.stop()
	}
	srv, err := startServer(ctx, o, sv.host, serverArgs(o, sv), 4)
	if err != nil {
		return failAll(err)
	}
	defer srv.stop()
	for i, w := range o.Workloads {
		if ctx.Err() != nil {
			break
		}
		runCell(ctx, o, w, cl, srv, &cells[i])
		if err := srv.alive(); err != nil {
			cells[i].Err = strings.TrimSpace(cells[i].Err + "; " + err.Error())
			return failAll(err)
		}
		if o.Progress != nil {
			fmt.Fprintln(o.Progress, progressLine(&cells[i]))
		}
	}
	return cells
}

func topology(lab *testnet.Lab, p Pair) (cl, sv side, err error) {
	cl = side{stack: p.Client, ifc: clientIf, ip: clientIP}
	sv = side{stack: p.Server, ifc: serverIf, ip: serverIP}
	if cl.host, err = lab.Host("c"); err != nil {
		return
	}
	if sv.host, err = lab.Host("s"); err != nil {
		return
	}
	if err = lab.Link(cl.host, clientIf, sv.host, serverIf); err != nil {
		return
	}
	// Linux gets the address only where Linux is the stack: on a gotas
	// side the XDP program steers the address's ARP to gotas.
	for _, s := range []side{cl, sv} {
		if s.stack == Linux {
			if err = s.host.Addr(s.ifc, s.ip+prefixBits); err != nil {
				return
			}
		}
	}
	return
}

// server is a running tasbench server process.
type server struct {
	cmd    *exec.Cmd
	pid    int
	done   chan struct{} // closed when the process has exited
	mu     sync.Mutex
	output strings.Builder // its stdout and stderr, for errors
}

// serverArgs are the arguments of the tasbench echo-server process on the
// server side, which also serves bulk, source and HTTP: four ports.
func serverArgs(o Options, sv side) []string {
	args := append([]string{"echo-server"}, sv.stackArgs(&o)...)
	args = append(args, "--port="+strconv.Itoa(echoPort), "--msg-size="+strconv.Itoa(rpcMsgSize),
		"--bulk-port="+strconv.Itoa(bulkPort), "--source-port="+strconv.Itoa(sourcePort),
		"--http-port="+strconv.Itoa(httpPort), "--body-size="+strconv.Itoa(httpBodySize))
	if sv.stack == Linux {
		args = append(args, "--bind="+sv.ip)
	}
	return args
}

// startServer starts a tasbench server process in h and waits until it
// says it listens on ports ports.
func startServer(ctx context.Context, o Options, h *testnet.Host, args []string, ports int) (*server, error) {
	s := &server{done: make(chan struct{})}
	s.cmd = h.CommandContext(ctx, o.Bin, args...)
	s.cmd.Env = append(os.Environ(), o.Env...)
	s.cmd.Stderr = &lockedWriter{s: s}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := h.Start(s.cmd); err != nil {
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		listening := 0
		for sc.Scan() {
			s.write(sc.Text() + "\n")
			if strings.Contains(sc.Text(), " listening on ") {
				if listening++; listening == ports {
					close(ready)
				}
			}
		}
		s.cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("server %s exited: %s", args[1], s.text())
	case <-time.After(serverUp):
		s.stop()
		return nil, fmt.Errorf("server %s not listening after %v: %s", args[1], serverUp, s.text())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

type lockedWriter struct{ s *server }

func (w *lockedWriter) Write(p []byte) (int, error) { w.s.write(string(p)); return len(p), nil }

func (s *server) write(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.output.Len() < 64<<10 {
		s.output.WriteString(t)
	}
}

func (s *server) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(s.output.String())
}

// alive returns an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("the server exited: %s", s.text())
	default:
		return nil
	}
}

// stop ends the server by its pid: SIGTERM, which lets a gotas server
// detach its XDP program, then SIGKILL if it lingers.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) usage() bench.ProcUsage {
	u, _ := bench.ReadUsage(s.pid)
	return u
}

// client is the outcome of one client process.
type client struct {
	stdout string
	usage  bench.ProcUsage // over its whole life, from wait4
	// server is the server's usage over the client's measured window:
	// between its marks if it printed them, else over its whole life.
	server bench.ProcUsage
}

// runClient runs one client process in h and samples the server's usage
// around its measured window.
func runClient(ctx context.Context, o Options, h *testnet.Host, srv *server, name string, args ...string) (client, error) {
	var c client
	cmd := h.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return c, err
	}
	before := srv.usage()
	if err := cmd.Start(); err != nil {
		return c, err
	}
	var stderr strings.Builder
	var marked [2]bench.ProcUsage
	marks := 0
	sc := bufio.NewScanner(errPipe)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == bench.MarkStart && marks == 0, line == bench.MarkStop && marks == 1:
			marked[marks] = srv.usage()
			marks++
		default:
			stderr.WriteString(line + "\n")
		}
	}
	err = cmd.Wait()
	after := srv.usage()
	c.stdout = stdout.String()
	c.usage, _ = bench.ChildUsage(cmd.ProcessState.SysUsage())
	c.server = after.Sub(before)
	if marks == 2 {
		c.server = marked[1].Sub(marked[0])
	}
	if err != nil {
		return c, fmt.Errorf("%s %s: %v: %s", name, args[0], err, strings.TrimSpace(stderr.String()))
	}
	return c, nil
}

// decodeJSON decodes the last line of out that holds a JSON object.
func decodeJSON(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "{") {
			return json.Unmarshal([]byte(lines[i]), v)
		}
	}
	return fmt.Errorf("no JSON in the output %q: %w", out, io.ErrUnexpectedEOF)
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

var errNoData = errors.New("moved no data")
