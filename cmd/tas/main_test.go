package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotas/internal/testnet"
)

func TestBadFlagsExitTwo(t *testing.T) {
	tests := [][]string{
		{},
		{"--ip-addr=10.0.0.1/24"},
		{"--ip-addr=nope", "--nic=afxdp:lo"},
		{"--ip-addr=10.0.0.1/24", "--nic=bogus:lo"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--unknown-flag"},
		// A missing interface is a configuration error too.
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:gtnosuchif0"},
		{"--ip-addr=10.0.0.1/24", "--nic=afpacket:gtnosuchif0"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--tcp-rxbuf-len=1000"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--tcp-txbuf-len=64M1"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--shm-len=lots"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--fp-cores-max=0"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--tcp-handshake-retries=0"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--cc=cubic"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--cc-dctcp-weight=2"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--cc-timely-tlow=200"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--app-flows-max=-1"},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--control-socket="},
		{"--ip-addr=10.0.0.1/24", "--nic=afxdp:lo", "--ip-route=10.1.0.0/16"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("tas %v exited %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.HasPrefix(stderr.String(), "tas: ") || strings.Count(stderr.String(), "\n") > 2 {
			t.Errorf("tas %v: want a short clear message, got %q", args, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--ip-addr") {
		t.Errorf("--help exited %d with %q", code, stderr.String())
	}
}

// buildTas compiles this command once per test binary.
func buildTas(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tas")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tasProc is a running tas whose standard output is being collected.
type tasProc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer  // written by the reader until eof is closed
	eof    chan struct{} // closed when tas's stdout has been read to the end
	stderr bytes.Buffer
}

// startTas runs the binary inside host and waits for its ready line.
func startTas(t *testing.T, host *testnet.Host, bin string, args ...string) *tasProc {
	t.Helper()
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--control-socket=") }) {
		// Tests run in parallel: each service gets a socket of its own.
		args = append(args, "--control-socket="+filepath.Join(t.TempDir(), "tas.sock"))
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--metrics-addr=") }) {
		args = append(args, "--metrics-addr=unix:"+filepath.Join(t.TempDir(), "metrics.sock"))
	}
	p := &tasProc{cmd: host.CommandContext(t.Context(), bin, args...), eof: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := host.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		defer close(p.eof)
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "tas ready") {
				ok = true
				ready <- true
			}
			p.out.WriteString(sc.Text() + "\n")
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-p.eof
			p.cmd.Wait()
			t.Fatalf("tas exited before ready: %s", p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tas not ready after 10s: %s", p.stderr.String())
	}
	return p
}

// stopTas interrupts tas, checks that it exits cleanly, and returns all it
// printed. The output is read to the end before Wait, as os/exec requires.
func stopTas(t *testing.T, p *tasProc) string {
	t.Helper()
	cmd := p.cmd
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.eof:
	case <-time.After(10 * time.Second):
		t.Fatal("tas still running 10s after SIGINT")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tas did not exit cleanly on SIGINT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tas still running 10s after SIGINT")
	}
	return p.out.String()
}

// svcAndPeer makes two namespaces joined by a veth, s0 in svc and p0 in
// peer with peerAddr; the lab is removed when the test ends.
func svcAndPeer(t *testing.T, peerAddr string) (svc, peer *testnet.Host) {
	t.Helper()
	lab := testnet.NewT(t)
	svc, err := lab.Host("svc")
	if err != nil {
		t.Fatal(err)
	}
	if peer, err = lab.Host("peer"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(svc, "s0", peer, "p0"); err != nil {
		t.Fatal(err)
	}
	if err := peer.Addr("p0", peerAddr); err != nil {
		t.Fatal(err)
	}
	return svc, peer
}

func ping(t *testing.T, host *testnet.Host, addr string) {
	t.Helper()
	out, err := host.Run(t.Context(), "ping", "-c", "3", "-i", "0.2", "-W", "2", addr)
	if err != nil {
		t.Fatalf("ping %s from %s: %v", addr, host.Name, err)
	}
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping %s: %s", addr, out)
	}
}

func needPing(t *testing.T) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping (iputils-ping) is not installed; scripts/setup.sh installs it")
	}
}

// TestPingOverVeth runs tas on one end of a veth with each back-end that
// attaches to an existing interface, pings it from the other end, and checks
// that a TCP connection to an address Linux owns on the same interface still
// works while tas runs.
func TestPingOverVeth(t *testing.T) {
	needPing(t)
	bin := buildTas(t)
	for _, kind := range []string{"afxdp", "afpacket"} {
		t.Run(kind, func(t *testing.T) {
			svc, peer := svcAndPeer(t, "10.201.0.2/24")
			// Linux owns .3 on the service's interface; tas serves .1.
			if err := svc.Addr("s0", "10.201.0.3/24"); err != nil {
				t.Fatal(err)
			}
			tas := startTas(t, svc, bin, "--ip-addr=10.201.0.1/24", "--nic="+kind+":s0")
			ping(t, peer, "10.201.0.1")
			ping(t, peer, "10.201.0.3") // Linux's own address still answers

			var ln net.Listener
			if err := svc.Do(func() (err error) { ln, err = net.Listen("tcp", "10.201.0.3:8080"); return }); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					io.Copy(c, c)
					c.Close()
				}
			}()
			var c net.Conn
			if err := peer.Do(func() (err error) { c, err = net.DialTimeout("tcp", "10.201.0.3:8080", 5*time.Second); return }); err != nil {
				t.Fatalf("TCP to the Linux-owned address while tas runs: %v", err)
			}
			msg := bytes.Repeat([]byte("linux keeps its traffic "), 4000)
			go c.Write(msg)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo through the Linux-owned address: %v", err)
			}
			c.Close()

			xdpAttached := func() bool {
				link, err := svc.IP("link", "show", "s0")
				if err != nil {
					t.Fatal(err)
				}
				return strings.Contains(link, "prog/xdp")
			}
			if kind == "afxdp" && !xdpAttached() {
				t.Fatal("no XDP program attached to s0 while tas runs")
			}
			if out := stopTas(t, tas); !strings.Contains(out, "tas stopped") {
				t.Fatalf("no clean stop message in output:\n%s", out)
			}
			if kind == "afxdp" && xdpAttached() {
				t.Fatal("XDP program still attached after SIGINT")
			}
		})
	}
}

// TestPingOverTAP runs tas on a TAP device it creates and pings it from the
// kernel side of that device.
func TestPingOverTAP(t *testing.T) {
	needPing(t)
	bin := buildTas(t)
	lab := testnet.NewT(t)
	host, err := lab.Host("tap")
	if err != nil {
		t.Fatal(err)
	}
	tas := startTas(t, host, bin, "--ip-addr=10.202.0.1/24", "--nic=tap:gtap0")
	if err := host.Addr("gtap0", "10.202.0.2/24"); err != nil {
		t.Fatal(err)
	}
	ping(t, host, "10.202.0.1")
	stopTas(t, tas)
	if _, err := host.IP("link", "show", "gtap0"); err == nil {
		t.Fatal("the TAP device tas created is still there after it stopped")
	}
}
