package slowpath

import (
	"testing"

	"gotas/internal/nic"
	"gotas/internal/wire"
)

// TestTinyPeerMSS: a SYN with MSS 1 and timestamps used to give the flow an
// MSS of 1-12, which wraps; the peer MSS is raised to Linux's TCP_MIN_MSS
// (88), so data goes out in segments of 88-12 bytes.
func TestTinyPeerMSS(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.app.onConn = func(c *appConn) { c.sendTotal = 2000 }
	r.listen(80, 16)
	sa := r.handshake(40000, 1000, synOpts(1, 5))
	if !sa.opts.Has(wire.OptMSS) || sa.opts.MSS != 1460 {
		t.Fatalf("SYN-ACK MSS %v %d, want 1460", sa.opts.Has(wire.OptMSS), sa.opts.MSS)
	}
	if len(r.app.order) != 1 {
		t.Fatal("not accepted")
	}
	in, _ := r.s.ConnInfo(r.app.order[0].h)
	if in.PeerMSS != tcpMinMSS {
		t.Fatalf("peer MSS %d, want %d", in.PeerMSS, tcpMinMSS)
	}
	r.settle()
	data := 0
	for _, p := range tcpOut(t, r.take()) {
		n := len(p.tcp.Payload())
		if n == 0 {
			continue
		}
		data++
		if n != tcpMinMSS-tsOptionLen {
			t.Fatalf("data segment of %d bytes, want %d", n, tcpMinMSS-tsOptionLen)
		}
	}
	if data == 0 {
		t.Fatal("no data sent")
	}
}

// TestJumboMTUAdvertisesFrameMSS: an interface MTU above what the
// back-end's frames carry must not raise the MSS we advertise.
func TestJumboMTUAdvertisesFrameMSS(t *testing.T) {
	for _, c := range []struct{ mtu, want int }{{9000, 1460}, {1500, 1460}, {1280, 1240}, {0, 1460}, {60, tcpMinMSS}} {
		r := newRaw(t, testConfig(ipA), func(p nic.Port) nic.Port { return mtuPort{p, c.mtu} })
		r.listen(80, 16)
		sa := r.handshake(40000, 1000, synOpts(9000, 5))
		if int(sa.opts.MSS) != c.want {
			t.Errorf("MTU %d: advertised MSS %d, want %d", c.mtu, sa.opts.MSS, c.want)
		}
		if len(r.app.order) != 1 {
			t.Fatalf("MTU %d: not accepted", c.mtu)
		}
		in, _ := r.s.ConnInfo(r.app.order[0].h)
		if got := r.s.sp.flowMSS(r.s.sp.byID[in.FlowID]); int(got) != c.want-tsOptionLen {
			t.Errorf("MTU %d: flow MSS %d, want %d", c.mtu, got, c.want-tsOptionLen)
		}
	}
}
