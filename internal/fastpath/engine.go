package fastpath

import (
	"slices"
	"sync/atomic"
	"time"

	"gotas/internal/appif"
	"gotas/internal/shm"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// MaxContexts bounds the application contexts a stack serves.
const MaxContexts = 256

// ContextInfo is a registered application context: its descriptor, the
// region of its application that the descriptor's offsets point into, the
// doorbell its owner sleeps on, and the doorbells its owner rings to wake
// each core (the application's own, so it can disturb only itself). The
// slow path fills it in before telling the cores (KtxAddContext), so the
// atomic pointer store publishes it.
type ContextInfo struct {
	Desc      appif.Desc
	Region    *shm.Region
	Bell      *shm.Doorbell
	CoreBells []*shm.Doorbell
	// Released counts the cores that let go of the context (before each
	// says so with KrxContextGone). The slow path loads it before it
	// closes the doorbells: the KRX queue is in mmap'd memory, whose
	// atomics the race detector does not see as ordering.
	Released atomic.Int32
}

// Shared is what the slow path and all cores share in one process. Region
// holds the control queues (KTX, KRX): service memory no application maps.
type Shared struct {
	Region   *shm.Region
	Flows    *Flows
	Contexts [MaxContexts]atomic.Pointer[ContextInfo]
}

// EngineConfig configures one core's TCP engine.
type EngineConfig struct {
	Core int
	MAC  wire.MAC
	IP   wire.Addr4
	// PartialCsum accepts TCP checksums that hold only the pseudo-header
	// sum (nic.Info.PartialRxCsum: veth peers with offloads on).
	PartialCsum bool
	// Clock returns monotonic nanoseconds; the slow path uses the same.
	Clock func() uint64
	// MaxRetries is how many consecutive RTOs abort a flow (default 12).
	MaxRetries int
	// KtxOff/KrxOff are the core's queues to and from the slow path
	// (CtlSlot-byte slots, CtlSlots each).
	KtxOff, KrxOff uint64
	CtlSlots       uint32
	// SlowBell wakes the slow path (KRX consumer). Bells, when set, are
	// what the core sleeps on: its own doorbell and, added as contexts
	// attach, the one each application rings for this core.
	SlowBell *shm.Doorbell
	Bells    *shm.BellSet
	// AckHold is how long the ACK of a message's last segment waits for
	// the application's answer to carry it (holdAck), at least until the
	// next iteration: 0 for an application that answers between two
	// iterations (the inline driver), longer for one that answers from
	// another thread or process.
	AckHold time.Duration
}

type engCtx struct {
	cmd  *shm.Consumer
	ev   *shm.Producer
	bell *shm.Doorbell // the application's doorbell for this core, in cfg.Bells
	// detached: the app corrupted one of the context's queue indices;
	// the core reads and writes nothing of it any more.
	detached bool
}

// EngineStats counts what an engine did; all fields are atomics read with
// Stats.
type EngineStats struct {
	RxSegments, RxBytes, RxOOO, RxDupData, RxBadCsum, RxNotOurs uint64
	TxSegments, TxBytes, TxAcks, TxRetransmits, RTOs, FastRetx  uint64
	Punted                                                      [numPunt]uint64
	PuntDropped, EventsDeferred, ChallengeAcks, Resets          uint64
	BadCommands, Probes, PAWSDrops, WindowUpdates               uint64
	// LossProbes counts tail loss probe timeouts (RFC 8985 TLP); Probes
	// counts zero-window probes.
	LossProbes uint64
	// Hostile or odd input, each dropped or handled and counted:
	// RxOutOfWindow fails RFC 9293's acceptability test, RxBadAck RFC
	// 5961's ACK range, RxNoTimestamp lacks TSopt on a timestamped flow,
	// RxAfterFin is data after the peer's FIN, AcksRateLimited are
	// answers withheld (RFC 5961 7), InjectDropped are frames the slow
	// path handed back that the core still could not take, CorruptRings
	// flows aborted for impossible ring positions.
	RxOutOfWindow, RxBadAck, RxNoTimestamp, RxAfterFin, RxBadOptions uint64
	RxUrgent, RxIPOptions, AcksRateLimited, InjectDropped            uint64
	CorruptRings, TxOversize, PMTUUpdates, PMTUIgnored               uint64
	ContextsDetached                                                 uint64
	// SpuriousUndos counts recoveries D-SACKs proved spurious, whose
	// window reduction was undone (RFC 3708).
	SpuriousUndos uint64
	// RingBytesReleased counts idle RX ring bytes given back (shrink.go).
	RingBytesReleased uint64
	// RxBadINT counts telemetry options ignored as malformed or unasked.
	RxBadINT uint64
}

type engStats struct {
	rxSegments, rxBytes, rxOOO, rxDupData, rxBadCsum, rxNotOurs      atomic.Uint64
	txSegments, txBytes, txAcks, txRetransmits, rtos, fastRetx       atomic.Uint64
	punted                                                           [numPunt]atomic.Uint64
	puntDropped, eventsDeferred, challengeAcks, resets               atomic.Uint64
	badCommands, probes, pawsDrops, windowUpdates                    atomic.Uint64
	lossProbes                                                       atomic.Uint64
	rxOutOfWindow, rxBadAck, rxNoTimestamp, rxAfterFin, rxBadOptions atomic.Uint64
	rxUrgent, rxIPOptions, acksRateLimited, injectDropped            atomic.Uint64
	corruptRings, txOversize, pmtuUpdates, pmtuIgnored               atomic.Uint64
	contextsDetached                                                 atomic.Uint64
	spuriousUndos                                                    atomic.Uint64
	ringBytesReleased                                                atomic.Uint64
	rxBadINT                                                         atomic.Uint64
}

// Engine is the TCP fast path of one core: established flows only. All its
// methods run on the core's goroutine.
type Engine struct {
	cfg   EngineConfig
	sh    *Shared
	fs    *Flows
	ktx   *shm.Consumer
	krx   *shm.Producer
	ctxs  []engCtx
	ctxOn []uint16
	// evBlocked: every event in evList waits for room in a full queue.
	evBlocked bool
	// bellUse counts, per application doorbell in cfg.Bells, the attached
	// contexts that share it.
	bellUse map[*shm.Doorbell]int
	// shrinkAt and shrinkNext drive the idle-ring sweep (shrink.go).
	shrinkAt   uint64
	shrinkNext uint32

	timers *tcp.Wheel // RTO and persist, one entry per flow
	pace   *tcp.Wheel // paced flows waiting for their send time

	ackList, evList, txList, txNext []uint32
	// ackHeld: flows whose ACK waits for data of the application's to
	// carry it (holdAck), oldest first; iter numbers the iterations.
	ackHeld  []heldAck
	iter     uint32
	wheelOut [64]uint32
	reports  shm.Backlog[CtlMsg, *CtlMsg]

	now   uint64 // ns, read at the start of each iteration
	nowUs uint32
	tsNow uint32 // timestamp clock (tcp.TSClock) for TSval
	tx    *TxBatch
	opts  wire.TCPOptions // options of the segment being received
	txo   wire.TCPOptions // options of the segment being built
	sacks [wire.MaxSACKBlocks]tcp.SACKBlock
	stats engStats
	// chSecond and chBudget ration challenge ACKs (RFC 5961 7).
	chSecond uint64
	chBudget uint32
}

// Engine constants, with their sources.
const (
	// defaultMaxRetries is how many consecutive RTOs abort a flow.
	defaultMaxRetries = 12
	// rtoWheelTickNs, rtoWheelSlots: the RTO and persist timer wheel
	// (50 µs ticks; 4096 slots span 205 ms, later deadlines wrap).
	rtoWheelTickNs, rtoWheelSlots = 50_000, 4096
	// paceWheelTickNs, paceWheelSlots: the pacing wheel (2 µs ticks).
	paceWheelTickNs, paceWheelSlots = 2_000, 1024
	// ktxBatch and cmdBatch bound the messages taken per queue per
	// iteration, so one busy queue cannot starve the rest.
	ktxBatch, cmdBatch = 32, 64
	// challengeAcksPerSecond is the engine-wide challenge-ACK budget
	// (Linux tcp_challenge_ack_limit, RFC 5961 7).
	challengeAcksPerSecond = 1000
	// oowAckIntervalNs is the least time between two answers to invalid
	// segments of one flow (Linux tcp_invalid_ratelimit, 500 ms).
	oowAckIntervalNs = 500_000_000
	// delAckSegments: ACK at least every second full segment (RFC 9293
	// 3.8.6.3, RFC 5681 4.2).
	delAckSegments = 2
	// maxCwnd caps the congestion window (64 MiB).
	maxCwnd = 1 << 26
	// ipTTL is the TTL of what we send (Linux ip_default_ttl).
	ipTTL = 64
	// minEthernetFrame: shorter frames are padded (IEEE 802.3, FCS
	// excluded).
	minEthernetFrame = 60
	// reportPendingSleepNs bounds the core's sleep while reports wait for
	// room in the slow path's queue.
	reportPendingSleepNs = 1_000_000
	// eventRetrySleepNs bounds the core's sleep while events wait for
	// room in an application's full event queue: the application is
	// behind, and nothing wakes the core when it catches up.
	eventRetrySleepNs = 1_000_000
)

// NewEngine makes the engine for one core.
func NewEngine(sh *Shared, cfg EngineConfig) (*Engine, error) {
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = defaultMaxRetries
	}
	ktx, err := shm.NewConsumer(sh.Region, cfg.KtxOff, CtlSlot, cfg.CtlSlots, nil)
	if err != nil {
		return nil, err
	}
	krx, err := shm.NewProducer(sh.Region, cfg.KrxOff, CtlSlot, cfg.CtlSlots, cfg.SlowBell)
	if err != nil {
		return nil, err
	}
	n := sh.Flows.Max()
	now := cfg.Clock()
	return &Engine{cfg: cfg, sh: sh, fs: sh.Flows, ktx: ktx, krx: krx,
		ctxs: make([]engCtx, MaxContexts), bellUse: map[*shm.Doorbell]int{},
		timers:  tcp.NewWheel(uint32(n), rtoWheelTickNs, rtoWheelSlots, now),
		pace:    tcp.NewWheel(uint32(n), paceWheelTickNs, paceWheelSlots, now),
		ackList: make([]uint32, 0, n), evList: make([]uint32, 0, n),
		ackHeld: make([]heldAck, 0, n+2*BatchSize), // a flow once, and stale entries of the last iteration
		txList:  make([]uint32, 0, n), txNext: make([]uint32, 0, n),
		now: now, nowUs: uint32(now / 1000), tsNow: tcp.TSClock(now)}, nil
}

// Stats reads the counters.
func (e *Engine) Stats() EngineStats {
	s := &e.stats
	out := EngineStats{
		RxSegments: s.rxSegments.Load(), RxBytes: s.rxBytes.Load(), RxOOO: s.rxOOO.Load(),
		RxDupData: s.rxDupData.Load(), RxBadCsum: s.rxBadCsum.Load(), RxNotOurs: s.rxNotOurs.Load(),
		TxSegments: s.txSegments.Load(), TxBytes: s.txBytes.Load(), TxAcks: s.txAcks.Load(),
		TxRetransmits: s.txRetransmits.Load(), RTOs: s.rtos.Load(), FastRetx: s.fastRetx.Load(),
		PuntDropped: s.puntDropped.Load(), EventsDeferred: s.eventsDeferred.Load(),
		ChallengeAcks: s.challengeAcks.Load(), Resets: s.resets.Load(),
		BadCommands: s.badCommands.Load(), Probes: s.probes.Load(), PAWSDrops: s.pawsDrops.Load(),
		WindowUpdates: s.windowUpdates.Load(), LossProbes: s.lossProbes.Load(),
		RxOutOfWindow: s.rxOutOfWindow.Load(), RxBadAck: s.rxBadAck.Load(), RxNoTimestamp: s.rxNoTimestamp.Load(),
		RxAfterFin: s.rxAfterFin.Load(), RxBadOptions: s.rxBadOptions.Load(), RxUrgent: s.rxUrgent.Load(),
		RxIPOptions: s.rxIPOptions.Load(), AcksRateLimited: s.acksRateLimited.Load(),
		InjectDropped: s.injectDropped.Load(), CorruptRings: s.corruptRings.Load(),
		TxOversize: s.txOversize.Load(), PMTUUpdates: s.pmtuUpdates.Load(), PMTUIgnored: s.pmtuIgnored.Load(),
		ContextsDetached: s.contextsDetached.Load(), SpuriousUndos: s.spuriousUndos.Load(),
		RingBytesReleased: s.ringBytesReleased.Load(),
		RxBadINT:          s.rxBadINT.Load(),
	}
	for i := range out.Punted {
		out.Punted[i] = s.punted[i].Load()
	}
	return out
}

// Begin starts a loop iteration: it reads the clock once for everything
// the iteration does.
func (e *Engine) Begin() {
	e.iter++
	if now := e.cfg.Clock(); now > e.now {
		e.now = now
	}
	e.nowUs = uint32(e.now / 1000)
	e.tsNow = tcp.TSClock(e.now)
}

// Poll finishes the receive batch (ACKs, events), then serves the slow
// path, the applications, the timers and the transmit list. It reports
// whether it did anything.
func (e *Engine) Poll(tx *TxBatch) bool {
	e.tx = tx
	worked := e.flushAcks()
	worked = e.pollKtx() || worked
	worked = e.pollApps() || worked
	worked = e.pollTimers() || worked
	e.sweepIdleRings()
	worked = e.serveTx() || worked
	worked = e.flushAcks() || worked
	worked = e.ageHeldAcks() || worked
	e.flushEvents()
	if e.reports.Len() > 0 {
		e.reports.Flush(e.krx)
	}
	return worked
}

// NextDeadline is the earliest timer or pacing deadline (ns), and soon
// when reports wait for room in the slow path's queue.
func (e *Engine) NextDeadline() (uint64, bool) {
	t, ok := e.timers.NextDue()
	if p, okp := e.pace.NextDue(); okp && (!ok || p < t) {
		t, ok = p, true
	}
	// Work waiting on a full queue is retried soon: nothing else wakes us
	// when the other side catches up.
	retry := uint64(0)
	switch {
	case e.reports.Len() > 0:
		retry = reportPendingSleepNs
	case e.evBlocked:
		retry = eventRetrySleepNs
	}
	if retry != 0 && (!ok || e.now+retry < t) {
		t, ok = e.now+retry, true
	}
	return t, ok
}

// PrepareSleep announces that the core is about to block on its doorbell
// and re-checks every queue it consumes; false means work arrived (or is
// pending) and the core must not block.
func (e *Engine) PrepareSleep() bool {
	if len(e.evList) > 0 && !e.evBlocked || len(e.txList) > 0 || len(e.ackHeld) > 0 {
		return false
	}
	if ok, _ := e.ktx.ArmSleep(); !ok {
		e.Woke()
		return false
	}
	for _, i := range e.ctxOn {
		if ok, _ := e.ctxs[i].cmd.ArmSleep(); !ok {
			e.Woke()
			return false
		}
	}
	return true
}

// Woke withdraws the sleep announcements.
func (e *Engine) Woke() {
	e.ktx.Disarm()
	for _, i := range e.ctxOn {
		e.ctxs[i].cmd.Disarm()
	}
}

// punt copies a frame into the slow path's queue.
func (e *Engine) punt(frame []byte, reason uint8) {
	e.stats.punted[reason].Add(1)
	if n, _ := e.krx.Reserve(1); n == 0 {
		e.stats.puntDropped.Add(1)
		return
	}
	s := e.krx.Slot(0)
	m := CtlMsg{Type: KrxFrame, Reason: reason, Len: uint16(copy(s[CtlHeader:], frame))}
	m.Put(s)
	e.krx.Commit(1)
}

// gone removes flow id from the fast path and tells the slow path.
func (e *Engine) gone(id uint32, reason uint8) {
	f := &e.fs.hot[id]
	if f.flags&fAlive == 0 {
		return
	}
	e.fs.Table.Remove(f.key.Hash(), id)
	// A stale handle must not match while the id waits for reuse, nor
	// while the slow path writes its next flow's state.
	e.fs.pub[id].Store(0)
	e.timers.Cancel(id)
	e.pace.Cancel(id)
	var fl uint8
	if f.flags&fRxFin != 0 {
		fl |= GoneRxFin
	}
	if f.flags&fTxFinAcked != 0 {
		fl |= GoneTxFinAcked
	}
	if f.flags&fActiveClose != 0 {
		fl |= GoneActiveClose
	}
	m := CtlMsg{Type: KrxGone, Reason: reason, ID: id, Handle: uint64(f.handle),
		SndNxt: uint32(f.sndMax), RcvNxt: uint32(f.rcvNxt), Flags: fl, SndUna: uint32(f.sndUna), TSRecent: f.tsRecent}
	f.flags = 0
	// Drop the id from every list now: once the slow path hears of it, it
	// may reuse the id, and nothing here may touch its state after that.
	e.ackList = without(e.ackList, id)
	e.ackHeld = withoutHeld(e.ackHeld, id)
	e.evList = without(e.evList, id)
	e.txList = without(e.txList, id)
	e.report(m)
}

func without(l []uint32, id uint32) []uint32 {
	k := 0
	for _, x := range l {
		if x != id {
			l[k] = x
			k++
		}
	}
	return l[:k]
}

// report queues a message for the slow path, sent at the end of the
// iteration (after which nothing here touches the flow) and kept until
// the queue has room: the slow path must learn of every gone flow, or its
// id leaks.
func (e *Engine) report(m CtlMsg) { e.reports.Add(m) }

func (e *Engine) pollKtx() bool {
	n, _ := e.ktx.Peek(ktxBatch)
	for i := range n {
		s := e.ktx.Slot(i)
		var m CtlMsg
		m.Get(s)
		switch m.Type {
		case KtxSend:
			fr := m.Frame(s)
			if b := e.tx.Next(); b != nil {
				e.tx.Commit(copy(b, fr))
			}
		case KtxInject:
			e.handle(m.Frame(s), e.tx, true)
		case KtxRemove:
			if e.live(m.ID, m.Handle) {
				e.gone(m.ID, GoneRemoved)
			} else if m.ID < uint32(len(e.fs.hot)) {
				// Already gone (a reset raced the close): say so again
				// with the handle so the slow path can match it.
				e.report(CtlMsg{Type: KrxGone, Reason: GoneRemoved, ID: m.ID, Handle: m.Handle})
			}
		case KtxAddContext:
			e.attach(m.ID)
		case KtxDelContext:
			e.release(m.ID)
		case KtxKick:
			if e.live(m.ID, m.Handle) {
				e.wantTx(m.ID)
			}
		case KtxPMTU:
			e.pmtu(&m)
		}
	}
	e.ktx.Release(n)
	return n > 0
}

// live reports whether flow id is installed under handle h. The load of
// pub orders the flow's state before the caller's reads.
func (e *Engine) live(id uint32, h uint64) bool {
	return id < uint32(len(e.fs.hot)) && h != 0 && e.fs.pub[id].Load() == h && e.fs.hot[id].flags&fAlive != 0
}

// pmtu lowers a flow's MSS after an ICMP "fragmentation needed" the slow
// path validated against the connection (RFC 1191). The quoted sequence
// number must lie in what we have sent and not had acknowledged (RFC 5927
// 5.1), which a blind attacker has to guess. The segments in flight were
// too big and are lost: they go again at the new size, without a
// congestion response (the loss was not congestion).
func (e *Engine) pmtu(m *CtlMsg) {
	if !e.live(m.ID, m.Handle) {
		e.stats.pmtuIgnored.Add(1)
		return
	}
	f := &e.fs.hot[m.ID]
	c := &e.fs.cold[m.ID]
	mss := clampMSS(uint32(m.MTU)-ipTCPHeaders-f.optionsLen(), f.flags&fTS != 0)
	if !tcp.Seq(m.SndUna).InWindow(f.sndUna, uint32(f.sndMax-f.sndUna)) || mss >= f.mss {
		e.stats.pmtuIgnored.Add(1)
		return
	}
	e.stats.pmtuUpdates.Add(1)
	f.mss = mss
	c.sb.SetMSS(uint32(mss))
	if f.flags&fSACK != 0 {
		c.rack.OnRTO(&c.sb)
	}
	e.goBack(f)
	e.wantTx(m.ID)
}

func (e *Engine) attach(idx uint32) {
	if idx >= MaxContexts {
		return
	}
	ci := e.sh.Contexts[idx].Load()
	core := e.cfg.Core
	if ci == nil || e.ctxs[idx].cmd != nil {
		return
	}
	// A context whose queues cannot be opened (bad descriptor, or an
	// application that scribbled its indices first) is detached, so its
	// flows' events are dropped instead of waiting for ever.
	e.ctxs[idx] = engCtx{detached: true}
	if ci.Region == nil || core >= len(ci.Desc.CmdOff) {
		e.stats.contextsDetached.Add(1)
		return
	}
	d := &ci.Desc
	cmd, err := shm.NewConsumer(ci.Region, d.CmdOff[core], appif.CmdSlot, d.CmdSlots, nil)
	if err != nil {
		e.stats.contextsDetached.Add(1)
		return
	}
	ev, err := shm.NewProducer(ci.Region, d.EvOff[core], appif.EvSlot, d.EvSlots, ci.Bell)
	if err != nil {
		e.stats.contextsDetached.Add(1)
		return
	}
	var bell *shm.Doorbell
	if e.cfg.Bells != nil && core < len(ci.CoreBells) {
		bell = ci.CoreBells[core]
		if !e.useBell(bell) {
			e.stats.contextsDetached.Add(1)
			return
		}
	}
	e.ctxs[idx] = engCtx{cmd: cmd, ev: ev, bell: bell}
	e.ctxOn = append(e.ctxOn, uint16(idx))
}

// useBell and dropBell count the contexts that share an application's
// doorbell for this core (all of one application's do): it joins the
// core's set with the first and leaves it with the last.
func (e *Engine) useBell(b *shm.Doorbell) bool {
	if e.bellUse[b] == 0 && e.cfg.Bells.Add(b) != nil {
		return false
	}
	e.bellUse[b]++
	return true
}

func (e *Engine) dropBell(b *shm.Doorbell) {
	if e.bellUse[b]--; e.bellUse[b] <= 0 {
		delete(e.bellUse, b)
		e.cfg.Bells.Remove(b)
	}
}

// release forgets context idx (its application went away) and tells the
// slow path, which frees the context's memory and doorbells only when
// every core has: after this the core never touches either again. The
// context's flows were removed before (KtxRemove comes first on the
// queue).
func (e *Engine) release(idx uint32) {
	if idx >= MaxContexts {
		return
	}
	c := &e.ctxs[idx]
	if c.bell != nil {
		e.dropBell(c.bell)
	}
	if c.cmd != nil {
		e.ctxOn = slices.DeleteFunc(e.ctxOn, func(x uint16) bool { return uint32(x) == idx })
	}
	*c = engCtx{}
	if ci := e.sh.Contexts[idx].Load(); ci != nil {
		ci.Released.Add(1)
	}
	e.report(CtlMsg{Type: KrxContextGone, ID: idx})
}

// detach stops serving context ci, whose queue indices its app corrupted
// (shm queues check them and fail for good). Its flows stay installed
// until the slow path closes them; their events are dropped.
func (e *Engine) detach(ci uint16) {
	e.stats.contextsDetached.Add(1)
	if b := e.ctxs[ci].bell; b != nil {
		e.dropBell(b) // a corrupt context must not keep waking the core
	}
	e.ctxs[ci] = engCtx{detached: true}
	k := 0
	for _, x := range e.ctxOn {
		if x != ci {
			e.ctxOn[k] = x
			k++
		}
	}
	e.ctxOn = e.ctxOn[:k]
}

// pollApps applies the applications' commands.
func (e *Engine) pollApps() bool {
	worked := false
	for _, ci := range e.ctxOn {
		c := &e.ctxs[ci]
		n, err := c.cmd.Peek(cmdBatch)
		if err != nil {
			e.detach(ci)
			return true // ctxOn changed under the loop: the next poll goes on
		}
		if n == 0 {
			continue
		}
		worked = true
		for i := range n {
			var cmd appif.Cmd
			cmd.Get(c.cmd.Slot(i))
			e.command(ci, &cmd)
		}
		c.cmd.Release(n)
	}
	return worked
}

func (e *Engine) command(ctx uint16, cmd *appif.Cmd) {
	id := cmd.Conn.Index()
	if !e.live(id, uint64(cmd.Conn)) || e.fs.hot[id].ctx != ctx {
		e.stats.badCommands.Add(1) // forged, or stale: the flow is gone or reused
		return
	}
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	c.nagle = cmd.Flags&appif.CmdNagle != 0
	if cmd.Flags&appif.CmdTxClose != 0 && f.flags&fTxClose == 0 {
		// The head is final now: txQueued holds the app to it.
		f.flags |= fTxClose
		c.txCloseHead = c.tx.Head.Load()
	}
	if cmd.TxBump != 0 || cmd.Flags&appif.CmdTxClose != 0 {
		e.wantTx(id)
	}
	if cmd.RxBump != 0 {
		e.rxConsumed(id)
	}
}

// rxConsumed sends a window update when the app's reads reopen a window
// the peer may be stalled on (receiver-side SWS avoidance, RFC 1122
// 4.2.3.3: only when it grows by min(buffer/2, 2*MSS)).
func (e *Engine) rxConsumed(id uint32) {
	f := &e.fs.hot[id]
	c := &e.fs.cold[id]
	free, ok := e.rxFree(id, f, c)
	if !ok {
		return
	}
	size := c.rx.Mask + 1
	// After the peer's FIN it sends nothing more a window could admit;
	// an update then only reaches a peer that may have closed (Linux in
	// LAST_ACK answers it with a RST, which reset our unread data).
	if f.flags&fRxFin == 0 && f.advWnd < size/2 && free >= f.advWnd+min(size/2, 2*uint32(f.mss)) {
		e.stats.windowUpdates.Add(1)
		e.sendAck(id)
	}
}

// wantTx puts a flow on the transmit list.
func (e *Engine) wantTx(id uint32) { e.enlist(id, fInTx, &e.txList) }

// wantAck marks a flow for an ACK at the end of the batch.
func (e *Engine) wantAck(id uint32) { e.enlist(id, fInAck, &e.ackList) }

// holdAck marks a flow for an ACK at the end of a later iteration, once
// AckHold has passed: a request that its application answers at once
// then has the answer carry the ACK (with the inline driver the
// application runs between two iterations), as Linux's delayed ACK does
// in its interactive mode, at the cost of the hold when it does not.
func (e *Engine) holdAck(id uint32) {
	f := &e.fs.hot[id]
	if f.flags&(fInAck|fAlive) != fAlive {
		return
	}
	f.flags |= fInAck
	f.heldGen++
	e.ackHeld = append(e.ackHeld, heldAck{id: id, iter: e.iter, gen: f.heldGen, at: e.now})
}

// heldAck is a flow on the ackHeld list, with when it was put there. An
// answer that carried the ACK leaves the entry behind; gen tells it from
// a later hold of the same flow, which must wait its own time.
type heldAck struct {
	id, iter uint32
	gen      uint8
	at       uint64
}

func withoutHeld(l []heldAck, id uint32) []heldAck {
	k := 0
	for _, h := range l {
		if h.id != id {
			l[k] = h
			k++
		}
	}
	return l[:k]
}

// wantEvent marks a flow for an event at the end of the batch.
func (e *Engine) wantEvent(id uint32) { e.enlist(id, fInEv, &e.evList) }

// enlist appends a live flow to a work list once: flag says it is on it.
// A flow that went away meanwhile is never listed again, since its id may
// be reused.
func (e *Engine) enlist(id uint32, flag uint16, list *[]uint32) {
	f := &e.fs.hot[id]
	if f.flags&(flag|fAlive) != fAlive {
		return
	}
	f.flags |= flag
	*list = append(*list, id)
}

func (e *Engine) flushAcks() bool { return e.flushAckList(&e.ackList) }

// ageHeldAcks sends the held ACKs that no data carried, once their hold
// is over: at least one iteration, and AckHold.
func (e *Engine) ageHeldAcks() bool {
	k, sent := 0, false
	hold := uint64(e.cfg.AckHold)
	for ; k < len(e.ackHeld); k++ {
		h := e.ackHeld[k]
		if h.iter == e.iter || e.now < h.at+hold {
			break
		}
		f := &e.fs.hot[h.id]
		if f.flags&fInAck == 0 || f.heldGen != h.gen { // data carried it, or a newer hold owns it
			continue
		}
		f.flags &^= fInAck
		if f.flags&fAlive != 0 {
			e.sendAck(h.id)
			sent = true
		}
	}
	e.ackHeld = e.ackHeld[:copy(e.ackHeld, e.ackHeld[k:])]
	return sent
}

// flushAckList sends a pure ACK for every flow of *list still wanting
// one, and empties the list.
func (e *Engine) flushAckList(list *[]uint32) bool {
	if len(*list) == 0 {
		return false
	}
	for _, id := range *list {
		f := &e.fs.hot[id]
		if f.flags&fInAck == 0 { // an ACK went out with data meanwhile
			continue
		}
		f.flags &^= fInAck
		if f.flags&fAlive != 0 {
			e.sendAck(id)
		}
	}
	*list = (*list)[:0]
	return true
}

// flushEvents posts one event per flow touched since the last flush; a
// full event queue keeps the flow on the list for the next iteration.
func (e *Engine) flushEvents() {
	kept := e.evList[:0]
	for _, id := range e.evList {
		f := &e.fs.hot[id]
		if f.flags&fAlive == 0 {
			continue
		}
		c := &e.ctxs[f.ctx]
		if c.ev == nil && !c.detached {
			kept = append(kept, id) // not attached yet
			continue
		}
		n, err := 0, error(nil)
		if !c.detached {
			n, err = c.ev.Reserve(1)
		}
		if err != nil {
			e.detach(f.ctx)
		}
		if c.detached {
			f.flags &^= fInEv
			continue
		}
		if n == 0 {
			e.stats.eventsDeferred.Add(1)
			kept = append(kept, id)
			continue
		}
		ev := appif.Ev{Conn: f.handle, RxBump: f.rxBump, TxBump: f.txBump, Flags: f.evFlags}
		ev.Put(c.ev.Slot(0))
		c.ev.Commit(1)
		f.rxBump, f.txBump, f.evFlags = 0, 0, 0
		f.flags &^= fInEv
	}
	e.evList = kept
	// Whatever is left waits on a queue that is full (or a context not
	// attached yet): only time helps.
	e.evBlocked = len(kept) > 0
}
