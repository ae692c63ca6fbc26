package slowpath

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"gotas/internal/cc"
)

// pacedTransfer sends n bytes B -> A and returns the virtual time it took.
func pacedTransfer(t *testing.T, p *pair, n int) time.Duration {
	t.Helper()
	t0 := p.clock.Now()
	transfer(t, p, n, 0, 5*time.Second)
	return p.clock.Now().Sub(t0)
}

// The slow path's controller sets the rate, from the flow's first
// segment on, and the pacer enforces it: a const-rate flow at 40 Mbit/s
// moves 1 MB in about 8e6/40e6 = 200 ms (the link itself is unlimited:
// 1 MB takes a few ms without the rate).
func TestCCRateIsEnforced(t *testing.T) {
	cfg := testConfig(ipB)
	cfg.CC, cfg.CCParams = "const-rate", cc.Params{ConstBps: 40_000_000}
	p := newPair(t, testConfig(ipA), cfg, linkDelay, linkDelay)
	took := pacedTransfer(t, p, 1_000_000)
	if took < 180*time.Millisecond || took > 260*time.Millisecond {
		t.Fatalf("1 MB at 40 Mbit/s took %v, want about 200 ms", took)
	}
}

// A controller whose rate moves (dctcp-win's window grows in slow start)
// kicks the core with each new rate.
func TestCCKicksTheCore(t *testing.T) {
	cfg := testConfig(ipB)
	cfg.CC = "dctcp-win"
	p := newPair(t, testConfig(ipA), cfg, linkDelay, linkDelay)
	pacedTransfer(t, p, 1_000_000)
	if k := p.b.Stats().CCKicks; k == 0 {
		t.Fatal("no rate change reached the core (CCKicks 0)")
	}
}

// A connection's own choice overrides the stack's default (reno), and the
// default leaves the window in charge: no rate, no kicks.
func TestCCPerConnection(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	if took := pacedTransfer(t, p, 1_000_000); took > 50*time.Millisecond || p.b.Stats().CCKicks != 0 {
		t.Fatalf("reno: 1 MB took %v with %d kicks, want a few ms and none", took, p.b.Stats().CCKicks)
	}
	cfg := testConfig(ipB)
	cfg.CCParams = cc.Params{ConstBps: 40_000_000}
	p = newPair(t, testConfig(ipA), cfg, linkDelay, linkDelay)
	id, _ := cc.ID("const-rate")
	p.pb.ccID = id
	if took := pacedTransfer(t, p, 1_000_000); took < 180*time.Millisecond {
		t.Fatalf("const-rate chosen per connection: 1 MB took %v, want about 200 ms", took)
	}
}

// An application's congestion-control number is validated: an unknown one
// fails the connect with EINVAL; an unknown default fails NewStack.
func TestCCInvalidChoice(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	p.pb.ccID = 200
	cookie := p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(time.Second, func() bool { _, ok := p.pb.opened[cookie]; return ok })
	if ev := p.pb.opened[cookie]; ev.Err != syscall.EINVAL {
		t.Fatalf("connect with cc 200: %v, want EINVAL", ev.Err)
	}
	cfg := testConfig(ipB)
	cfg.CC = "cubic"
	if _, err := NewStack(nil, cfg); !errors.Is(err, cc.ErrUnknown) {
		t.Fatalf("NewStack with CC cubic: %v, want cc.ErrUnknown", err)
	}
}
