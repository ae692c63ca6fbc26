package slowpath

import (
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// TestSynCookieHandshake: with a backlog of 1, the first client gets a
// half-open record and the second a SYN cookie; both complete, and the
// cookie connection has the options its SYN asked for.
func TestSynCookieHandshake(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 1)
	syn := func(sport uint16, o *wire.TCPOptions, fl wire.TCPFlags) parsed {
		r.inject(r.frame(seg{sport: sport, dport: 80, seq: 7000, flags: wire.TCPFlagSYN | fl, win: 64240, opts: o}))
		out := tcpOut(t, r.take())
		if len(out) != 1 || out[0].tcp.Flags()&(wire.TCPFlagSYN|wire.TCPFlagACK) != wire.TCPFlagSYN|wire.TCPFlagACK {
			t.Fatalf("port %d: want a SYN-ACK, got %v", sport, out)
		}
		return out[0]
	}
	first := syn(40000, synOpts(1460, 5), 0)
	if r.s.Stats().CookiesSent != 0 || r.s.Resources().Flows != 0 || r.s.Resources().Conns != 1 {
		t.Fatalf("first SYN: %+v %+v (no flow before the final ACK)", r.s.Stats(), r.s.Resources())
	}
	o := synOpts(1400, 1000)
	o.WScale = 9
	sa := syn(40001, o, wire.TCPFlagECE|wire.TCPFlagCWR)
	if r.s.Stats().CookiesSent != 1 || r.s.Resources().Conns != 1 {
		t.Fatalf("second SYN kept state: %+v", r.s.Resources())
	}
	so := sa.opts
	if so.MSS != 1460 || !so.Has(wire.OptWScale|wire.OptSACKPermitted|wire.OptTimestamps) || so.TSEcr != 1000 ||
		sa.tcp.Flags()&wire.TCPFlagECE == 0 {
		t.Fatalf("cookie SYN-ACK options %+v flags %v", so, sa.tcp.Flags())
	}
	if bits := so.TSVal & tsOptMask; bits != 9|tsOptSACK|tsOptECN || so.TSVal > tcp.TSClock(r.now()) {
		t.Fatalf("cookie TSval %#x (option bits %#x)", so.TSVal, bits)
	}
	// A wrong cookie is reset and opens nothing. (As with Linux, a cookie
	// off by less than the MSS-index range would pass: 2 bits of 24.)
	r.inject(r.frame(seg{sport: 40001, dport: 80, seq: 7001, ack: sa.tcp.SeqNum() + 1 + 0x1000, flags: wire.TCPFlagACK, win: 100,
		opts: &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: 1001, TSEcr: so.TSVal}}))
	if out := tcpOut(t, r.take()); len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagRST || r.s.Stats().CookiesBad != 1 {
		t.Fatalf("bad cookie answered with %v", out)
	}
	// Both complete; the cookie one carries data in its ACK.
	r.inject(r.frame(seg{sport: 40000, dport: 80, seq: 7001, ack: first.tcp.SeqNum() + 1, flags: wire.TCPFlagACK, win: 502,
		opts: &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: 6, TSEcr: first.opts.TSVal}}))
	r.inject(r.frame(seg{sport: 40001, dport: 80, seq: 7001, ack: sa.tcp.SeqNum() + 1, flags: wire.TCPFlagACK, win: 100,
		opts: &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: 1001, TSEcr: so.TSVal}, payload: pattern[:100]}))
	if len(r.app.order) != 2 || r.s.Stats().CookiesOK != 1 {
		t.Fatalf("%d accepted, cookies ok %d", len(r.app.order), r.s.Stats().CookiesOK)
	}
	c := r.app.order[1]
	in, _ := r.s.ConnInfo(c.h)
	want := ConnInfo{FlowID: in.FlowID, SACK: true, TS: true, ECN: true, WS: true, SndShift: 9, RcvShift: 5,
		PeerMSS: 1300, LocalPort: 80}
	if in != want {
		t.Fatalf("cookie connection %+v, want %+v", in, want)
	}
	if c.recvd != 100 || c.bad != 0 {
		t.Fatalf("cookie connection received %d (bad %d)", c.recvd, c.bad)
	}
	if r.s.Resources().Flows != 2 {
		t.Fatalf("flows %d", r.s.Resources().Flows)
	}
}

// TestSynCookieWithoutTimestamps: the cookie carries only the MSS.
func TestSynCookieWithoutTimestamps(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 1)
	r.inject(r.frame(seg{sport: 40000, dport: 80, seq: 1, flags: wire.TCPFlagSYN, win: 64240, opts: synOpts(1460, 5)}))
	o := &wire.TCPOptions{Present: wire.OptMSS | wire.OptSACKPermitted | wire.OptWScale, MSS: 1200, WScale: 7}
	r.take()
	r.inject(r.frame(seg{sport: 40001, dport: 80, seq: 5, flags: wire.TCPFlagSYN, win: 64240, opts: o}))
	out := tcpOut(t, r.take())
	if len(out) != 1 || out[0].opts.Present != wire.OptMSS {
		t.Fatalf("cookie SYN-ACK %v, want only an MSS option", out)
	}
	r.inject(r.frame(seg{sport: 40001, dport: 80, seq: 6, ack: out[0].tcp.SeqNum() + 1, flags: wire.TCPFlagACK, win: 1000}))
	if len(r.app.order) != 1 {
		t.Fatal("cookie connection not accepted")
	}
	in, _ := r.s.ConnInfo(r.app.order[0].h)
	if in.PeerMSS != 536 || in.SACK || in.WS || in.TS {
		t.Fatalf("cookie connection %+v", in)
	}
}

// TestSynFlood sends 20,000 SYNs from random addresses and ports to a
// listener while a real client connects: the half-open state stays within
// the backlog, no flow or ring is allocated for the flood, and the client
// completes its handshake (by cookie) and transfers data both ways.
func TestSynFlood(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	p.pa.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 50_000, true, true }
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = 50_000, true, true }
	const backlog = 128
	if _, err := p.pa.ctx.Listen(80, backlog); err != nil {
		t.Fatal(err)
	}
	p.run(time.Second, func() bool { return p.pa.listened })
	base := p.a.Resources()
	q := p.b.port.(*memnic.Port).Queue()
	rng := rand.New(rand.NewSource(1))
	mk := func() []byte {
		src := wire.Addr4{byte(11 + rng.Intn(200)), byte(rng.Intn(256)), byte(rng.Intn(256)), byte(1 + rng.Intn(254))}
		o := synOpts(1460, rng.Uint32())
		return synFrame(p.a.mac, src, uint16(1024+rng.Intn(60000)), p.a.ip, 80, rng.Uint32(), o)
	}
	var cookie uint64
	for i := range 20_000 / 100 {
		batch := make([][]byte, 100)
		for j := range batch {
			batch[j] = mk()
		}
		for len(batch) > 0 {
			n, _ := q.Send(batch)
			batch = batch[n:]
			p.step(50)
		}
		if i == 50 {
			cookie = p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
		}
		p.clock.Advance(time.Millisecond)
		p.step(50)
		if r := p.a.Resources(); r.Conns > backlog+1 || r.Flows > 1 || r.BufferBytes > base.BufferBytes+2*ringArea(256<<10) {
			t.Fatalf("after %d SYNs: %+v (before %+v)", (i+1)*100, r, base)
		}
	}
	p.run(10*time.Second, func() bool {
		if ev, ok := p.pb.opened[cookie]; ok && ev.Err != 0 {
			t.Fatalf("connect during a SYN flood: %v", ev.Err)
		}
		return len(p.pa.order) == 1 && len(p.pb.order) == 1 && p.pa.order[0].closed && p.pb.order[0].closed
	})
	ca, cb := p.pa.order[0], p.pb.order[0]
	if ca.recvd != 50_000 || cb.recvd != 50_000 || ca.bad+cb.bad != 0 {
		t.Fatalf("A got %d B got %d", ca.recvd, cb.recvd)
	}
	st := p.a.Stats()
	t.Logf("SYNs %d, cookies sent %d ok %d, SYN-ACKs %d, backlog overflow %d", st.SynsIn, st.CookiesSent, st.CookiesOK,
		st.SynAcksOut, st.BacklogOverflow)
	if st.CookiesSent < 19_000 || st.SynsIn < 20_000 {
		t.Fatalf("stats %+v", st)
	}
	// The half-open records time out after tcp_synack_retries.
	p.run(10*time.Second, func() bool { r := p.a.Resources(); return r.Conns == 0 && r.Flows == 0 })
}

// step runs both stacks and apps n times.
func (p *pair) step(n int) {
	for range n {
		p.a.Step()
		p.b.Step()
		p.pa.step()
		p.pb.step()
	}
}

// synFrame builds a SYN src:sport -> dst:dport to MAC dmac.
func synFrame(dmac wire.MAC, src wire.Addr4, sport uint16, dst wire.Addr4, dport uint16, seq uint32, o *wire.TCPOptions) []byte {
	b := make([]byte, 14+20+60)
	n := wire.PutEthernet(b, dmac, otherMAC, wire.EtherTypeIPv4)
	hl := wire.PutTCP(b[n+20:], wire.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: seq, Flags: wire.TCPFlagSYN, Window: 64240}, o)
	wire.PutIPv4(b[n:], wire.IPv4Fields{TotalLen: uint16(20 + hl), DF: true, TTL: 64, Protocol: wire.IPProtoTCP, Src: src, Dst: dst})
	wire.SetTCPChecksum(src, dst, b[n+20:n+20+hl])
	return b[:padFrame(b, n+20+hl)]
}

// TestAcceptWithoutFlows: flows are taken at the final ACK; when none is
// left the handshake is reset and counted, and nothing leaks.
func TestAcceptWithoutFlows(t *testing.T) {
	cfg := testConfig(ipA)
	cfg.MaxFlows = 2
	r := newRaw(t, cfg, nil)
	r.listen(80, 16)
	var sas []parsed
	for i := range 3 { // three half-open records fit: no flow is needed yet
		r.inject(r.frame(seg{sport: uint16(40000 + i), dport: 80, seq: 1, flags: wire.TCPFlagSYN, win: 64240}))
		out := tcpOut(t, r.take())
		if len(out) != 1 {
			t.Fatalf("SYN %d: %v", i, out)
		}
		sas = append(sas, out[0])
	}
	for i, sa := range sas {
		r.inject(r.frame(seg{sport: uint16(40000 + i), dport: 80, seq: 2, ack: sa.tcp.SeqNum() + 1, flags: wire.TCPFlagACK, win: 1000}))
	}
	out := tcpOut(t, r.take())
	if len(r.app.order) != 2 || r.s.Stats().AcceptNoMem != 1 || len(out) != 1 || out[0].tcp.Flags()&wire.TCPFlagRST == 0 ||
		out[0].tcp.DstPort() != 40002 {
		t.Fatalf("accepted %d, AcceptNoMem %d, sent %v", len(r.app.order), r.s.Stats().AcceptNoMem, out)
	}
	if res := r.s.Resources(); res.Flows != 2 || res.Conns != 2 {
		t.Fatalf("%+v", res)
	}
}
