package slowpath

import (
	"gotas/internal/fastpath"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotas/internal/impair"
)

// procStatus reads a "Name:   N kB" field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// The default configuration holds 10,000 concurrent connections, each
// having carried a small message both ways, at well under 16 KiB of
// shared memory per connection and stack (the memfd is sparse: an idle
// connection costs the ring pages its bytes went through), and closing
// them gives the ring pages back.
func TestDefaultConfigHoldsManyIdleConns(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short or race: 10,000 connections take long under the race detector")
	}
	const conns, msg, batch = 10_000, 64, 500
	cfg := func(p netip.Prefix) Config {
		// Default sizes (MaxFlows, RegionSize, RxBuf, TxBuf); test timers.
		return Config{Prefix: p, MSL: 10 * time.Millisecond, SynRTO: 20 * time.Millisecond, SynRetries: 3,
			RTOMin: 5 * time.Millisecond, ARPRetry: 20 * time.Millisecond}
	}
	p := newPair(t, cfg(ipA), cfg(ipB), impair.Config{}, impair.Config{})
	if got := p.b.cfg.MaxFlows; got < 100_000 {
		t.Fatalf("default MaxFlows %d", got)
	}
	p.pa.onConn = func(c *appConn) { c.sendTotal = msg }
	p.pb.onConn = func(c *appConn) { c.sendTotal = msg }
	if _, err := p.pb.ctx.Listen(80, maxBacklog); err != nil {
		t.Fatal(err)
	}
	p.run(time.Second, func() bool { return p.pb.listened })
	base := procStatus(t, "RssShmem")
	dst := netip.AddrPortFrom(ipB.Addr(), 80)
	for n := 0; n < conns; {
		k := min(batch, conns-n)
		for range k {
			p.pa.connect(dst)
		}
		n += k
		p.run(10*time.Second, func() bool { return len(p.pa.opened) == n && len(p.pb.conns) == n })
	}
	p.run(10*time.Second, func() bool {
		for _, a := range []*app{p.pa, p.pb} {
			for _, c := range a.order {
				if c.recvd < msg || c.err != 0 {
					return false
				}
			}
		}
		return true
	})
	for _, ev := range p.pa.opened {
		if ev.Err != 0 {
			t.Fatalf("connect: %v", ev.Err)
		}
	}
	if r := p.b.Resources(); r.Conns != conns || r.Flows != conns {
		t.Fatalf("server holds %+v, want %d connections", r, conns)
	}
	held := procStatus(t, "RssShmem")
	// Two stacks share this process: each holds conns connections.
	per := float64(held-base) / (2 * conns)
	t.Logf("RssShmem %d KiB -> %d KiB with %d connections: %.0f bytes per connection and stack", base>>10, held>>10, conns, per)
	if per > 16<<10 {
		t.Fatalf("%.0f bytes of shared memory per idle connection, want at most 16 KiB", per)
	}

	// Closing gives the ring pages back.
	for _, a := range []*app{p.pa, p.pb} {
		for _, c := range a.order {
			c.shutdown, c.close = true, true
		}
	}
	p.run(10*time.Second, func() bool {
		ra, rb := p.a.Resources(), p.b.Resources()
		return ra.Flows == 0 && rb.Flows == 0
	})
	after := procStatus(t, "RssShmem")
	t.Logf("RssShmem %d KiB after closing; %d ring bytes discarded", after>>10, p.b.Stats().RingBytesDiscarded)
	// The control queues (KTX and KRX, per stack) are fixed memory that
	// the connection storm touched; only the rings are per connection.
	queues := uint64(2 * 2 * ctlSlots * fastpath.CtlSlot)
	if after > base+(held-base)/10+queues {
		t.Fatalf("RssShmem %d KiB after closing every connection (%d KiB before, %d KiB with them)", after>>10, base>>10, held>>10)
	}
}
