package fastpath

import (
	"sync/atomic"

	"gotas/appif"
	"gotas/shm"
	"gotas/tcp"
	"gotas/wire"
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
}

// flowCold is per-flow state used off the common path.
type flowCold struct {
	ooo   tcp.OOO
	sb    tcp.Scoreboard
	rto   tcp.RTOEstimator
	pacer tcp.Pacer
	rx    appif.Ring
	tx    appif.Ring
}

// FlowCounters are per-flow statistics for congestion control, written by
// the owning core and read by the slow path.
type FlowCounters struct {
	AckedBytes  atomic.Uint64
	ECNBytes    atomic.Uint64 // acknowledged bytes whose ACK carried ECE
	SRTT        atomic.Uint32 // µs
	Retransmits atomic.Uint64 // segments sent again
	FastRetx    atomic.Uint64 // fast-retransmit (recovery) episodes
	RTOs        atomic.Uint64
	RateKbps    atomic.Uint32 // set by the slow path; 0 = unlimited
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
	TSRecent   uint32
	RTTSample  uint32 // µs from the handshake; 0 if none
	RxOff      uint64 // byte rings in the region
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
	region *shm.Region
	rtoMin uint32
}

// NewFlows allocates state for max flows whose rings live in region.
// rtoMin (µs) is the floor of the retransmission timeout (0: default).
func NewFlows(max int, region *shm.Region, rtoMin uint32) *Flows {
	fs := &Flows{Table: NewFlowTable(max), hot: make([]flow, max), cold: make([]flowCold, max),
		Counters: make([]FlowCounters, max), pub: make([]atomic.Uint64, max), region: region, rtoMin: rtoMin}
	fs.Table.KeyOf = func(id uint32) *FlowKey { return &fs.hot[id].key }
	return fs
}

// Max is the number of flow ids.
func (fs *Flows) Max() int { return len(fs.hot) }

// Install writes flow id's state from p and publishes it in the table. The
// id must be free (never used, or reported gone by its core).
func (fs *Flows) Install(id uint32, p *FlowParams) error {
	rx, err := appif.OpenRing(fs.region, p.RxOff, p.RxSize)
	if err != nil {
		return err
	}
	tx, err := appif.OpenRing(fs.region, p.TxOff, p.TxSize)
	if err != nil {
		return err
	}
	f := &fs.hot[id]
	c := &fs.cold[id]
	mss := uint32(p.MSS)
	*f = flow{key: p.Key, rmac: p.RemoteMAC, flags: fAlive, ctx: p.Ctx, sndShift: p.SndShift,
		handle: p.Handle, rcvNxt: p.IRS.Add(1), rxHead: rx.Head.Load(), tsRecent: p.TSRecent,
		sndUna: p.ISS.Add(1), sndNxt: p.ISS.Add(1), sndMax: p.ISS.Add(1), sndWnd: p.PeerWindow,
		wl1: p.IRS, wl2: p.ISS, cwnd: 10 * mss, ssthresh: 1 << 30, txTail: tx.Tail.Load(),
		recover: p.ISS, advWnd: p.AdvWindow, mss: p.MSS}
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
	c.rto = tcp.NewRTOEstimator()
	if fs.rtoMin != 0 {
		c.rto.Min = fs.rtoMin
		c.rto.Reset()
	}
	if p.RTTSample != 0 {
		c.rto.Sample(p.RTTSample)
	}
	c.pacer = tcp.Pacer{Burst: 20_000}
	c.rx, c.tx = rx, tx
	ctr := &fs.Counters[id]
	ctr.AckedBytes.Store(0)
	ctr.ECNBytes.Store(0)
	ctr.SRTT.Store(c.rto.SRTT())
	ctr.Retransmits.Store(0)
	ctr.FastRetx.Store(0)
	ctr.RTOs.Store(0)
	ctr.RateKbps.Store(0)
	fs.pub[id].Store(uint64(p.Handle))
	if !fs.Table.Insert(p.Key.Hash(), id) {
		f.flags = 0
		return errTableFull
	}
	return nil
}

// Lookup returns the id of an installed flow (for tests and the slow path).
func (fs *Flows) Lookup(k FlowKey) (uint32, bool) { return fs.Table.Lookup(k.Hash(), &k) }
