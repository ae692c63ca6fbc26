package interop

import (
	"net"
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

	ln := tp.gotasListen(t, "9100")
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	lc := tp.linuxDial(t, gotasIP+":9100")
	defer lc.Close()
	gc := <-accepted
	defer gc.Close()
	transfer(t, lc, gc, 11, 32<<20, 2*time.Minute)
	transfer(t, gc, lc, 12, 32<<20, 2*time.Minute)

	lr, rl := br.Stats()
	t.Logf("gotas->linux: %d lost, %d reordered; linux->gotas: %d lost, %d reordered", lr.Lost, lr.Reordered, rl.Lost, rl.Reordered)
	if lr.Lost == 0 || rl.Lost == 0 || lr.Reordered == 0 || rl.Reordered == 0 {
		t.Fatalf("the link did not impair both directions: %+v / %+v", lr, rl)
	}
	if tp.stack.Engine().EngineStats(0).TxRetransmits == 0 {
		t.Fatal("gotas never retransmitted over a lossy link")
	}
}
