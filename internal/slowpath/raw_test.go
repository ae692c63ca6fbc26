package slowpath

import (
	"testing"
	"time"

	"gotas/internal/fastpath"
	"gotas/internal/impair"
	"gotas/internal/nic"
	"gotas/internal/nic/memnic"
	"gotas/internal/wire"
)

// The crafted-segment harness: one stack on a memnic port, the test on the
// other end. The test builds frames with package wire, injects them and
// checks the stack's answers field by field. The link has no delay, so
// settle runs the stack until it has nothing left to do without moving
// the virtual clock.

var rawIP = wire.Addr4{10, 0, 0, 2} // the test's address (peerIP)

type rawPeer struct {
	t     testing.TB
	clock *memnic.ManualClock
	start time.Time
	s     *Stack
	q     *memnic.Queue // the test's end
	app   *app
	got   [][]byte // frames the stack sent, copied
	ktx   []fastpath.CtlMsg
	smac  wire.MAC // the stack's MAC
}

// mtuPort reports a different interface MTU than its back-end.
type mtuPort struct {
	nic.Port
	mtu int
}

func (p mtuPort) Info() nic.Info {
	i := p.Port.Info()
	i.MTU = p.mtu
	return i
}

func newRaw(t testing.TB, cfg Config, wrap func(nic.Port) nic.Port) *rawPeer {
	t.Helper()
	start := time.Unix(1_000_000, 0)
	clock := memnic.NewManualClock(start)
	portA, portB := memnic.Pair(impair.Config{}, impair.Config{}, memnic.WithClock(clock))
	cfg.Clock = func() uint64 { return uint64(clock.Now().Sub(start)) + 1_000_000_000 }
	var port nic.Port = portA
	if wrap != nil {
		port = wrap(portA)
	}
	s, err := NewStack(port, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{t: t, clock: clock, start: start, s: s, q: portB.Queue(), smac: portA.Info().MAC}
	s.sp.onKtx = func(m *fastpath.CtlMsg) { r.ktx = append(r.ktx, *m) }
	r.app = newApp(t, s)
	t.Cleanup(func() {
		s.Stop()
		portA.Close()
		portB.Close()
	})
	r.settle()
	return r
}

// settle steps the stack and its app until neither has work, collecting
// what the stack sends.
func (r *rawPeer) settle() {
	r.t.Helper()
	bufs := make([][]byte, 64)
	for range 1_000_000 {
		w := r.s.Step()
		w = r.app.step() || w
		n, err := r.q.Recv(bufs)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, f := range bufs[:n] {
			r.got = append(r.got, append([]byte(nil), f...))
		}
		if !w && n == 0 {
			return
		}
	}
	r.t.Fatal("stack never settles")
}

// advance moves the virtual clock by d in steps no larger than the
// stack's next deadline, settling after each.
func (r *rawPeer) advance(d time.Duration) {
	end := r.clock.Now().Add(d)
	for r.clock.Now().Before(end) {
		next := end
		if dl, ok := r.s.NextDeadline(); ok {
			if t := r.start.Add(time.Duration(dl - 1_000_000_000)); t.Before(next) && t.After(r.clock.Now()) {
				next = t
			}
		}
		r.clock.AdvanceTo(next)
		r.settle()
	}
}

func (r *rawPeer) now() uint64 { return uint64(r.clock.Now().Sub(r.start)) + 1_000_000_000 }

// inject sends frames to the stack and settles.
func (r *rawPeer) inject(frames ...[]byte) {
	r.t.Helper()
	for len(frames) > 0 {
		n, err := r.q.Send(frames)
		if err != nil {
			r.t.Fatal(err)
		}
		frames = frames[n:]
		r.settle()
	}
}

// take returns and forgets what the stack sent.
func (r *rawPeer) take() [][]byte {
	g := r.got
	r.got = nil
	return g
}

func (r *rawPeer) listen(port uint16, backlog int) {
	r.t.Helper()
	if _, err := r.app.ctx.Listen(port, backlog); err != nil {
		r.t.Fatal(err)
	}
	r.settle()
	if !r.app.listened {
		r.t.Fatal("listen did not complete")
	}
}

// seg describes a segment the test sends.
type seg struct {
	src          wire.Addr4
	sport, dport uint16
	seq, ack     uint32
	flags        wire.TCPFlags
	win          uint16
	opts         *wire.TCPOptions
	payload      []byte
}

// frame builds s as an Ethernet frame to the stack.
func (r *rawPeer) frame(s seg) []byte {
	if s.src == (wire.Addr4{}) {
		s.src = rawIP
	}
	b := make([]byte, nic.MaxFrame)
	n := wire.PutEthernet(b, r.smac, peerMAC, wire.EtherTypeIPv4)
	ipOff := n
	n += wire.IPv4MinHeaderLen
	hl := wire.PutTCP(b[n:], wire.TCPFields{SrcPort: s.sport, DstPort: s.dport, SeqNum: s.seq, AckNum: s.ack,
		Flags: s.flags, Window: s.win}, s.opts)
	copy(b[n+hl:], s.payload)
	tl := hl + len(s.payload)
	wire.PutIPv4(b[ipOff:], wire.IPv4Fields{TotalLen: uint16(wire.IPv4MinHeaderLen + tl), DF: true, TTL: 64,
		Protocol: wire.IPProtoTCP, Src: s.src, Dst: r.s.ip})
	wire.SetTCPChecksum(s.src, r.s.ip, b[n:n+tl])
	return b[:padFrame(b, n+tl)]
}

// parsed is a TCP segment the stack sent.
type parsed struct {
	ip   wire.IPv4
	tcp  wire.TCP
	opts wire.TCPOptions
}

// tcpOut parses the TCP segments among frames (others are skipped).
func tcpOut(t testing.TB, frames [][]byte) []parsed {
	t.Helper()
	var out []parsed
	for _, f := range frames {
		et, hl, err := wire.ParseEthernet(f)
		if err != nil || et != wire.EtherTypeIPv4 {
			continue
		}
		ip, err := wire.ParseIPv4(f[hl:])
		if err != nil || ip.Protocol() != wire.IPProtoTCP {
			continue
		}
		s, err := wire.ParseTCP(ip.Payload())
		if err != nil {
			t.Fatalf("stack sent a bad TCP segment: %v", err)
		}
		if !wire.VerifyTCPChecksum(ip.Src(), ip.Dst(), s) {
			t.Fatal("stack sent a bad TCP checksum")
		}
		p := parsed{ip: ip, tcp: s}
		if err := wire.ParseTCPOptions(s.Options(), &p.opts); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// synOpts are a Linux client's SYN options.
func synOpts(mss uint16, tsval uint32) *wire.TCPOptions {
	return &wire.TCPOptions{Present: wire.OptMSS | wire.OptSACKPermitted | wire.OptTimestamps | wire.OptWScale,
		MSS: mss, TSVal: tsval, WScale: 7}
}

// handshake opens a connection from sport to the listener on port 80 and
// returns the SYN-ACK; the final ACK carries a timestamp when ts.
func (r *rawPeer) handshake(sport uint16, iss uint32, o *wire.TCPOptions) parsed {
	r.t.Helper()
	r.take()
	r.inject(r.frame(seg{sport: sport, dport: 80, seq: iss, flags: wire.TCPFlagSYN, win: 64240, opts: o}))
	out := tcpOut(r.t, r.take())
	if len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK {
		r.t.Fatalf("want one SYN-ACK, got %d segments", len(out))
	}
	sa := out[0]
	if sa.tcp.AckNum() != iss+1 || sa.tcp.SrcPort() != 80 || sa.tcp.DstPort() != sport {
		r.t.Fatalf("SYN-ACK ack %d ports %d->%d", sa.tcp.AckNum(), sa.tcp.SrcPort(), sa.tcp.DstPort())
	}
	var ao *wire.TCPOptions
	if o != nil && o.Has(wire.OptTimestamps) && sa.opts.Has(wire.OptTimestamps) {
		ao = &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: o.TSVal + 1, TSEcr: sa.opts.TSVal}
	}
	r.inject(r.frame(seg{sport: sport, dport: 80, seq: iss + 1, ack: sa.tcp.SeqNum() + 1, flags: wire.TCPFlagACK,
		win: 502, opts: ao}))
	return sa
}
