package testnet

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gotas/internal/impair"
)

// bridged makes hosts l (10.99.0.1) and r (10.99.0.2) joined by a bridge
// through eth0 in each.
func bridged(t *testing.T, lab *Lab, lr, rl impair.Config) (l, r *Host, br *Bridge) {
	t.Helper()
	var err error
	if l, err = lab.Host("l"); err != nil {
		t.Fatal(err)
	}
	if r, err = lab.Host("r"); err != nil {
		t.Fatal(err)
	}
	if br, err = lab.Bridge(l, "eth0", r, "eth0", lr, rl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	if err := l.Addr("eth0", "10.99.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := r.Addr("eth0", "10.99.0.2/24"); err != nil {
		t.Fatal(err)
	}
	return l, r, br
}

// transfer sends size pseudo-random bytes over kernel TCP from l to r and
// checks they arrive intact. It returns the time from connect to the last
// byte received.
func transfer(t *testing.T, l, r *Host, size int) time.Duration {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	want := sha256.Sum256(data)

	var ln net.Listener
	if err := r.Do(func() (err error) { ln, err = net.Listen("tcp", "10.99.0.2:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum  [32]byte
		n    int64
		done time.Time
		err  error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		n, err := io.Copy(h, c)
		var s result
		copy(s.sum[:], h.Sum(nil))
		s.n, s.done, s.err = n, time.Now(), err
		res <- s
	}()
	var c net.Conn
	if err := l.Do(func() (err error) { c, err = net.DialTimeout("tcp", "10.99.0.2:7000", 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(2 * time.Minute))
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	s := <-res
	if s.err != nil {
		t.Fatal(s.err)
	}
	if s.n != int64(size) || s.sum != want {
		t.Fatalf("received %d bytes with sha256 %x; sent %d with %x", s.n, s.sum[:8], size, want[:8])
	}
	return s.done.Sub(start)
}

func logStats(t *testing.T, br *Bridge) (lr, rl BridgeStats) {
	lr, rl = br.Stats()
	t.Logf("left->right %+v", lr)
	t.Logf("right->left %+v", rl)
	for _, s := range []BridgeStats{lr, rl} {
		if s.TooBig != 0 || s.SendErrors != 0 {
			t.Errorf("frames too big %d, send errors %d: offloads leak through, or the egress overflowed", s.TooBig, s.SendErrors)
		}
	}
	return lr, rl
}

const mb = 1 << 20

func TestBridgeTransparent(t *testing.T) {
	lab, err := New("brtr")
	if err == ErrNotRoot {
		t.Skip("skipping: needs root for network namespaces")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	l, r, br := bridged(t, lab, impair.Config{}, impair.Config{})
	took := transfer(t, l, r, 10*mb)
	t.Logf("10 MB in %v: %.0f Mbit/s", took, 10*mb*8/took.Seconds()/1e6)

	// One Ethernet: l resolved r's address to r's own MAC.
	mac, err := r.MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	neigh, _ := l.IP("neigh", "show", "10.99.0.2")
	if !strings.Contains(neigh, net.HardwareAddr(mac[:]).String()) {
		t.Errorf("l's neighbour entry %q does not hold r's MAC %x", neigh, mac)
	}
	lr, rl := logStats(t, br)
	if lr.Received < 10*mb/1514 || lr.Delivered != lr.Received || lr.Sent != lr.Delivered || rl.Sent == 0 || lr.Lost != 0 {
		t.Errorf("an unimpaired bridge should pass every frame")
	}

	// Close stops forwarding; Lab.Close deletes the middle namespace too.
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Do(func() error {
		c, err := net.DialTimeout("tcp", "10.99.0.2:7001", 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Error("connected through a closed bridge")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), lab.Prefix()) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
}

func TestBridgeLossAndReorder(t *testing.T) {
	lab := NewT(t)
	lossy := impair.Config{Seed: 1, Loss: 0.02, Reorder: 0.05, ReorderDelay: time.Millisecond, Delay: 200 * time.Microsecond}
	back := lossy
	back.Seed = 2
	l, r, br := bridged(t, lab, lossy, back)
	took := transfer(t, l, r, 10*mb)
	t.Logf("10 MB at 2%% loss, 5%% reordering in %v: %.0f Mbit/s", took, 10*mb*8/took.Seconds()/1e6)
	lr, _ := logStats(t, br)
	if lr.Lost == 0 || lr.Reordered == 0 {
		t.Fatal("the bridge reports no loss or no reordering")
	}
	if share := float64(lr.Lost) / float64(lr.Arrived); share < 0.015 || share > 0.025 {
		t.Errorf("lost %.2f%% of frames, want 2%%", 100*share)
	}
}

// Timing checks below retry: the bridge runs in real time, and a machine
// busy with other tests can hold its goroutines off the CPU (BridgeStats'
// MaxLate shows by how much). Running early or too fast is never excused.
const attempts = 3

func TestBridgeRateLimit(t *testing.T) {
	lab := NewT(t)
	const rate = 50e6
	l, r, br := bridged(t, lab, impair.Config{RateBps: rate, QueueLimit: impair.Limit{Frames: 300}}, impair.Config{})
	const size = 10 * mb
	for try := 1; ; try++ {
		before, _ := br.Stats()
		took := transfer(t, l, r, size)
		got := size * 8 / took.Seconds()
		lr, _ := logStats(t, br)
		t.Logf("goodput %.1f Mbit/s, on the wire %.1f Mbit/s, through a %.0f Mbit/s link",
			got/1e6, float64(lr.DeliveredBytes-before.DeliveredBytes)*8/took.Seconds()/1e6, rate/1e6)
		if got > 1.2*rate {
			t.Fatalf("goodput %.1f Mbit/s exceeds the link rate", got/1e6)
		}
		if got >= 0.8*rate {
			return
		}
		if try == attempts {
			t.Fatalf("goodput %.1f Mbit/s, want %.0f±20%%", got/1e6, rate/1e6)
		}
	}
}

func TestBridgeLatency(t *testing.T) {
	lab := NewT(t)
	const delay = 20 * time.Millisecond
	cfg := impair.Config{Delay: delay}
	l, r, br := bridged(t, lab, cfg, cfg)
	var ln net.Listener
	if err := r.Do(func() (err error) { ln, err = net.Listen("tcp", "10.99.0.2:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// The first connect also waits for ARP; the next ones take one round
	// trip, SYN there and SYN-ACK back, and should land close to it.
	var times []time.Duration
	for len(times) < 4 || len(times) < 4*attempts && slices.Min(times[1:]) > 2*delay+5*time.Millisecond {
		if err := l.Do(func() error {
			start := time.Now()
			c, err := net.DialTimeout("tcp", "10.99.0.2:7000", 5*time.Second)
			if err != nil {
				return err
			}
			times = append(times, time.Since(start))
			return c.Close()
		}); err != nil {
			t.Fatal(err)
		}
	}
	lr, rl := br.Stats()
	t.Logf("connect times %v with %v each way (bridge late by up to %v, %v)", times, delay, lr.MaxLate, rl.MaxLate)
	if times[0] < 4*delay {
		t.Errorf("first connect took %v; with ARP it needs two round trips, %v", times[0], 4*delay)
	}
	for _, d := range times[1:] {
		if d < 2*delay {
			t.Errorf("connect took %v, less than a round trip of %v", d, 2*delay)
		}
	}
	if fastest := slices.Min(times[1:]); fastest > 2*delay+5*time.Millisecond {
		t.Errorf("connects took at least %v, want about %v", fastest, 2*delay)
	}
}

func TestBridgeECN(t *testing.T) {
	lab := NewT(t)
	cfg := impair.Config{RateBps: 20e6, QueueLimit: impair.Limit{Frames: 200}, ECNThreshold: impair.Limit{Frames: 20}}
	l, r, br := bridged(t, lab, cfg, impair.Config{})
	// l asks for ECN; r accepts it by default.
	if err := l.Do(func() error { return os.WriteFile("/proc/sys/net/ipv4/tcp_ecn", []byte("1"), 0) }); err != nil {
		t.Fatal(err)
	}
	took := transfer(t, l, r, 4*mb)
	lr, _ := logStats(t, br)
	t.Logf("4 MB in %v: %.1f Mbit/s", took, 4*mb*8/took.Seconds()/1e6)
	// Marked frames reached r's kernel with valid checksums, or the
	// transfer would have stalled; and the sender, slowing down on marks,
	// kept the queue mostly below its limit.
	if lr.CEMarked == 0 || lr.TailDropped > lr.CEMarked/4 {
		t.Fatalf("CE-marked %d, tail-dropped %d; want marks and few drops", lr.CEMarked, lr.TailDropped)
	}
}

// TestNoTxOffload checks that the bridge's end interfaces hand whole,
// checksummed frames to the wire.
func TestNoTxOffload(t *testing.T) {
	lab := NewT(t)
	l, _, _ := bridged(t, lab, impair.Config{}, impair.Config{})
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("no ethtool to check with")
	}
	out, err := l.Run(t.Context(), "ethtool", "-k", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tx-checksumming: off") {
		t.Errorf("tx checksum offload is on:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "segmentation: on") && !strings.Contains(line, "[fixed]") {
			t.Errorf("ethtool -k eth0 says %q", strings.TrimSpace(line))
		}
	}
}
