package slowpath

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"syscall"

	"gotas/internal/appif"
	"gotas/internal/fastpath"
	"gotas/internal/nic"
	"gotas/internal/shm"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

type connState uint8

const (
	stSynSent     connState = iota + 1 // active open, waiting for SYN-ACK
	stSynRcvd                          // passive open, waiting for the final ACK
	stEstablished                      // installed in the fast path
	stClosing                          // app closed; waiting for the core to drop the flow
	stGone                             // the core dropped it (RST, timeout); waiting for the app's Close
)

// conn is the slow path's record of a connection from the first SYN until
// the application closes it.
type conn struct {
	key      fastpath.FlowKey
	id       uint32
	handle   appif.Handle
	state    connState
	ctx      *svcCtx
	cookie   uint64
	lst      *listener
	iss, irs tcp.Seq
	rmac     wire.MAC
	rxOff    uint64
	txOff    uint64
	ownPort  bool // the local port is ephemeral and ours to free

	peerMSS            uint16
	sndShift, rcvShift uint8
	sack, ts, ecn, ws  bool
	tsRecent           uint32
	peerWnd            uint32
	synTime            uint64
	retries            int
	deadline           uint64 // handshake retransmission (ns); 0: none
	// ccAlg is the congestion control the application chose (cc.ID; 0:
	// the stack's Config.CC); cc its loop state while in the fast path.
	ccAlg uint8
	cc    *ccState
}

type listener struct {
	handle           appif.Handle
	port             uint16
	ctx              *svcCtx
	backlog, pending int    // half-open records: the bound, and how many
	ccAlg            uint8  // congestion control for accepted conns (cc.ID)
	lastOverflow     uint64 // when a SYN last got a cookie (ns); 0: never
}

// maxBacklog caps a listener's backlog (Linux net.core.somaxconn default
// since 5.4).
const maxBacklog = 4096

type resCounters struct {
	flows, ports, timeWait, conns atomic.Int64
	bufBytes                      atomic.Int64 // ring and queue bytes allocated in applications' regions
}

type slowCounters struct {
	punted                                          [8]atomic.Uint64
	synsIn, synAcksOut, backlogOverflow, rstsSent   atomic.Uint64
	refused, timedOut, resets, reinjected           atomic.Uint64
	ktxDropped, pmtuAccepted, pmtuIgnored           atomic.Uint64
	twOverflow, twReplaced                          atomic.Uint64
	acceptNoMem, cookiesSent, cookiesOK, cookiesBad atomic.Uint64
	badChecksum, noRoute                            atomic.Uint64
	appsFreed, appsStalled, appLimited              atomic.Uint64
	ringBytesDiscarded                              atomic.Uint64
	ccKicks, ccINT, ccNoINT                         atomic.Uint64
	established, withTS, withSACK, withWS, withECN  atomic.Uint64
}

// slow is the slow path's state; only the slow-path goroutine touches it.
type slow struct {
	s      *Stack
	host   *Host
	arp    arpCache
	routes Routes

	conns     map[fastpath.FlowKey]*conn
	byID      []*conn
	gens      []uint32
	freeIDs   []uint32
	listeners map[uint16]*listener
	lstGen    uint32
	ports     map[uint16]int
	tuples    map[fastpath.FlowKey]struct{} // 4-tuples of our ephemeral ports
	portKey   [2]uint64                     // keys sipHash128 for port offsets
	portNext  uint32                        // RFC 6056 algorithm 3's counter
	cookieKey [2]uint64                     // keys sipHash128 for SYN cookies
	tw        map[fastpath.FlowKey]*twEntry
	twq       []*twEntry // TIME_WAIT entries in order of expiry, from twHead
	twHead    int
	hs        map[*conn]struct{} // conns with a handshake deadline
	ctxs      []*svcCtx
	dying     []*App // applications whose memory waits for their flows and contexts to go
	retrySoon bool   // prepareSleep: responses wait for room in a full queue
	bells     *shm.BellSet
	nextTimer uint64
	ccFlows   []*conn // flows with a congestion-control loop (cc.go)
	secret    [32]byte
	hostTx    *fastpath.TxBatch
	frame     [nic.MaxFrame]byte
	res       resCounters
	st        slowCounters
	partial   bool
	mss       uint16 // what we advertise (linkMSS)
	// ktxOut holds, per core, control messages its KTX queue had no room
	// for: a lost KtxRemove would leak the flow, its rings and its port.
	ktxOut []shm.Backlog[fastpath.CtlMsg, *fastpath.CtlMsg]

	onKtx func(m *fastpath.CtlMsg) // tests: sees every message for a core
	// isnOverride, when set (tests only), replaces the clock-and-hash ISN
	// of isn, e.g. to put sequence numbers next to 2^31 or 2^32.
	isnOverride func(k fastpath.FlowKey) tcp.Seq
}

// Segment sizes.
const (
	// tcpMinMSS is the smallest peer MSS we accept; a smaller one is raised
	// to it (Linux TCP_MIN_MSS, include/net/tcp.h), so that the payload
	// left after options can never be zero or wrap.
	tcpMinMSS = 88
	// defaultMSS is assumed when a SYN carries no MSS option (RFC 9293
	// 3.7.1).
	defaultMSS   = 536
	ipTCPHeaders = wire.IPv4MinHeaderLen + wire.TCPMinHeaderLen
	tsOptionLen  = 12 // the timestamp option with its two NOPs (RFC 7323 appendix A)
	vlanTagLen   = 4
)

// linkMSS is the MSS we advertise: from the interface MTU, but never more
// than the back-end's frames carry (nic.MaxFrame holds an Ethernet header,
// one VLAN tag and 1500 bytes), so a jumbo MTU cannot make the peer send
// segments we cannot receive.
func linkMSS(mtu int) uint16 {
	frameMTU := nic.MaxFrame - wire.EthernetHeaderLen - vlanTagLen
	if mtu <= 0 || mtu > frameMTU {
		mtu = frameMTU
	}
	return uint16(max(mtu-ipTCPHeaders, tcpMinMSS))
}

func newSlow(s *Stack) *slow {
	sp := &slow{s: s, host: NewHost(s.mac, s.ip),
		arp:   newARPCache(uint64(s.cfg.ARPRetry), s.cfg.ARPRetries),
		conns: map[fastpath.FlowKey]*conn{}, byID: make([]*conn, s.cfg.MaxFlows), gens: make([]uint32, s.cfg.MaxFlows),
		listeners: map[uint16]*listener{}, ports: map[uint16]int{}, tw: map[fastpath.FlowKey]*twEntry{},
		hs:     map[*conn]struct{}{},
		secret: randomKey(), hostTx: fastpath.NewTxBatch(4), partial: s.port.Info().PartialRxCsum,
		mss: linkMSS(s.port.Info().MTU), ktxOut: make([]shm.Backlog[fastpath.CtlMsg, *fastpath.CtlMsg], len(s.ktx))}
	for i := range s.cfg.MaxFlows {
		sp.freeIDs = append(sp.freeIDs, uint32(i))
	}
	if s.cfg.Routes != nil {
		sp.routes = *s.cfg.Routes
	}
	sp.routes.Add(s.cfg.Prefix.Masked(), netip.Addr{})
	sp.portKey = [2]uint64{binary.LittleEndian.Uint64(sp.secret[:]), binary.LittleEndian.Uint64(sp.secret[8:])}
	sp.tuples = map[fastpath.FlowKey]struct{}{}
	sp.cookieKey = [2]uint64{binary.LittleEndian.Uint64(sp.secret[16:]), binary.LittleEndian.Uint64(sp.secret[24:])}
	return sp
}

func (sp *slow) now() uint64 { return sp.s.cfg.Clock() }

func (sp *slow) stats() StackStats {
	st := &sp.st
	out := StackStats{Host: sp.host.Stats(),
		SynsIn: st.synsIn.Load(), SynAcksOut: st.synAcksOut.Load(), BacklogOverflow: st.backlogOverflow.Load(),
		RstsSent: st.rstsSent.Load(), Refused: st.refused.Load(), TimedOut: st.timedOut.Load(),
		Resets: st.resets.Load(), Reinjected: st.reinjected.Load(), BadChecksum: st.badChecksum.Load(),
		NoRoute: st.noRoute.Load(), Established: st.established.Load(), WithTS: st.withTS.Load(),
		WithSACK: st.withSACK.Load(), WithWS: st.withWS.Load(), WithECN: st.withECN.Load(),
		ARPRefused: sp.arp.refused.Load(), KtxDropped: st.ktxDropped.Load(), PMTUAccepted: st.pmtuAccepted.Load(), PMTUIgnored: st.pmtuIgnored.Load(),
		TimeWaitOverflow: st.twOverflow.Load(), TimeWaitReplaced: st.twReplaced.Load(),
		AcceptNoMem: st.acceptNoMem.Load(), CookiesSent: st.cookiesSent.Load(), CookiesOK: st.cookiesOK.Load(),
		CookiesBad: st.cookiesBad.Load(), RingBytesDiscarded: st.ringBytesDiscarded.Load(),
		AppsFreed: st.appsFreed.Load(), AppsStalled: st.appsStalled.Load(), AppLimited: st.appLimited.Load(),
		CCKicks: st.ccKicks.Load(), CCINT: st.ccINT.Load(), CCNoINT: st.ccNoINT.Load()}
	for i := range out.Punted {
		out.Punted[i] = st.punted[i].Load()
	}
	return out
}

func (sp *slow) staticARP(ip wire.Addr4, mac wire.MAC) {
	sp.s.mu.Lock() // AddNeighbor may race the slow path only before Start
	defer sp.s.mu.Unlock()
	sp.arp.m[ip] = &arpEntry{mac: mac, resolved: true, static: true}
}

// poll runs one slow-path iteration.
func (sp *slow) poll() bool {
	var stalled []*App
	worked := sp.flushKtx()
	if sp.s.hasNew.Load() {
		sp.adopt()
		worked = true
	}
	for _, q := range sp.s.krx {
		n, _ := q.Peek(64)
		for i := range n {
			sp.fromCore(q.Slot(i))
		}
		q.Release(n)
		worked = worked || n > 0
	}
	for _, c := range sp.ctxs {
		n, _ := c.req.Peek(64)
		for i := range n {
			var m appif.Ctl
			m.Get(c.req.Slot(i))
			sp.request(c, &m)
		}
		c.req.Release(n)
		worked = worked || n > 0
		c.out.Flush(c.resp)
		// This process's own application is never torn down: its
		// Contexts live here and still use its region.
		if c.out.Len() > outBacklogPerSlot*ctxRespSlots && !c.app.local {
			stalled = append(stalled, c.app)
		}
	}
	for _, a := range stalled {
		// It stopped reading its responses while they piled up in
		// service memory.
		sp.st.appsStalled.Add(1)
		sp.dropApp(a)
	}
	if sp.nextTimer != 0 {
		if now := sp.now(); now >= sp.nextTimer {
			sp.timers(now)
			worked = true
		}
	}
	return worked
}

func (sp *slow) prepareSleep() bool {
	for i := range sp.ktxOut {
		if sp.ktxOut[i].Len() > 0 {
			return false // the core drains its queue every iteration: retry soon
		}
	}
	for _, q := range sp.s.krx {
		if ok, _ := q.ArmSleep(); !ok {
			sp.woke()
			return false
		}
	}
	sp.retrySoon = false
	for _, c := range sp.ctxs {
		// Responses waiting for room in a full queue: its application is
		// behind, and nothing wakes us when it catches up; retry soon
		// rather than spin.
		sp.retrySoon = sp.retrySoon || c.out.Len() > 0
		if ok, _ := c.req.ArmSleep(); !ok {
			sp.woke()
			return false
		}
	}
	if sp.s.hasNew.Load() {
		sp.woke() // busy again at once: producers must not ring for nothing
		return false
	}
	return true
}

func (sp *slow) woke() {
	for _, q := range sp.s.krx {
		q.Disarm()
	}
	for _, c := range sp.ctxs {
		c.req.Disarm()
	}
}

func (sp *slow) adopt() {
	sp.s.mu.Lock()
	news, dead, snaps := sp.s.newCtxs, sp.s.deadApps, sp.s.snapReqs
	sp.s.newCtxs, sp.s.deadApps, sp.s.snapReqs = nil, nil, nil
	sp.s.hasNew.Store(false)
	sp.s.mu.Unlock()
	sp.adoptApps(news, dead)
	for _, ch := range snaps {
		ch <- sp.snapshot()
	}
}

// toCore queues a message (and frame) for core i. Control messages (no
// frame) are never lost: when the queue is full they wait in ktxOut, in
// order. A frame is dropped (and counted) when the queue is full or
// control messages are waiting, so it never overtakes one; TCP
// retransmits. It reports whether the message is on its way.
func (sp *slow) toCore(i int, m fastpath.CtlMsg, frame []byte) bool {
	if sp.onKtx != nil {
		sp.onKtx(&m)
	}
	if frame == nil {
		sp.ktxOut[i].Send(sp.s.ktx[i], m)
		return true
	}
	q := sp.s.ktx[i]
	if sp.ktxOut[i].Len() > 0 {
		sp.st.ktxDropped.Add(1)
		return false
	}
	if n, _ := q.Reserve(1); n == 0 {
		sp.st.ktxDropped.Add(1)
		return false
	}
	s := q.Slot(0)
	m.Len = uint16(copy(s[fastpath.CtlHeader:], frame))
	m.Put(s)
	q.Commit(1)
	return true
}

// flushKtx moves waiting control messages into the cores' queues; true if
// any moved.
func (sp *slow) flushKtx() bool {
	moved := false
	for i := range sp.ktxOut {
		if n := sp.ktxOut[i].Len(); n > 0 {
			sp.ktxOut[i].Flush(sp.s.ktx[i])
			moved = moved || sp.ktxOut[i].Len() < n
		}
	}
	return moved
}

func (sp *slow) send(frame []byte) { sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxSend}, frame) }

// post sends a message to an application context, queueing it if the
// context's queue is full so no status is ever lost.
func (sp *slow) post(c *svcCtx, m appif.Ctl) {
	if !c.app.dying {
		c.out.Send(c.resp, m)
	}
}

// fromCore handles one KRX message.
func (sp *slow) fromCore(slot []byte) {
	var m fastpath.CtlMsg
	m.Get(slot)
	switch m.Type {
	case fastpath.KrxFrame:
		if int(m.Reason) < len(sp.st.punted) {
			sp.st.punted[m.Reason].Add(1)
		}
		sp.frameIn(m.Frame(slot), m.Frame(slot))
	case fastpath.KrxGone:
		sp.gone(&m)
	case fastpath.KrxContextGone:
		sp.contextGone(m.ID)
	}
}

// frameIn handles a frame the fast path did not.
func (sp *slow) frameIn(frame, _ []byte) {
	et, hl, err := wire.ParseEthernet(frame)
	if err != nil {
		return
	}
	if et == wire.EtherTypeARP {
		sp.arpIn(frame[hl:])
	}
	if et == wire.EtherTypeIPv4 {
		ip, err := wire.ParseIPv4(frame[hl:])
		ours := err == nil && ip.Dst() == sp.s.ip && !ip.IsFragment()
		if ours && ip.Protocol() == wire.IPProtoTCP {
			sp.tcpIn(wire.Ethernet(frame).Src(), frame, ip)
			return
		}
		if ours && ip.Protocol() == wire.IPProtoICMP && ip.ChecksumValid() && sp.icmpIn(ip) {
			return
		}
	}
	sp.hostTx.Reset()
	sp.host.HandleFrame(frame, sp.hostTx)
	for _, f := range sp.hostTx.Frames() {
		sp.send(f)
	}
}

// arpIn learns from an ARP request or reply for our address whose sender
// is a plausible unicast neighbour (not an RFC 5227 probe from 0.0.0.0,
// not claiming our address).
func (sp *slow) arpIn(b []byte) {
	arp, err := wire.ParseARP(b)
	if err != nil || arp.TargetIP() != sp.s.ip {
		return
	}
	op, sip, smac := arp.Op(), arp.SenderIP(), arp.SenderMAC()
	if op != wire.ARPRequest && op != wire.ARPReply || sip == (wire.Addr4{}) || sip == sp.s.ip ||
		smac.IsMulticast() || smac == (wire.MAC{}) {
		return
	}
	if exp := sp.arp.learn(sip, smac, sp.now(), op == wire.ARPRequest); exp != 0 {
		sp.armTimer(exp)
	}
}

// isn returns an RFC 6528 initial sequence number: a 4 µs clock plus a
// keyed hash of the 4-tuple.
func (sp *slow) isn(k fastpath.FlowKey) tcp.Seq {
	if sp.isnOverride != nil {
		return sp.isnOverride(k)
	}
	var b [32 + 12]byte
	copy(b[:], sp.secret[:])
	copy(b[32:], k.LocalIP[:])
	copy(b[36:], k.RemoteIP[:])
	binary.BigEndian.PutUint16(b[40:], k.LocalPort)
	binary.BigEndian.PutUint16(b[42:], k.RemotePort)
	h := sha256.Sum256(b[:])
	return tcp.Seq(uint32(sp.now()/4000) + binary.BigEndian.Uint32(h[:]))
}

// allocFlow reserves a flow id, a handle and the two rings, in the memory
// of the connection's application and within its limit.
func (sp *slow) allocFlow(c *conn) syscall.Errno {
	a := c.ctx.app
	switch {
	case a.dying:
		return syscall.ECONNABORTED
	case a.flows >= a.limits.MaxFlows:
		sp.st.appLimited.Add(1)
		return syscall.ENOBUFS
	case len(sp.freeIDs) == 0:
		return syscall.ENOBUFS
	}
	cfg := &sp.s.cfg
	rx, err := newRing(a, cfg.RxBuf)
	if err != nil {
		return syscall.ENOBUFS
	}
	tx, err := newRing(a, cfg.TxBuf)
	if err != nil {
		sp.freeRing(a, rx)
		return syscall.ENOBUFS
	}
	// FIFO reuse: a freed id waits behind every other free id.
	c.id = sp.freeIDs[0]
	sp.freeIDs = sp.freeIDs[1:]
	sp.gens[c.id]++
	c.handle = appif.MakeHandle(c.id, sp.gens[c.id])
	c.rxOff, c.txOff = rx, tx
	sp.byID[c.id] = c
	a.flows++
	sp.res.flows.Add(1)
	return 0
}

func newRing(a *App, size uint32) (uint64, error) {
	a.allocMu.Lock()
	defer a.allocMu.Unlock()
	off, err := a.alloc.Alloc(ringArea(size), shm.PageSize)
	if err != nil {
		return 0, err
	}
	if err := shm.InitRing(a.region, off, size); err != nil {
		a.alloc.Free(off)
		return 0, err
	}
	a.bufBytes.Add(int64(ringArea(size)))
	return off, nil
}

// freeRing returns a ring's area to its application's allocator and its
// pages to the kernel: the next connection that gets the area starts with
// no resident memory, so memory follows the bytes in flight rather than
// the number of connections ever opened. Neither the core (the flow is
// gone) nor the application (the handle is closed) uses the ring any more.
func (sp *slow) freeRing(a *App, off uint64) {
	a.allocMu.Lock()
	defer a.allocMu.Unlock()
	if size, ok := a.alloc.SizeOf(off); ok {
		if n, err := a.region.Discard(off, size); err == nil {
			sp.st.ringBytesDiscarded.Add(n)
		}
		a.bufBytes.Add(-int64(size))
	}
	a.alloc.Free(off)
}

// free releases everything a conn holds except a port kept for TIME_WAIT.
func (sp *slow) free(c *conn, keepPort bool) {
	if sp.conns[c.key] == c {
		delete(sp.conns, c.key)
		sp.res.conns.Add(-1)
	}
	if c.lst != nil && c.state == stSynRcvd {
		c.lst.pending--
	}
	sp.ccStop(c)
	if sp.byID[c.id] == c {
		a := c.ctx.app
		sp.byID[c.id] = nil
		sp.freeIDs = append(sp.freeIDs, c.id)
		sp.freeRing(a, c.rxOff)
		sp.freeRing(a, c.txOff)
		sp.res.flows.Add(-1)
		a.flows--
		if a.dying {
			sp.maybeFree(a)
		}
	}
	if c.ownPort && !keepPort {
		sp.releasePort(c.key)
	}
	sp.setDeadline(c, 0)
	c.state = 0
}

func (sp *slow) armTimer(at uint64) {
	if sp.nextTimer == 0 || at < sp.nextTimer {
		sp.nextTimer = at
	}
}

// setDeadline sets (0: clears) x's handshake retransmission time and
// keeps sp.hs, the conns timers must look at, in step.
func (sp *slow) setDeadline(x *conn, at uint64) {
	x.deadline = at
	if at == 0 {
		delete(sp.hs, x)
		return
	}
	sp.hs[x] = struct{}{}
	sp.armTimer(at)
}

// timers retransmits handshakes, expires TIME_WAIT and drives ARP. Its
// cost is bounded by what is due: handshaking conns (at most the
// listeners' backlogs plus active opens), expiring TIME_WAIT entries, and
// ARP entries only when one is due.
func (sp *slow) timers(now uint64) {
	next := sp.arp.tick(now, sp.arpRequest)
	for c := range sp.hs {
		if now >= c.deadline {
			sp.handshakeTimeout(c, now)
		}
		if c.deadline != 0 {
			next = minNZ(next, c.deadline)
		}
	}
	next = minNZ(next, sp.expireTimeWait(now, -1))
	next = minNZ(next, sp.ccTick(now))
	sp.nextTimer = next
}

func (sp *slow) arpRequest(ip wire.Addr4) {
	b := sp.frame[:]
	n := wire.PutEthernet(b, wire.BroadcastMAC, sp.s.mac, wire.EtherTypeARP)
	n += wire.PutARP(b[n:], wire.ARPRequest, sp.s.mac, sp.s.ip, wire.MAC{}, ip)
	sp.send(b[:padFrame(b, n)])
}
