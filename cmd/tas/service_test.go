package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotas"
	"gotas/internal/ctlsock"
	"gotas/internal/stats"
	"gotas/internal/testnet"
)

// The test binary doubles as the application processes of these tests:
// GOTAS_TEST_APP selects what it runs instead of the tests.
func TestMain(m *testing.M) {
	switch mode := os.Getenv("GOTAS_TEST_APP"); {
	case strings.HasPrefix(mode, "echo:"):
		os.Exit(echoApp(strings.TrimPrefix(mode, "echo:"), false))
	case strings.HasPrefix(mode, "jitter:"):
		os.Exit(echoApp(strings.TrimPrefix(mode, "jitter:"), true))
	case mode == "hostile":
		os.Exit(hostileApp())
	}
	os.Exit(m.Run())
}

// echoApp registers with the service named by TAS_SOCKET and echoes on
// port (with jitter: in random-sized pieces, pausing at random); when the
// service goes away it says so and registers again.
func echoApp(port string, jitter bool) int {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := gotas.New(gotas.Config{}) // TAS_SOCKET: on the service
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ln, err := st.Listen("tcp", ":"+port)
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, gotas.ErrServiceGone) {
					fmt.Println("service gone")
					st.Close()
					break
				}
				fmt.Println("accept:", err)
				return 1
			}
			go func() {
				if jitter {
					jitterCopy(c, c)
				} else {
					io.Copy(c, c)
				}
				c.Close()
			}()
		}
	}
	return 1
}

// jitterCopy copies src to dst in random-sized pieces with random pauses,
// so that both ends' queues run dry and their doorbells sleep and wake.
func jitterCopy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf[:1+randN(len(buf))])
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		if randN(16) == 0 {
			time.Sleep(time.Duration(randN(300)) * time.Microsecond)
		}
	}
}

func randN(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// hostileApp registers, then writes random bytes over its whole region
// (descriptor, queues, rings) and rings every doorbell, for a second.
func hostileApp() int {
	cl, err := ctlsock.Dial(os.Getenv(gotas.ServiceEnv))
	if err != nil {
		fmt.Println("register:", err)
		return 1
	}
	if _, err := cl.NewContext(); err != nil {
		fmt.Println("context:", err)
		return 1
	}
	// Descriptors and queues sit at the start of the region.
	mem, err := cl.Region().Bytes(0, min(cl.Region().Size(), 8<<20))
	if err != nil {
		fmt.Println("region:", err)
		return 1
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		rand.Read(mem)
		cl.SlowBell().Ring()
		for _, b := range cl.CoreBells() {
			b.Ring()
		}
	}
	fmt.Println("scribbled")
	return 0
}

type appProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
}

func startApp(t *testing.T, socket, mode string) *appProc {
	t.Helper()
	p := &appProc{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")}
	p.cmd.Env = append(os.Environ(), "GOTAS_TEST_APP="+mode, gotas.ServiceEnv+"="+socket)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill() // ours, by pid
		p.cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	return p
}

// waitLine waits until the app printed line at least n times.
func (p *appProc) waitLine(t *testing.T, line string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		k := 0
		for _, l := range p.lines {
			if l == line {
				k++
			}
		}
		all := strings.Join(p.lines, "\n")
		p.mu.Unlock()
		if k >= n {
			return
		}
		if p.cmd.ProcessState != nil {
			t.Fatalf("app exited: %s", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("app did not print %q %d times: %q", line, n, p.lines)
}

// echoCheck dials addr from the Linux peer and checks n random bytes
// come back; it returns the open connection.
func echoCheck(t *testing.T, peer *testnet.Host, addr string, n int) net.Conn {
	t.Helper()
	var c net.Conn
	if err := peer.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return }); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	echoOn(t, c, n)
	c.SetReadDeadline(time.Time{})
	return c
}

func readStats(t *testing.T, sock string) stats.Report {
	t.Helper()
	r, err := stats.Fetch("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServiceWithTwoApplications runs tas in a namespace with a Linux
// peer and two application processes registered over the control socket.
// Both exchange verified data with the peer; one killed with SIGKILL has
// its connections reset and everything freed within a second while the
// other carries on; a hostile third scribbles over its memory without
// effect on the others; after a service restart the survivor is told
// the service is gone and registers again.
func TestServiceWithTwoApplications(t *testing.T) {
	bin := buildTas(t)
	svc, peer := svcAndPeer(t, "10.205.0.2/24")
	dir := t.TempDir()
	socket, metrics := filepath.Join(dir, "tas.sock"), filepath.Join(dir, "metrics.sock")
	args := []string{"--ip-addr=10.205.0.1/24", "--nic=afxdp:s0", "--control-socket=" + socket, "--metrics-addr=unix:" + metrics}
	tas := startTas(t, svc, bin, args...)
	a, b := startApp(t, socket, "echo:7"), startApp(t, socket, "echo:8")
	a.waitLine(t, "listening", 1)
	b.waitLine(t, "listening", 1)
	ca := echoCheck(t, peer, "10.205.0.1:7", 256<<10)
	cb := echoCheck(t, peer, "10.205.0.1:8", 256<<10)
	defer cb.Close()
	if r := readStats(t, metrics); len(r.Apps) < 2 || len(r.Flows) != 2 {
		t.Fatalf("stats before the kill: %d apps, %d flows", len(r.Apps), len(r.Flows))
	}
	checkTasctlStats(t, metrics, b.cmd.Process.Pid)

	killed := time.Now()
	a.cmd.Process.Signal(syscall.SIGKILL)
	ca.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := ca.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer's connection to the killed app: %v, want ECONNRESET within a second", err)
	}
	for {
		r := readStats(t, metrics)
		gone := true
		for _, ap := range r.Apps {
			gone = gone && ap.Pid != int32(a.cmd.Process.Pid)
		}
		if gone && len(r.Flows) == 1 && r.Slow.AppsFreed >= 1 {
			break
		}
		if time.Since(killed) > time.Second {
			t.Fatalf("killed app not freed within a second: %+v flows %d freed %d", r.Apps, len(r.Flows), r.Slow.AppsFreed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("killed app freed within %v", time.Since(killed))
	echoOn(t, cb, 64<<10)

	h := startApp(t, socket, "hostile")
	h.waitLine(t, "scribbled", 1)
	echoOn(t, cb, 64<<10)
	echoCheck(t, peer, "10.205.0.1:8", 64<<10).Close()

	// Restart: the survivor learns the service is gone and comes back.
	stopTas(t, tas)
	b.waitLine(t, "service gone", 1)
	if _, err := os.Stat(socket); err == nil {
		t.Fatal("control socket left behind after SIGINT")
	}
	tas = startTas(t, svc, bin, args...)
	b.waitLine(t, "listening", 2)
	echoCheck(t, peer, "10.205.0.1:8", 64<<10).Close()
	stopTas(t, tas)
}

// echoOn checks n more random bytes echo on an open connection.
func echoOn(t *testing.T, c net.Conn, n int) {
	t.Helper()
	msg := make([]byte, n)
	rand.Read(msg)
	go c.Write(msg)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo to %v: %v", c.RemoteAddr(), err)
	}
}

// TestWakeupsAcrossProcesses: a million numbered messages through an
// application on the service and back, both ends writing and reading in
// random-sized pieces with random pauses, so that every queue and doorbell
// on the way goes to sleep and wakes again many times; nothing may be
// missing, reordered or stuck.
func TestWakeupsAcrossProcesses(t *testing.T) {
	bin := buildTas(t)
	svc, peer := svcAndPeer(t, "10.206.0.2/24")
	socket := filepath.Join(t.TempDir(), "tas.sock")
	tas := startTas(t, svc, bin, "--ip-addr=10.206.0.1/24", "--nic=afxdp:s0", "--control-socket="+socket)
	app := startApp(t, socket, "jitter:9")
	app.waitLine(t, "listening", 1)
	c := echoCheck(t, peer, "10.206.0.1:9", 1)
	defer c.Close()
	const msgs, size = 1_000_000, 8
	done := make(chan error, 1)
	go func() { done <- readNumbered(c, msgs, size) }()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	out := make([]byte, 0, 64*size)
	for i := 0; i < msgs; {
		out = out[:0]
		for k := 1 + randN(64); k > 0 && i < msgs; k-- {
			out = fmt.Appendf(out, "%0*d", size, i)
			i++
		}
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		if randN(32) == 0 {
			time.Sleep(time.Duration(randN(300)) * time.Microsecond)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopTas(t, tas)
}

// readNumbered reads msgs numbered messages of size digits and checks
// each is the next.
func readNumbered(r io.Reader, msgs, size int) error {
	br := bufio.NewReaderSize(r, 64<<10)
	buf := make([]byte, size)
	want := make([]byte, 0, size)
	for i := range msgs {
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("after %d of %d messages: %w", i, msgs, err)
		}
		if want = fmt.Appendf(want[:0], "%0*d", size, i); !bytes.Equal(buf, want) {
			return fmt.Errorf("message %d is %q", i, buf)
		}
	}
	return nil
}

// checkTasctlStats runs tasctl stats, as JSON and as text, and finds the
// application pid owning an established flow in both.
func checkTasctlStats(t *testing.T, metrics string, pid int) {
	t.Helper()
	tasctl := filepath.Join(t.TempDir(), "tasctl")
	build := exec.Command("go", "build", "-o", tasctl, "../tasctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build tasctl: %v\n%s", err, out)
	}
	out, err := exec.Command(tasctl, "stats", "--json", "--metrics-addr=unix:"+metrics).Output()
	if err != nil {
		t.Fatalf("tasctl stats --json: %v", err)
	}
	var doc struct {
		Apps  []struct{ Pid, Flows int }
		Flows []struct {
			Local, Remote, State string
			Pid                  int
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("tasctl stats --json: %v\n%s", err, out)
	}
	found := false
	for _, f := range doc.Flows {
		found = found || f.Pid == pid && f.State == "ESTABLISHED" && strings.HasSuffix(f.Local, ":8")
	}
	apps := 0
	for _, a := range doc.Apps {
		if a.Pid == pid && a.Flows == 1 {
			apps++
		}
	}
	if !found || apps != 1 {
		t.Fatalf("tasctl stats --json lacks app %d with its established flow:\n%s", pid, out)
	}
	text, err := exec.Command(tasctl, "stats", "--metrics-addr=unix:"+metrics).Output()
	if err != nil || !strings.Contains(string(text), "ESTABLISHED") || !strings.Contains(string(text), fmt.Sprint(pid)) {
		t.Fatalf("tasctl stats: %v\n%s", err, text)
	}
}
