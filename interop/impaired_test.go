package interop

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotas/internal/impair"
	"gotas/internal/testnet"
)

// Transfers through the impairment bridge at 1% loss with reordering, in
// both directions, arrive intact; the bridge's counters prove the link
// really lost and reordered frames.
func TestTransfersOverLossyReorderingLink(t *testing.T) {
	lab := testnet.NewT(t)
	svc, err := lab.Host("svc")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := lab.Host("peer")
	if err != nil {
		t.Fatal(err)
	}
	link := func(seed int64) impair.Config {
		return impair.Config{Seed: seed, Loss: 0.01, Reorder: 0.02, ReorderDelay: 300 * time.Microsecond}
	}
	br, err := lab.Bridge(svc, "s0", peer, "p0", link(1), link(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	if err := peer.Addr("p0", linuxIP+"/24"); err != nil {
		t.Fatal(err)
	}
	tp := &topo{lab: lab, svc: svc, peer: peer}
	tp.startGotas(t, "afxdp:s0")

	lc, gc := tp.linuxToGotas(t, "9100")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine: %+v", tp.stack.Engine().EngineStats(0))
			out, _ := peer.Run(context.Background(), "ss", "-tinoe")
			t.Logf("peer sockets:\n%s", out)

		}
	})
	t.Log("linux->gotas:")
	transfer(t, lc, gc, 11, 32<<20, 2*time.Minute)
	before := tp.stack.Engine().EngineStats(0)
	t.Log("gotas->linux:")
	transfer(t, gc, lc, 12, 32<<20, 2*time.Minute)
	after := tp.stack.Engine().EngineStats(0)
	linuxReference(t, svc, peer)
	t.Logf("gotas->linux: %d retransmits, %d fast retransmits, %d loss probes, %d RTOs",
		after.TxRetransmits-before.TxRetransmits, after.FastRetx-before.FastRetx,
		after.LossProbes-before.LossProbes, after.RTOs-before.RTOs)

	lr, rl := br.Stats()
	t.Logf("gotas->linux: %d lost, %d reordered; linux->gotas: %d lost, %d reordered", lr.Lost, lr.Reordered, rl.Lost, rl.Reordered)
	if lr.Lost == 0 || rl.Lost == 0 || lr.Reordered == 0 || rl.Reordered == 0 {
		t.Fatalf("the link did not impair both directions: %+v / %+v", lr, rl)
	}
	if tp.stack.Engine().EngineStats(0).TxRetransmits == 0 {
		t.Fatal("gotas never retransmitted over a lossy link")
	}
	// SACK recovery, not the RTO, must repair the losses: every RTO idles
	// the connection for 200 ms (RTOMin). Before gotas's timestamps ticked
	// in milliseconds, Linux's PAWS check discarded hundreds of gotas's
	// segments (TcpExtPAWSEstab), and before tail loss probes every lost
	// ACK at the end of a flight cost an RTO: 30-40 RTOs per 32 MiB.
	if fr, rtos := after.FastRetx-before.FastRetx, after.RTOs-before.RTOs; fr == 0 || rtos > 8 {
		t.Errorf("gotas->linux: %d fast retransmits, %d RTOs; want SACK recovery and few RTOs", fr, rtos)
	}
	if n := linuxCounter(t, peer, "TcpExtPAWSEstab"); n > 50 {
		t.Errorf("Linux discarded %d of gotas's segments as PAWS failures", n)
	}
}

// linuxReference moves the same bytes between Linux's own TCP on both
// ends of the same bridge (an address on the service's interface that the
// XDP program passes to Linux), so a run reports gotas and Linux side by
// side under the same loss and reordering.
func linuxReference(t *testing.T, svc, peer *testnet.Host) {
	t.Helper()
	if err := svc.Addr("s0", linuxSvcIP+"/24"); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := svc.Do(func() (err error) { ln, err = net.Listen("tcp", linuxSvcIP+":9200"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var pc net.Conn
	if err := peer.Do(func() (err error) { pc, err = net.Dial("tcp", linuxSvcIP+":9200"); return }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	t.Log("linux->linux (reference, toward the service host):")
	transfer(t, pc, sc, 13, 32<<20, 2*time.Minute)
	t.Log("linux->linux (reference, from the service host):")
	transfer(t, sc, pc, 14, 32<<20, 2*time.Minute)
}

// linuxCounter reads one of the kernel's SNMP counters (nstat's names) in
// host h's namespace; the test is skipped if nstat is missing.
func linuxCounter(t *testing.T, h *testnet.Host, name string) uint64 {
	t.Helper()
	needTool(t, "nstat")
	out, err := h.Run(context.Background(), "nstat", "-az", name)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("nstat %s: %q", name, line)
			}
			return n
		}
	}
	t.Fatalf("nstat has no %s:\n%s", name, out)
	return 0
}
