package slowpath

import (
	"net/netip"
	"sync/atomic"
	"syscall"

	"gotas/internal/appif"
	"gotas/internal/cc"
	"gotas/internal/fastpath"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// request handles one application request.
func (sp *slow) request(c *svcCtx, m *appif.Ctl) {
	switch m.Type {
	case appif.ReqListen:
		sp.listen(c, m)
	case appif.ReqListenClose:
		l := sp.listeners[uint16(m.Handle.Index())]
		if l == nil || l.handle != m.Handle || l.ctx != c {
			return
		}
		delete(sp.listeners, l.port)
		sp.closeListener(l)
		sp.post(c, appif.Ctl{Type: appif.MsgListenClosed, Handle: l.handle})
	case appif.ReqConnect:
		sp.connect(c, m)
	case appif.ReqClose:
		id := m.Handle.Index()
		if id >= uint32(len(sp.byID)) {
			return
		}
		x := sp.byID[id]
		if x == nil || x.handle != m.Handle || x.ctx != c {
			return
		}
		switch x.state {
		case stSynSent:
			sp.free(x, false)
		case stEstablished:
			x.state = stClosing
			sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxRemove, ID: x.id, Handle: uint64(x.handle)}, nil)
		case stGone:
			sp.free(x, false)
		}
	}
}

func (sp *slow) listen(c *svcCtx, m *appif.Ctl) {
	st := int32(0)
	var h appif.Handle
	_, knownCC := cc.NameOf(m.Flags)
	switch {
	case m.LocalPort == 0 || sp.listeners[m.LocalPort] != nil:
		st = int32(syscall.EADDRINUSE)
	case !knownCC:
		st = int32(syscall.EINVAL) // the application's congestion-control choice
	case c.app.listeners >= c.app.limits.MaxListeners:
		sp.st.appLimited.Add(1)
		st = int32(syscall.ENOBUFS)
	default:
		sp.lstGen++
		h = appif.MakeHandle(uint32(m.LocalPort), sp.lstGen)
		sp.listeners[m.LocalPort] = &listener{handle: h, port: m.LocalPort, ctx: c,
			backlog: min(max(int(m.Backlog), 1), maxBacklog), ccAlg: m.Flags}
		sp.holdPort(m.LocalPort)
		c.app.listeners++
	}
	sp.post(c, appif.Ctl{Type: appif.MsgListenOpened, Cookie: m.Cookie, Handle: h, Status: st, LocalPort: m.LocalPort})
}

// closeListener releases listener l (already out of sp.listeners) and
// resets its half-open connections.
func (sp *slow) closeListener(l *listener) {
	sp.putPort(l.port)
	l.ctx.app.listeners--
	for _, x := range sp.conns {
		if x.lst == l && x.state == stSynRcvd {
			sp.rstConn(x)
			sp.free(x, false)
		}
	}
}

func (sp *slow) connect(c *svcCtx, m *appif.Ctl) {
	fail := func(e syscall.Errno) {
		sp.post(c, appif.Ctl{Type: appif.MsgConnOpened, Cookie: m.Cookie, Status: int32(e),
			RemoteIP: m.RemoteIP, RemotePort: m.RemotePort})
	}
	if _, ok := cc.NameOf(m.Flags); !ok {
		fail(syscall.EINVAL) // the application's congestion-control choice
		return
	}
	dst := wire.Addr4(m.RemoteIP)
	if e := sp.badDestination(dst, m.RemotePort); e != 0 {
		fail(e)
		return
	}
	hop, ok := sp.routes.Lookup(dst.Addr())
	if !ok {
		sp.st.noRoute.Add(1)
		fail(syscall.ENETUNREACH)
		return
	}
	k := fastpath.FlowKey{LocalIP: sp.s.ip, RemoteIP: dst, RemotePort: m.RemotePort}
	if !sp.getPort(&k) {
		fail(syscall.EADDRNOTAVAIL)
		return
	}
	x := &conn{key: k, state: stSynSent, ctx: c, cookie: m.Cookie, ownPort: true, ccAlg: m.Flags}
	if e := sp.allocFlow(x); e != 0 {
		sp.releasePort(k)
		fail(e)
		return
	}
	x.iss = sp.isn(x.key)
	sp.conns[x.key] = x
	sp.res.conns.Add(1)
	h := x.handle
	sp.arp.resolve(wire.Addr4(hop.As4()), sp.now(), sp.arpRequest, func(mac wire.MAC, ok bool) {
		if x.handle != h || x.state != stSynSent {
			return // closed meanwhile
		}
		if !ok {
			sp.fail(x, syscall.EHOSTUNREACH)
			return
		}
		x.rmac = mac
		x.synTime = sp.now()
		sp.sendSyn(x)
	})
	sp.armTimer(sp.now() + uint64(sp.s.cfg.ARPRetry))
}

// badDestination refuses what no TCP connection can reach: port 0, the
// unspecified, multicast or a broadcast address (ENETUNREACH, as Linux
// for multicast), and our own address (ECONNREFUSED: the stack has no
// loopback, the peer would be itself).
func (sp *slow) badDestination(dst wire.Addr4, port uint16) syscall.Errno {
	a := dst.Addr()
	subnet := sp.s.cfg.Prefix.Masked()
	directed := subnet.Bits() < 31 && a == broadcastOf(subnet)
	switch {
	case port == 0:
		return syscall.EADDRNOTAVAIL
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || directed:
		return syscall.ENETUNREACH
	case dst == sp.s.ip:
		return syscall.ECONNREFUSED
	}
	return 0
}

// broadcastOf is the directed broadcast address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// fail ends an active open with an error.
func (sp *slow) fail(x *conn, e syscall.Errno) {
	switch e {
	case syscall.ECONNREFUSED:
		sp.st.refused.Add(1)
	case syscall.ETIMEDOUT:
		sp.st.timedOut.Add(1)
	}
	sp.post(x.ctx, appif.Ctl{Type: appif.MsgConnOpened, Cookie: x.cookie, Status: int32(e),
		RemoteIP: x.key.RemoteIP, RemotePort: x.key.RemotePort})
	sp.free(x, false)
}

func (sp *slow) synRTO(x *conn) uint64 {
	return uint64(sp.s.cfg.SynRTO) << min(x.retries, 20)
}

// synAckRetries is how often a SYN-ACK is retransmitted before the
// half-open record is dropped (Linux tcp_synack_retries default; with a
// 1 s first RTO it lives 63 s, and the backlog bounds how many there are).
const synAckRetries = 5

func (sp *slow) handshakeTimeout(x *conn, now uint64) {
	limit := sp.s.cfg.SynRetries
	if x.state == stSynRcvd {
		limit = synAckRetries
	}
	if x.retries >= limit {
		sp.setDeadline(x, 0)
		if x.state == stSynSent {
			sp.fail(x, syscall.ETIMEDOUT)
		} else {
			sp.free(x, false)
		}
		return
	}
	x.retries++
	if x.state == stSynSent {
		sp.sendSyn(x)
	} else {
		sp.sendSynAck(x)
	}
}

// synOptions fills the options of our SYN or SYN-ACK.
func (sp *slow) synOptions(x *conn, o *wire.TCPOptions, synAck bool, peerTS uint32) {
	cfg := &sp.s.cfg
	*o = wire.TCPOptions{Present: wire.OptMSS, MSS: sp.mss}
	if !cfg.NoSACK && (!synAck || x.sack) {
		o.Present |= wire.OptSACKPermitted
	}
	if !cfg.NoTimestamps && (!synAck || x.ts) {
		o.Present |= wire.OptTimestamps
		o.TSVal, o.TSEcr = tcp.TSClock(sp.now()), peerTS
	}
	if !cfg.NoWindowScale && (!synAck || x.ws) {
		o.Present |= wire.OptWScale
		o.WScale = tcp.WindowShiftFor(cfg.RxBuf)
	}
}

func (sp *slow) synWindow() uint16 { return uint16(min(sp.s.cfg.RxBuf, 0xffff)) }

func (sp *slow) sendSyn(x *conn) {
	var o wire.TCPOptions
	sp.synOptions(x, &o, false, 0)
	fl := wire.TCPFlagSYN
	// RFC 3168 6.1.1.1: a lost ECN-setup SYN may have met a middlebox
	// that drops them, so retransmissions go without; the connection
	// then does not use ECN (synSentIn).
	if !sp.s.cfg.NoECN && x.retries == 0 {
		fl |= wire.TCPFlagECE | wire.TCPFlagCWR
	}
	sp.sendSeg(x.rmac, x.key, x.iss, 0, fl, sp.synWindow(), &o, 0)
	sp.setDeadline(x, sp.now()+sp.synRTO(x))
}

func (sp *slow) sendSynAck(x *conn) {
	var o wire.TCPOptions
	sp.synOptions(x, &o, true, x.tsRecent)
	fl := wire.TCPFlagSYN | wire.TCPFlagACK
	if x.retries > 0 {
		x.ecn = false // RFC 3168 6.1.1.1, as for the SYN
	}
	if x.ecn {
		fl |= wire.TCPFlagECE
	}
	sp.sendSeg(x.rmac, x.key, x.iss, x.irs.Add(1), fl, sp.synWindow(), &o, 0)
	sp.st.synAcksOut.Add(1)
	sp.setDeadline(x, sp.now()+sp.synRTO(x))
}

// sendSeg builds and sends a TCP segment without payload.
func (sp *slow) sendSeg(dmac wire.MAC, k fastpath.FlowKey, seq, ack tcp.Seq, fl wire.TCPFlags, win uint16, o *wire.TCPOptions, tos uint8) {
	b := sp.frame[:]
	n := wire.PutEthernet(b, dmac, sp.s.mac, wire.EtherTypeIPv4)
	ipOff := n
	n += wire.IPv4MinHeaderLen
	hl := wire.PutTCP(b[n:], wire.TCPFields{SrcPort: k.LocalPort, DstPort: k.RemotePort, SeqNum: uint32(seq),
		AckNum: uint32(ack), Flags: fl, Window: win}, o)
	wire.PutIPv4(b[ipOff:], wire.IPv4Fields{TOS: tos, TotalLen: uint16(wire.IPv4MinHeaderLen + hl), DF: true,
		TTL: 64, Protocol: wire.IPProtoTCP, Src: k.LocalIP, Dst: k.RemoteIP})
	wire.SetTCPChecksum(k.LocalIP, k.RemoteIP, b[n:n+hl])
	sp.send(b[:padFrame(b, n+hl)])
}

// rstConn resets a connection the slow path still owns.
func (sp *slow) rstConn(x *conn) {
	sp.st.rstsSent.Add(1)
	sp.sendSeg(x.rmac, x.key, x.iss.Add(1), x.irs.Add(1), wire.TCPFlagRST|wire.TCPFlagACK, 0, nil, 0)
}

// tcpIn handles a TCP segment for our address that matched no fast-path
// flow.
func (sp *slow) tcpIn(smac wire.MAC, frame []byte, ip wire.IPv4) {
	seg, err := wire.ParseTCP(ip.Payload())
	if err != nil {
		return
	}
	if !wire.VerifyTCPChecksum(ip.Src(), ip.Dst(), seg) &&
		!(sp.partial && wire.IsPartialChecksum(seg.Checksum(), wire.IPProtoTCP, ip.Src(), ip.Dst(), len(seg))) {
		sp.st.badChecksum.Add(1)
		return
	}
	var o wire.TCPOptions
	if wire.ParseTCPOptions(seg.Options(), &o) != nil {
		return
	}
	k := fastpath.FlowKey{LocalIP: ip.Dst(), RemoteIP: ip.Src(), LocalPort: seg.DstPort(), RemotePort: seg.SrcPort()}
	fl := seg.Flags()
	seq, ack := tcp.Seq(seg.SeqNum()), tcp.Seq(seg.AckNum())
	if x := sp.conns[k]; x != nil {
		switch x.state {
		case stSynSent:
			sp.synSentIn(x, seg, &o, seq, ack, fl)
		case stSynRcvd:
			sp.synRcvdIn(x, frame, seg, &o, seq, ack, fl)
		case stEstablished:
			// Raced the install, or arrived between removal and our
			// learning of it: let the core handle it.
			sp.st.reinjected.Add(1)
			sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxInject}, frame)
		}
		return
	}
	var iss tcp.Seq // 0: from the clock
	if t := sp.tw[k]; t != nil {
		var reopen bool
		if iss, reopen = sp.timeWaitIn(t, smac, seq, fl, &o); !reopen {
			return
		}
	}
	if fl&wire.TCPFlagRST != 0 {
		return
	}
	l := sp.listeners[k.LocalPort]
	switch fl & (wire.TCPFlagSYN | wire.TCPFlagACK) {
	case wire.TCPFlagSYN:
		sp.st.synsIn.Add(1)
		if l != nil {
			sp.passive(l, smac, k, seq, fl, &o, iss)
			return
		}
	case wire.TCPFlagACK:
		if l != nil && sp.cookieAck(l, smac, k, frame, seg, &o) {
			return
		}
	}
	sp.replyRst(smac, k, seg, seq, ack, fl)
}

// timeWaitIn handles a segment for a 4-tuple in TIME_WAIT. A SYN to a
// listener that RFC 6191 accepts ends TIME_WAIT and opens a new connection
// with the ISS returned; anything else is re-acknowledged (a retransmitted
// FIN, an old duplicate), except RSTs, which are ignored (RFC 1337).
func (sp *slow) timeWaitIn(t *twEntry, smac wire.MAC, seq tcp.Seq, fl wire.TCPFlags, o *wire.TCPOptions) (tcp.Seq, bool) {
	if fl&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN &&
		sp.listeners[t.key.LocalPort] != nil && t.synReplaces(seq, o) {
		iss := sp.twISS(t)
		sp.dropTimeWait(t)
		sp.st.twReplaced.Add(1)
		return iss, true
	}
	if fl&wire.TCPFlagRST == 0 {
		// A timestamped connection stamps every segment (RFC 7323 3.2).
		var to *wire.TCPOptions
		if t.ts {
			to = &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: tcp.TSClock(sp.now()), TSEcr: t.tsRecent}
		}
		sp.sendSeg(smac, t.key, t.sndNxt, t.rcvNxt, wire.TCPFlagACK, 0, to, 0)
	}
	return 0, false
}

// replyRst answers a segment for no connection (RFC 9293 3.10.7.1).
func (sp *slow) replyRst(smac wire.MAC, k fastpath.FlowKey, seg wire.TCP, seq, ack tcp.Seq, fl wire.TCPFlags) {
	sp.st.rstsSent.Add(1)
	if fl&wire.TCPFlagACK != 0 {
		sp.sendSeg(smac, k, ack, 0, wire.TCPFlagRST, 0, nil, 0)
		return
	}
	n := uint32(len(seg.Payload()))
	if fl&wire.TCPFlagSYN != 0 {
		n++
	}
	if fl&wire.TCPFlagFIN != 0 {
		n++
	}
	sp.sendSeg(smac, k, 0, seq.Add(n), wire.TCPFlagRST|wire.TCPFlagACK, 0, nil, 0)
}

func (sp *slow) synSentIn(x *conn, seg wire.TCP, o *wire.TCPOptions, seq, ack tcp.Seq, fl wire.TCPFlags) {
	if fl&wire.TCPFlagACK != 0 && ack != x.iss.Add(1) {
		if fl&wire.TCPFlagRST == 0 {
			sp.replyRst(x.rmac, x.key, seg, seq, ack, fl)
		}
		return
	}
	if fl&wire.TCPFlagRST != 0 {
		if fl&wire.TCPFlagACK != 0 {
			sp.fail(x, syscall.ECONNREFUSED)
		}
		return
	}
	if fl&(wire.TCPFlagSYN|wire.TCPFlagACK) != wire.TCPFlagSYN|wire.TCPFlagACK {
		return
	}
	cfg := &sp.s.cfg
	x.irs = seq
	x.negotiate(o, cfg)
	x.ecn = !cfg.NoECN && x.retries == 0 && fl&wire.TCPFlagECE != 0 && fl&wire.TCPFlagCWR == 0
	x.peerWnd = uint32(seg.Window())
	rtt := sp.handshakeRTT(x, o)
	sp.setDeadline(x, 0)
	// Install before telling the app, so its first command finds the flow;
	// an event that overtakes the message is held by the client.
	if !sp.install(x, rtt) {
		sp.fail(x, syscall.ENOBUFS)
		return
	}
	sp.post(x.ctx, sp.openedMsg(x, appif.MsgConnOpened))
	// The final ACK of the handshake.
	var ao wire.TCPOptions
	if x.ts {
		ao = wire.TCPOptions{Present: wire.OptTimestamps, TSVal: tcp.TSClock(sp.now()), TSEcr: x.tsRecent}
	}
	sp.sendSeg(x.rmac, x.key, x.iss.Add(1), x.irs.Add(1), wire.TCPFlagACK, uint16(min(cfg.RxBuf>>x.rcvShift, 0xffff)), &ao, 0)
}

// handshakeRTT is the RTT sample (µs, 0 for none) the handshake's last
// segment gives: timed from our SYN or SYN-ACK in microseconds unless that
// was retransmitted (Karn), else from the timestamp echo, which is
// unambiguous but only millisecond-grained (tcp.TSTickNs).
func (sp *slow) handshakeRTT(x *conn, o *wire.TCPOptions) uint32 {
	if x.retries == 0 {
		return max(uint32((sp.now()-x.synTime)/1000), 1)
	}
	if x.ts && o.Has(wire.OptTimestamps) && o.TSEcr != 0 {
		return tcp.TSRTTUs(tcp.TSClock(sp.now()) - o.TSEcr)
	}
	return 0
}

// negotiate records the options both sides agreed on from the peer's SYN
// or SYN-ACK.
func (x *conn) negotiate(o *wire.TCPOptions, cfg *Config) {
	x.peerMSS = defaultMSS
	if o.Has(wire.OptMSS) && o.MSS > 0 { // Linux too ignores an MSS of 0
		x.peerMSS = max(o.MSS, tcpMinMSS)
	}
	x.sack = !cfg.NoSACK && o.Has(wire.OptSACKPermitted)
	x.ts = !cfg.NoTimestamps && o.Has(wire.OptTimestamps)
	if x.ts {
		x.tsRecent = o.TSVal
	}
	x.ws = !cfg.NoWindowScale && o.Has(wire.OptWScale)
	if x.ws {
		x.sndShift = tcp.ClampShift(o.WScale)
		x.rcvShift = tcp.WindowShiftFor(cfg.RxBuf)
	}
}

func (sp *slow) openedMsg(x *conn, typ uint8) appif.Ctl {
	return appif.Ctl{Type: typ, Cookie: x.cookie, Handle: x.handle, LocalPort: x.key.LocalPort,
		RemoteIP: x.key.RemoteIP, RemotePort: x.key.RemotePort,
		RxOff: x.rxOff, TxOff: x.txOff, RxSize: sp.s.cfg.RxBuf, TxSize: sp.s.cfg.TxBuf}
}

// flowMSS is the payload per segment of x: the smaller of the two MSS
// values less the timestamp option. Both are at least tcpMinMSS, so it is
// at least tcpMinMSS-tsOptionLen and fits our frames.
func (sp *slow) flowMSS(x *conn) uint16 {
	mss := min(x.peerMSS, sp.mss)
	if x.ts {
		mss -= tsOptionLen
	}
	return mss
}

// install hands an established connection to the fast path.
func (sp *slow) install(x *conn, rtt uint32) bool {
	cfg := &sp.s.cfg
	p := fastpath.FlowParams{Key: x.key, RemoteMAC: x.rmac, Ctx: x.ctx.idx, Handle: x.handle, Region: x.ctx.app.region,
		ISS: x.iss, IRS: x.irs, PeerWindow: x.peerWnd, SndShift: x.sndShift, RcvShift: x.rcvShift,
		MSS: sp.flowMSS(x), SACK: x.sack, TS: x.ts, ECN: x.ecn, TSRecent: x.tsRecent, RTTSample: rtt,
		RxOff: x.rxOff, RxSize: cfg.RxBuf, TxOff: x.txOff, TxSize: cfg.TxBuf, AdvWindow: uint32(sp.synWindow()),
		INT: cc.WantsINT(sp.ccName(x))}
	ccs := sp.ccNew(x)
	if ccs != nil {
		p.RateKbps, p.CwndCap = ccs.rate, ccs.cap
	}
	if err := sp.s.sh.Flows.Install(x.id, &p); err != nil {
		return false // cannot happen: the table is sized for MaxFlows
	}
	x.state = stEstablished
	sp.ccStart(x, ccs)
	st := &sp.st
	st.established.Add(1)
	for _, o := range []struct {
		on bool
		c  *atomic.Uint64
	}{{x.ts, &st.withTS}, {x.sack, &st.withSACK}, {x.ws, &st.withWS}, {x.ecn, &st.withECN}} {
		if o.on {
			o.c.Add(1)
		}
	}
	return true
}

// passive answers a SYN to listener l. Up to the listener's backlog it
// keeps a small SYN_RCVD record (no flow id, no rings: those wait for the
// final ACK, RFC 4987 3.6); beyond it, it answers with a SYN cookie and
// keeps nothing (cookie.go), so a SYN flood costs neither memory nor
// flows and legitimate clients still get in.
func (sp *slow) passive(l *listener, smac wire.MAC, k fastpath.FlowKey, seq tcp.Seq, fl wire.TCPFlags, o *wire.TCPOptions, iss tcp.Seq) {
	if l.pending >= l.backlog {
		sp.st.backlogOverflow.Add(1)
		l.lastOverflow = sp.now()
		sp.sendCookie(smac, k, seq, fl, o)
		return
	}
	x := &conn{key: k, state: stSynRcvd, ctx: l.ctx, lst: l, irs: seq, rmac: smac, ccAlg: l.ccAlg}
	l.pending++
	cfg := &sp.s.cfg
	x.negotiate(o, cfg)
	x.ecn = !cfg.NoECN && fl&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE|wire.TCPFlagCWR
	x.iss = iss
	if iss == 0 {
		x.iss = sp.isn(k)
	}
	x.synTime = sp.now()
	sp.conns[k] = x
	sp.res.conns.Add(1)
	sp.sendSynAck(x)
}

func (sp *slow) synRcvdIn(x *conn, frame []byte, seg wire.TCP, o *wire.TCPOptions, seq, ack tcp.Seq, fl wire.TCPFlags) {
	switch {
	case fl&wire.TCPFlagRST != 0:
		if seq == x.irs.Add(1) {
			sp.free(x, false)
		}
		return
	case fl&wire.TCPFlagSYN != 0:
		if fl&wire.TCPFlagACK == 0 && seq == x.irs {
			sp.sendSynAck(x) // our SYN-ACK was lost
		}
		return
	case fl&wire.TCPFlagACK == 0:
		return
	case ack != x.iss.Add(1):
		sp.replyRst(x.rmac, x.key, seg, seq, ack, fl)
		return
	}
	if sp.allocFlow(x) != 0 {
		sp.st.acceptNoMem.Add(1)
		sp.rstConn(x)
		sp.free(x, false)
		return
	}
	rtt := sp.handshakeRTT(x, o)
	x.peerWnd = tcp.DecodeWindow(seg.Window(), x.sndShift)
	sp.setDeadline(x, 0)
	l := x.lst
	l.pending--
	x.lst = nil
	sp.accept(x, l, frame, seg, fl, rtt)
}

// accept installs x, whose handshake with listener l just completed and
// which holds a flow id and rings, and tells the application; data or a
// FIN that came with the final ACK goes to the core.
func (sp *slow) accept(x *conn, l *listener, frame []byte, seg wire.TCP, fl wire.TCPFlags, rtt uint32) {
	if !sp.install(x, rtt) {
		sp.rstConn(x)
		sp.free(x, false)
		return
	}
	m := sp.openedMsg(x, appif.MsgAccepted)
	m.Aux = l.handle
	sp.post(x.ctx, m)
	if len(seg.Payload()) > 0 || fl&wire.TCPFlagFIN != 0 {
		sp.st.reinjected.Add(1)
		sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxInject}, frame)
	}
}

// gone handles a core's report that a flow left the fast path.
func (sp *slow) gone(m *fastpath.CtlMsg) {
	if m.ID >= uint32(len(sp.byID)) {
		return
	}
	x := sp.byID[m.ID]
	if x == nil || uint64(x.handle) != m.Handle {
		return
	}
	// The core removed the table entry; its tombstone can go now.
	sp.s.sh.Flows.Reclaim(x.key)
	sp.ccStop(x)
	graceful := m.Flags&fastpath.GoneRxFin != 0 && m.Flags&fastpath.GoneTxFinAcked != 0
	// A flow we abandon (closed with data unread or unsent, or whose
	// rings the app corrupted) is reset, so the peer does not wait on it.
	abandoned := m.Reason == fastpath.GoneCorrupt || m.Reason == fastpath.GoneRemoved && x.state == stClosing
	if abandoned && m.SndNxt != 0 && !graceful {
		sp.st.rstsSent.Add(1)
		sp.sendSeg(x.rmac, x.key, tcp.Seq(m.SndNxt), tcp.Seq(m.RcvNxt), wire.TCPFlagRST|wire.TCPFlagACK, 0, nil, 0)
	}
	switch {
	case x.state == stClosing:
		if graceful && m.Flags&fastpath.GoneActiveClose != 0 {
			sp.enterTimeWait(x, m)
			sp.free(x, true)
			return
		}
		sp.free(x, false)
	case x.state == stEstablished:
		x.state = stGone
		st := syscall.ECONNRESET
		if m.Reason == fastpath.GoneTimeout {
			st = syscall.ETIMEDOUT
			sp.st.timedOut.Add(1)
		} else {
			sp.st.resets.Add(1)
		}
		sp.post(x.ctx, appif.Ctl{Type: appif.MsgConnClosed, Handle: x.handle, Status: int32(st)})
	}
}
