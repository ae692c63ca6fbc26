package slowpath

import (
	"bytes"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
)

var linkDelay = impair.Config{Delay: 20 * time.Microsecond}

// transfer runs one connection B -> A:80 that sends nAB bytes from B and
// nBA from A, both sides shut down and close, and checks the data.
func transfer(t *testing.T, p *pair, nAB, nBA int, limit time.Duration) (*appConn, *appConn) {
	t.Helper()
	p.pa.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = nBA, true, true }
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = nAB, true, true }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	cookie := p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(limit, func() bool {
		if ev, ok := p.pb.opened[cookie]; ok && ev.Err != 0 {
			t.Fatalf("connect: %v", ev.Err)
		}
		return len(p.pa.order) == 1 && len(p.pb.order) == 1 && p.pa.order[0].closed && p.pb.order[0].closed
	})
	ca, cb := p.pa.order[0], p.pb.order[0]
	if ca.recvd != nAB || cb.recvd != nBA || ca.bad != 0 || cb.bad != 0 {
		t.Fatalf("A got %d (bad %d) of %d, B got %d (bad %d) of %d", ca.recvd, ca.bad, nAB, cb.recvd, cb.bad, nBA)
	}
	if !bytes.Equal(ca.sum.Sum(nil), streamSum(nAB)) || !bytes.Equal(cb.sum.Sum(nil), streamSum(nBA)) {
		t.Fatal("checksum mismatch")
	}
	return ca, cb
}

func TestHandshakeOptions(t *testing.T) {
	for mask := range 16 {
		sack, ts, ws, ecn := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0
		name := fmt.Sprintf("sack=%v,ts=%v,ws=%v,ecn=%v", sack, ts, ws, ecn)
		t.Run(name, func(t *testing.T) {
			// A has everything on; B offers only the options under test,
			// so the negotiated set is B's.
			cb := testConfig(ipB)
			cb.NoSACK, cb.NoTimestamps, cb.NoWindowScale, cb.NoECN = !sack, !ts, !ws, !ecn
			p := newPair(t, testConfig(ipA), cb, linkDelay, linkDelay)
			var infoA, infoB ConnInfo
			p.pa.onConn = func(c *appConn) {
				c.sendTotal, c.shutdown, c.close = 300_000, true, true
				infoA, _ = p.a.ConnInfo(c.h)
			}
			p.pb.onConn = func(c *appConn) {
				c.sendTotal, c.shutdown, c.close = 500_000, true, true
				infoB, _ = p.b.ConnInfo(c.h)
			}
			p.pa.listen(80)
			p.run(time.Second, func() bool { return p.pa.listened })
			p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
			p.run(5*time.Second, func() bool {
				return len(p.pa.order) == 1 && len(p.pb.order) == 1 && p.pa.order[0].closed && p.pb.order[0].closed
			})
			for _, in := range []ConnInfo{infoA, infoB} {
				if in.SACK != sack || in.TS != ts || in.WS != ws || in.ECN != ecn {
					t.Errorf("negotiated %+v", in)
				}
				if ws && (in.SndShift != 5 || in.RcvShift != 5) {
					t.Errorf("window shifts %d/%d, want 5/5 for 1 MiB rings (65535<<4 falls 16 bytes short)", in.SndShift, in.RcvShift)
				}
			}
			ca, cb2 := p.pa.order[0], p.pb.order[0]
			if ca.recvd != 500_000 || cb2.recvd != 300_000 || ca.bad+cb2.bad != 0 {
				t.Fatalf("A got %d B got %d, bad %d", ca.recvd, cb2.recvd, ca.bad+cb2.bad)
			}
		})
	}
}

func TestTransfer50MB(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	wall := time.Now()
	transfer(t, p, 50<<20, 50<<20, 60*time.Second)
	el := time.Since(wall)
	t.Logf("100 MB (50 MB each way) in %v wall: %.0f Mbit/s per direction through both stacks on one goroutine",
		el, float64(50<<20)*8/el.Seconds()/1e6)
}

func TestConnectRefused(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	start := p.now()
	cookie := p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 81))
	p.run(time.Second, func() bool { _, ok := p.pb.opened[cookie]; return ok })
	if ev := p.pb.opened[cookie]; ev.Err != syscall.ECONNREFUSED {
		t.Fatalf("err %v, want ECONNREFUSED", ev.Err)
	}
	if d := time.Duration(p.now() - start); d > 5*time.Millisecond {
		t.Fatalf("refused after %v", d)
	}
}

func TestConnectTimeout(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	// 10.0.0.9 resolves (statically) to A's MAC, but A does not own it:
	// SYNs vanish and B must give up after its retries.
	silent := netip.MustParseAddr("10.0.0.9")
	p.b.AddNeighbor(silent, p.a.mac)
	start := p.now()
	cookie := p.pb.connect(netip.AddrPortFrom(silent, 80))
	p.run(10*time.Second, func() bool { _, ok := p.pb.opened[cookie]; return ok })
	if ev := p.pb.opened[cookie]; ev.Err != syscall.ETIMEDOUT {
		t.Fatalf("err %v, want ETIMEDOUT", ev.Err)
	}
	// 20 ms doubling, 3 retransmissions: 20+40+80+160 ms.
	if d := time.Duration(p.now() - start); d < 300*time.Millisecond || d > 320*time.Millisecond {
		t.Fatalf("timed out after %v, want 300 ms", d)
	}
	if r := p.b.Resources(); r.Flows != 0 || r.Ports != 0 {
		t.Fatalf("leaked %+v", r)
	}
}

func TestHostUnreachable(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	cookie := p.pb.connect(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.77"), 80))
	p.run(10*time.Second, func() bool { _, ok := p.pb.opened[cookie]; return ok })
	if ev := p.pb.opened[cookie]; ev.Err != syscall.EHOSTUNREACH {
		t.Fatalf("err %v, want EHOSTUNREACH", ev.Err)
	}
	if st := p.b.Stats(); st.Host.ARPReplies != 0 || p.b.sp.arp.requests != 3 {
		t.Fatalf("ARP requests %d, want 3", p.b.sp.arp.requests)
	}
}

func TestHalfClose(t *testing.T) {
	for _, dir := range []string{"A-first", "B-first"} {
		t.Run(dir, func(t *testing.T) {
			p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
			first, second := p.pa, p.pb
			if dir == "B-first" {
				first, second = p.pb, p.pa
			}
			// first sends 100 KB and shuts down at once; second keeps
			// sending 1 MB afterwards over the half-closed connection.
			first.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 100_000, true, true }
			second.onConn = func(c *appConn) { c.sendTotal, c.close = 1_000_000, true }
			p.pa.listen(80)
			p.run(time.Second, func() bool { return p.pa.listened })
			p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
			p.run(5*time.Second, func() bool {
				return len(second.order) == 1 && second.order[0].rxClosed && second.order[0].recvd == 100_000
			})
			s := second.order[0]
			p.run(5*time.Second, func() bool { return first.order[0].recvd == 1_000_000 })
			if first.order[0].rxClosed {
				t.Fatal("first saw a FIN before second shut down")
			}
			s.shutdown = true
			p.run(5*time.Second, func() bool { return first.order[0].closed && second.order[0].closed })
			if first.order[0].bad+second.order[0].bad != 0 {
				t.Fatal("corrupt data")
			}
			// The side that closed first is in TIME_WAIT, then everything
			// is released.
			fs := p.a
			if dir == "B-first" {
				fs = p.b
			}
			if r := fs.Resources(); r.TimeWait != 1 || r.Flows != 0 {
				t.Fatalf("after close: %+v, want 1 TIME_WAIT and no flows", r)
			}
			p.run(time.Second, func() bool { return p.a.Resources().TimeWait+p.b.Resources().TimeWait == 0 })
			if ra, rb := p.a.Resources(), p.b.Resources(); ra.Flows+rb.Flows+ra.Ports+rb.Ports-1 != 0 || ra.Conns+rb.Conns != 0 {
				t.Fatalf("leak: A %+v B %+v (A's listener holds one port)", ra, rb)
			}
		})
	}
}

func TestResetMidTransfer(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	p.pa.onConn = func(c *appConn) { c.sendTotal = 10 << 20 }
	p.pb.onConn = func(c *appConn) { c.sendTotal = 10 << 20 }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(5*time.Second, func() bool { return len(p.pa.order) == 1 && p.pa.order[0].recvd > 1<<20 })
	// A aborts: Close without FINs sends a RST.
	ca := p.pa.order[0]
	if err := p.pa.ctx.Close(ca.h); err != nil {
		t.Fatal(err)
	}
	ca.closed = true
	cb := p.pb.order[0]
	p.run(time.Second, func() bool { return cb.err != 0 })
	if cb.err != syscall.ECONNRESET {
		t.Fatalf("B got %v, want ECONNRESET", cb.err)
	}
	if _, _, err := p.pb.ctx.TxAlloc(cb.h, 1); err == nil {
		t.Fatal("TxAlloc works on a reset connection")
	}
	if err := p.pb.ctx.Close(cb.h); err != nil {
		t.Fatal(err)
	}
	cb.closed = true
	p.run(time.Second, func() bool { return p.a.Resources().Flows+p.b.Resources().Flows == 0 })
	if r := p.b.Resources(); r.Ports != 0 || r.Conns != 0 {
		t.Fatalf("B leaked %+v", r)
	}
	if p.a.Stats().RstsSent == 0 || p.b.Stats().Resets != 1 {
		t.Fatalf("A sent %d RSTs, B saw %d resets", p.a.Stats().RstsSent, p.b.Stats().Resets)
	}
}

func TestSequentialConnections(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 500
	}
	p := newPair(t, testConfig(ipA), testConfig(ipB), linkDelay, linkDelay)
	p.pa.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 100, true, true }
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 100, true, true }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	ra0, rb0 := p.a.Resources(), p.b.Resources()
	for i := range n {
		p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
		p.run(time.Second, func() bool {
			return len(p.pb.order) == i+1 && p.pb.order[i].closed && len(p.pa.order) == i+1 && p.pa.order[i].closed
		})
		if c := p.pa.order[i]; c.recvd != 100 || c.bad != 0 {
			t.Fatalf("conn %d: got %d bytes", i, c.recvd)
		}
	}
	p.run(time.Second, func() bool {
		ra, rb := p.a.Resources(), p.b.Resources()
		return ra == ra0 && rb == rb0
	})
	if len(p.pb.ctx.Conns()) != 0 {
		t.Fatal("client context still tracks connections")
	}
}

// lossyLink drops 5% and reorders 5% of frames.
func lossyLink(seed int64) impair.Config {
	return impair.Config{Seed: seed, Loss: 0.05, Reorder: 0.05, ReorderDelay: 100 * time.Microsecond,
		Delay: 50 * time.Microsecond}
}

func TestLossAndReordering(t *testing.T) {
	for _, sack := range []bool{true, false} {
		t.Run(fmt.Sprintf("sack=%v", sack), func(t *testing.T) {
			run := func() string {
				ca, cb := testConfig(ipA), testConfig(ipB)
				ca.NoSACK, cb.NoSACK = !sack, !sack
				ca.SynRetries, cb.SynRetries = 8, 8
				p := newPair(t, ca, cb, lossyLink(1), lossyLink(2))
				transfer(t, p, 4<<20, 2<<20, 120*time.Second)
				ea, eb := p.a.EngineStats(0), p.b.EngineStats(0)
				if ea.TxRetransmits+eb.TxRetransmits == 0 || ea.RxOOO+eb.RxOOO == 0 {
					t.Fatalf("no loss recovery exercised: %+v %+v", ea, eb)
				}
				if ea.FastRetx+eb.FastRetx == 0 {
					t.Fatalf("no fast retransmit: A %+v", ea)
				}
				return fmt.Sprintf("A %+v\nB %+v\nt=%d", ea, eb, p.now())
			}
			first, second := run(), run()
			if first != second {
				t.Fatalf("same seeds, different runs:\n%s\n---\n%s", first, second)
			}
			t.Log(first)
		})
	}
}

func TestZeroWindow(t *testing.T) {
	cfg := testConfig(ipA)
	cfg.RxBuf = 64 << 10
	p := newPair(t, cfg, testConfig(ipB), linkDelay, linkDelay)
	p.pa.onConn = func(c *appConn) { c.hold, c.close = true, true }
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 1<<20, true, true }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	// A does not read: B fills A's 64 KiB ring and stalls.
	p.run(time.Second, func() bool { return len(p.pa.order) == 1 && p.pa.order[0].recvd == 64<<10 })
	p.run(3*time.Second, func() bool { return p.b.EngineStats(0).Probes >= 3 })
	if got := p.pa.order[0].recvd; got != 64<<10 {
		t.Fatalf("received %d with a full ring", got)
	}
	p.pa.order[0].hold = false
	p.pa.order[0].shutdown = true
	p.run(10*time.Second, func() bool { return p.pa.order[0].closed && p.pb.order[0].closed })
	if c := p.pa.order[0]; c.recvd != 1<<20 || c.bad != 0 {
		t.Fatalf("received %d bad %d", c.recvd, c.bad)
	}
}

// TestRealTime runs both stacks on their own goroutines (cores and slow
// paths blocking on doorbells) over a real-time memnic pair.
func TestRealTime(t *testing.T) {
	portA, portB := memnic.Pair(impair.Config{}, impair.Config{})
	defer portA.Close()
	defer portB.Close()
	ca, cb := testConfig(ipA), testConfig(ipB)
	ca.RTOMin, cb.RTOMin = 50*time.Millisecond, 50*time.Millisecond
	// Real time on a loaded machine: the virtual-time tests' 20 ms ARP
	// and SYN timers can expire while a loop waits for a CPU.
	ca.ARPRetry, cb.ARPRetry = 200*time.Millisecond, 200*time.Millisecond
	ca.SynRTO, cb.SynRTO = 200*time.Millisecond, 200*time.Millisecond
	a, err := NewStack(portA, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStack(portB, cb)
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	b.Start()
	defer a.Stop()
	defer b.Stop()
	ctxA, _ := a.NewContext()
	ctxB, _ := b.NewContext()
	ctxA.Listen(80, 4)
	connsA := map[appif.Handle]*rtConn{}
	drive(t, ctxA, 5*time.Second, connsA, nil, func() bool { return true })
	time.Sleep(5 * time.Millisecond)
	data := payload(16 << 20)
	if _, err := ctxB.Connect(netip.AddrPortFrom(ipA.Addr(), 80)); err != nil {
		t.Fatal(err)
	}
	var cB *rtConn
	connsB := map[appif.Handle]*rtConn{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		drive(t, ctxA, 30*time.Second, connsA, func(appif.Event) *rtConn { return &rtConn{echo: true, shutOut: true} },
			func() bool { return len(connsA) == 1 && allClosed(connsA) })
	}()
	start := time.Now()
	drive(t, ctxB, 30*time.Second, connsB, func(appif.Event) *rtConn {
		cB = &rtConn{out: data, shutOut: true}
		return cB
	}, func() bool { return cB != nil && cB.closed })
	<-done
	if !bytes.Equal(cB.got.Bytes(), data) {
		t.Fatalf("echo: %d of %d bytes, or different", cB.got.Len(), len(data))
	}
	t.Logf("16 MiB echoed in %v over real-time memnic with both stacks running", time.Since(start))
}

func allClosed(m map[appif.Handle]*rtConn) bool {
	for _, c := range m {
		if !c.closed {
			return false
		}
	}
	return true
}

// TestECN sends through a rate-limited link that CE-marks above a queue of
// 8 frames: the receiver echoes ECE, the sender counts ECN-marked bytes
// and reduces its window; nothing is lost.
func TestECN(t *testing.T) {
	link := impair.Config{Delay: 20 * time.Microsecond, RateBps: 200e6, ECNThreshold: impair.Limit{Frames: 8}}
	p := newPair(t, testConfig(ipA), testConfig(ipB), link, link)
	var flow uint32
	p.pb.onConn = func(c *appConn) {
		c.sendTotal, c.shutdown, c.close = 4<<20, true, true
		in, _ := p.b.ConnInfo(c.h)
		flow = in.FlowID
	}
	p.pa.onConn = func(c *appConn) { c.shutdown, c.close = true, true }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(10*time.Second, func() bool { return len(p.pb.order) == 1 && p.pb.order[0].closed })
	ctr := p.b.FlowCounters(flow)
	if ctr.ECNBytes.Load() == 0 || ctr.AckedBytes.Load() != 4<<20 {
		t.Fatalf("ECN bytes %d, acked %d", ctr.ECNBytes.Load(), ctr.AckedBytes.Load())
	}
	if st := p.b.EngineStats(0); st.TxRetransmits != 0 {
		t.Fatalf("%d retransmissions on a lossless link", st.TxRetransmits)
	}
	t.Logf("ECN-marked bytes %d of %d, srtt %d µs", ctr.ECNBytes.Load(), ctr.AckedBytes.Load(), ctr.SRTT.Load())
}

// TestLossRecoveryWithoutRTO: on a link that loses 1% of frames each way
// (data and ACKs) but never reorders, SACK recovery must repair every loss
// without a retransmission timeout: three SACKs start fast retransmit, a
// tail loss probe repairs a lost tail or a lost last ACK, and a lost
// retransmission is sent again when the probe timer finds recovery
// stalled. Before tail loss probes every lost ACK at the end of a flight
// cost an RTO.
func TestLossRecoveryWithoutRTO(t *testing.T) {
	lossy := func(seed int64) impair.Config {
		return impair.Config{Seed: seed, Loss: 0.01, Delay: 20 * time.Microsecond}
	}
	p := newPair(t, testConfig(ipA), testConfig(ipB), lossy(3), lossy(4))
	transfer(t, p, 8<<20, 0, 60*time.Second)
	eb := p.b.EngineStats(0)
	t.Logf("sender: %d retransmits, %d fast retransmits, %d loss probes, %d RTOs",
		eb.TxRetransmits, eb.FastRetx, eb.LossProbes, eb.RTOs)
	if eb.FastRetx == 0 || eb.RTOs != 0 {
		t.Fatalf("sender B: FastRetx %d RTOs %d, want fast retransmits and no RTO", eb.FastRetx, eb.RTOs)
	}
}
