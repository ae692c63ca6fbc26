package fastpath

import (
	"sync/atomic"

	"gotas/internal/appif"
	"gotas/internal/cc"
	"gotas/internal/nic"
	"gotas/internal/shm"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// Flow flags (flow.flags).
const (
	fAlive       = 1 << iota
	fSACK        // SACK negotiated
	fTS          // timestamps negotiated
	fECN         // ECN negotiated
	fRxFin       // peer FIN received in order
	fTxClose     // app closed TX: FIN follows the last byte
	fTxFinSent   // FIN is in [sndUna, sndMax)
	fTxFinAcked  // FIN acknowledged
	fActiveClose // our FIN went out before the peer's arrived
	fInAck       // on the ack list
	fInEv        // on the event list
	fInTx        // on the tx list
	fEcePend     // echo ECE on ACKs (CE seen, no CWR yet)
	fCwrPend     // set CWR on the next new data segment
	fTiming      // rttSeq/rttTime measure an RTT (no timestamps)
	fRecovery    // in fast recovery (go-back-N or SACK), until ack > recover
)

// flow is the hot per-flow state, kept within two cache lines (a test
// checks the size). Only the owning core reads or writes it once the flow
// is published; the slow path writes it before publishing.
type flow struct {
	key      FlowKey
	rmac     wire.MAC
	flags    uint16
	ctx      uint16
	sndShift uint8 // the peer's window shift
	dupAcks  uint8
	handle   appif.Handle
	rcvNxt   tcp.Seq
	rxHead   uint32 // ring position of rcvNxt (our private RX head)
	rwin     tcp.RcvWindow
	tsRecent uint32
	rxBump   uint32 // in-order bytes not yet reported to the app
	sndUna   tcp.Seq
	sndNxt   tcp.Seq
	sndMax   tcp.Seq // one past the highest sequence number sent (FIN included)
	sndWnd   uint32  // peer window in bytes
	wl1, wl2 tcp.Seq
	cwnd     uint32
	ssthresh uint32
	txBump   uint32 // acknowledged bytes not yet reported to the app
	txTail   uint32 // ring position of sndUna (our private TX tail)
	rttSeq   tcp.Seq
	rttTime  uint32 // µs
	recover  tcp.Seq
	advWnd   uint32 // window (bytes) in the last segment we sent
	mss      uint16
	ackPend  uint8 // full segments received since our last ACK
	evFlags  uint8 // event flags not yet reported
	retries  uint8 // consecutive RTOs
	tlp      uint8 // loss-probe state (tlpArmed, tlpProbed)
	heldGen  uint8 // numbers holdAck calls, so a stale ackHeld entry is told from the current one
}

// flowCold is per-flow state used off the common path.
type flowCold struct {
	ooo   tcp.OOO
	sb    tcp.Scoreboard
	rack  tcp.RACK
	rto   tcp.RTOEstimator
	pacer tcp.Pacer
	rx    appif.Ring
	tx    appif.Ring

	maxSndWnd      uint32  // MAX.SND.WND (RFC 5961 5.2)
	txCloseHead    uint32  // the app's TX head when it closed (final)
	lastInvalidAck uint64  // ns; rate limit of answers to invalid segments
	rxFinAt        tcp.Seq // the peer's FIN, seen out of order
	rxFinQueued    bool
	nagle          bool // the app asked for Nagle (appif.CmdNagle)
	// rxSweepHead is rxHead at the last idle-ring sweep; rxShrunk: the
	// RX ring's pages were released since it last moved (shrink.go).
	rxSweepHead uint32
	rxShrunk    bool
	// undoCwnd, undoSsthresh: the window before the last reduction, put
	// back if D-SACKs prove it spurious.
	undoCwnd, undoSsthresh uint32
	// intOn: our data asks switches for telemetry (intel.go); intEcho
	// holds the records of the peer's latest data segment, echoed on our
	// ACKs.
	intOn      bool
	intEchoLen uint8
	intEcho    [cc.INTMaxHops * cc.INTHopLen]byte
}

// Header sizes that bound the MSS: IPv4 and TCP without options, the
// Ethernet header, and the timestamp option with its NOPs (RFC 7323 3).
const (
	ipTCPHeaders   = wire.IPv4MinHeaderLen + wire.TCPMinHeaderLen
	ethernetHeader = 14
	tsOptionLen    = 12
	// minSndMSS is the smallest payload per segment we accept from a
	// peer's MSS (Linux tcp_min_snd_mss): MSS 1 would make a flow send
	// a frame per byte; our SACK option space needs it above 36 too.
	minSndMSS = 48
)

// optionsLen is the option space every segment of the flow carries
// (timestamps), which the MSS excludes.
func (f *flow) optionsLen() uint32 {
	if f.flags&fTS != 0 {
		return tsOptionLen
	}
	return 0
}

// clampMSS returns the payload per segment for a peer that announced
// mss (options excluded) on a flow with or without timestamps: at least
// minSndMSS, and small enough that a segment with all its options fits
// in one of our frames (nic.MaxFrame).
func clampMSS(mss uint32, ts bool) uint16 {
	most := uint32(nic.MaxFrame - ethernetHeader - ipTCPHeaders)
	if ts {
		most -= tsOptionLen
	}
	return uint16(max(min(mss, most), minSndMSS))
}

// pacerBurstBytes is how far a paced flow may run ahead of its rate.
const pacerBurstBytes = 20_000

// FlowCounters are per-flow statistics for congestion control, written by
// the owning core and read by the slow path.
type FlowCounters struct {
	AckedBytes  atomic.Uint64
	ECNBytes    atomic.Uint64 // acknowledged bytes whose ACK carried ECE
	Acks        atomic.Uint64 // ACKs that acknowledged new data
	SRTT        atomic.Uint32 // µs
	LastRTT     atomic.Uint32 // µs, the latest raw sample (delay-based CC wants it unsmoothed)
	RTTSamples  atomic.Uint32 // samples taken: tells the slow path whether LastRTT is new
	Retransmits atomic.Uint64 // segments sent again
	FastRetx    atomic.Uint64 // fast-retransmit (recovery) episodes
	RTOs        atomic.Uint64
	// RateKbps is set by the slow path's congestion control; 0 =
	// unlimited. A flow with a rate is paced, probes with its rate rather
	// than its window, and reacts to ECE only through the slow path.
	RateKbps atomic.Uint32
	// CwndCap, when not 0, caps the congestion window (bytes): set by a
	// window-based controller (cc.Windowed).
	CwndCap atomic.Uint32
	// INTSeq, INTHops and INT hold the telemetry the peer echoed last
	// (publishINT, ReadINT).
	INTSeq  atomic.Uint32
	INTHops atomic.Uint32
	INT     [intWords]atomic.Uint64
}

// FlowParams is what the slow path knows when a handshake completes.
type FlowParams struct {
	Key        FlowKey
	RemoteMAC  wire.MAC
	Ctx        uint16
	Handle     appif.Handle
	ISS, IRS   tcp.Seq // our and the peer's initial sequence numbers
	PeerWindow uint32  // bytes (already scaled)
	SndShift   uint8   // peer's shift (0 without window scaling)
	RcvShift   uint8   // ours
	MSS        uint16  // payload bytes per segment, options excluded
	SACK, TS   bool
	ECN        bool
	INT        bool   // ask switches for telemetry (PowerTCP)
	RateKbps   uint32 // the first rate (congestion control; 0: unlimited)
	CwndCap    uint32 // the first window cap (0: none)
	TSRecent   uint32
	RTTSample  uint32      // µs from the handshake; 0 if none
	Region     *shm.Region // the owning application's memory
	RxOff      uint64      // byte rings in Region
	RxSize     uint32
	TxOff      uint64
	TxSize     uint32
	// AdvWindow is the window (bytes) our last handshake segment offered.
	AdvWindow uint32
}

// Flows is the flow state all cores and the slow path share: hot and cold
// arrays indexed by flow id, counters, and the lookup table.
type Flows struct {
	Table    *FlowTable
	hot      []flow
	cold     []flowCold
	Counters []FlowCounters
	// pub holds each installed flow's handle, stored after its state is
	// written. A core that learns of a flow other than through the table
	// (an app command, a slow-path message) loads it first: the load
	// orders the state before the core's reads (the queues live in mmap'd
	// memory, whose atomics the race detector does not track), and a
	// mismatch means the command is stale.
	pub    []atomic.Uint64
	rtoMin uint32
}

// NewFlows allocates state for max flows. rtoMin (µs) is the floor of the retransmission timeout (0: default).
func NewFlows(max int, rtoMin uint32) *Flows {
	fs := &Flows{Table: NewFlowTable(max), hot: make([]flow, max), cold: make([]flowCold, max),
		Counters: make([]FlowCounters, max), pub: make([]atomic.Uint64, max), rtoMin: rtoMin}
	fs.Table.KeyOf = func(id uint32) *FlowKey { return &fs.hot[id].key }
	return fs
}

// Max is the number of flow ids.
func (fs *Flows) Max() int { return len(fs.hot) }

// Install writes flow id's state from p and publishes it in the table. The
// id must be free (never used, or reported gone by its core).
func (fs *Flows) Install(id uint32, p *FlowParams) error {
	rx, err := appif.OpenRing(p.Region, p.RxOff, p.RxSize)
	if err != nil {
		return err
	}
	tx, err := appif.OpenRing(p.Region, p.TxOff, p.TxSize)
	if err != nil {
		return err
	}
	f := &fs.hot[id]
	c := &fs.cold[id]
	mssField := clampMSS(uint32(p.MSS), p.TS)
	mss := uint32(mssField)
	*f = flow{key: p.Key, rmac: p.RemoteMAC, flags: fAlive, ctx: p.Ctx, sndShift: p.SndShift,
		handle: p.Handle, rcvNxt: p.IRS.Add(1), rxHead: rx.Head.Load(), tsRecent: p.TSRecent,
		sndUna: p.ISS.Add(1), sndNxt: p.ISS.Add(1), sndMax: p.ISS.Add(1), sndWnd: p.PeerWindow,
		wl1: p.IRS, wl2: p.ISS, cwnd: 10 * mss, ssthresh: 1 << 30, txTail: tx.Tail.Load(),
		recover: p.ISS, advWnd: p.AdvWindow, mss: mssField}
	f.rwin.Init(p.RcvShift, f.rcvNxt)
	f.rwin.SynField(f.rcvNxt, p.AdvWindow)
	if p.SACK {
		f.flags |= fSACK
	}
	if p.TS {
		f.flags |= fTS
	}
	if p.ECN {
		f.flags |= fECN
	}
	c.ooo.Reset(f.rcvNxt)
	c.sb.Init(f.sndUna, mss)
	c.rack.Init(f.sndUna)
	c.rto = tcp.NewRTOEstimator()
	if fs.rtoMin != 0 {
		c.rto.Min = fs.rtoMin
		c.rto.Reset()
	}
	if p.RTTSample != 0 {
		c.rto.Sample(p.RTTSample)
	}
	c.pacer = tcp.Pacer{Burst: pacerBurstBytes}
	c.rx, c.tx = rx, tx
	c.maxSndWnd, c.txCloseHead, c.lastInvalidAck = p.PeerWindow, 0, 0
	c.rxFinAt, c.rxFinQueued, c.nagle = 0, false, false
	c.intOn, c.intEchoLen = p.INT, 0
	ctr := &fs.Counters[id]
	ctr.AckedBytes.Store(0)
	ctr.ECNBytes.Store(0)
	ctr.Acks.Store(0)
	ctr.SRTT.Store(c.rto.SRTT())
	ctr.LastRTT.Store(p.RTTSample)
	ctr.RTTSamples.Store(0)
	ctr.Retransmits.Store(0)
	ctr.FastRetx.Store(0)
	ctr.RTOs.Store(0)
	ctr.RateKbps.Store(p.RateKbps)
	ctr.CwndCap.Store(p.CwndCap)
	ctr.INTSeq.Store(0)
	ctr.INTHops.Store(0)
	fs.pub[id].Store(uint64(p.Handle))
	if !fs.Table.Insert(p.Key.Hash(), id) {
		f.flags = 0
		return errTableFull
	}
	return nil
}

// Reclaim clears the flow table's tombstones after flow k left (slow path
// only; see FlowTable.Reclaim).
func (fs *Flows) Reclaim(k FlowKey) { fs.Table.Reclaim(k.Hash()) }

// Lookup returns the id of an installed flow (for tests and the slow path).
func (fs *Flows) Lookup(k FlowKey) (uint32, bool) { return fs.Table.Lookup(k.Hash(), &k) }
