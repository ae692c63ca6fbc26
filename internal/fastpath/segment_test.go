package fastpath

// A packetimpact-style harness for Engine, after gVisor's tcp tests: one
// Engine, one application context and one established flow in a real
// shm region, driven a segment (or an app action, or a clock step) at a
// time, with every frame the engine sends parsed and checked. Everything
// runs on the test goroutine against a manual clock, so runs replay
// exactly.

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
	"testing"
	"time"
	"unsafe"

	"gotas/internal/appif"
	"gotas/internal/nic"
	"gotas/internal/shm"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// The flow's addresses: we are "local", the test plays the peer.
var (
	segLocalMAC = wire.MAC{0x02, 0, 0, 0, 0, 1}
	segPeerMAC  = wire.MAC{0x02, 0, 0, 0, 0, 2}
	segLocalIP  = wire.Addr4{10, 0, 0, 1}
	segPeerIP   = wire.Addr4{10, 0, 0, 2}
)

const (
	segLocalPort = 80
	segPeerPort  = 40000
	// An id and generation other than 0 catch handle/id mix-ups.
	segFlowID  = 3
	segFlowGen = 7
	segCtx     = 0
	// segTxFrames is the TxBatch capacity: well above the per-step frame
	// bound the fuzzer asserts, so a runaway loop shows up as a count,
	// not as a silently full batch.
	segTxFrames = 160
	segCtlSlots = 64
	segAppSlots = 256
)

// segOpts are the flow's negotiated parameters; zero fields get defaults.
type segOpts struct {
	ISS, IRS           tcp.Seq
	MSS                uint16 // 0: 1460, 1448 with TS (set NoMSSDefault to install 0)
	NoMSSDefault       bool
	SACK, TS, ECN      bool
	SndShift, RcvShift uint8
	RxSize, TxSize     uint32 // ring sizes, powers of two; 0: 64 KiB
	PeerWindow         uint32 // bytes; 0: 65535 (set ZeroPeerWindow for 0)
	ZeroPeerWindow     bool
	AdvWindow          uint32 // 0: min(RxSize, 65535)
	TSRecent           uint32
	RTTSample          uint32 // µs
	RTOMin             uint32 // µs, Flows' floor (0: default)
	MaxRetries         int
	AckHold            time.Duration
	// LargeFrame gives the batch large buffers of that size, as a Core
	// over a nic.SegmentSender has (0: none).
	LargeFrame int
}

func (o *segOpts) defaults() {
	if o.MSS == 0 && !o.NoMSSDefault {
		o.MSS = 1460 // a 1500-byte MTU, as the slow path computes it
		if o.TS {
			o.MSS -= 12
		}
	}
	if o.RxSize == 0 {
		o.RxSize = 1 << 16
	}
	if o.TxSize == 0 {
		o.TxSize = 1 << 16
	}
	if o.PeerWindow == 0 && !o.ZeroPeerWindow {
		o.PeerWindow = 65535
	}
	if o.AdvWindow == 0 {
		o.AdvWindow = min(o.RxSize, 65535)
	}
}

// segHarness is one engine with one installed flow; the test is both the
// peer (send) and the application (appWrite, appRead, appClose).
type segHarness struct {
	t      testing.TB
	o      segOpts
	now    uint64 // ns; the engine's clock
	region *shm.Region
	sh     *Shared
	eng    *Engine
	batch  *TxBatch
	ktx    *shm.Producer // slow path -> core
	krxC   *shm.Consumer // core -> slow path
	cmd    *shm.Producer // app -> core
	ev     *shm.Consumer // core -> app
	key    FlowKey
	handle appif.Handle
	rx, tx appif.Ring // the app's views of the flow's rings
	txHead uint32     // the app's private TX write position
	peerTS uint32     // TSval the peer puts on its next segment
	lastTS uint32     // the last TSval the engine sent
}

// newSegHarness builds the region, the engine, the context and the flow.
func newSegHarness(t testing.TB, o segOpts) *segHarness {
	t.Helper()
	o.defaults()
	h := &segHarness{t: t, o: o, now: 1_000_000_000, peerTS: 1000,
		key:    FlowKey{LocalIP: segLocalIP, RemoteIP: segPeerIP, LocalPort: segLocalPort, RemotePort: segPeerPort},
		handle: appif.MakeHandle(segFlowID, segFlowGen)}
	size := 4*shm.QueueSize(CtlSlot, segCtlSlots) + shm.RingAreaSize(o.RxSize) + shm.RingAreaSize(o.TxSize) + 1<<20
	r, err := shm.Create("segtest", size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	h.region = r
	alloc := shm.NewAllocator(0, size)
	h.sh = &Shared{Region: r, Flows: NewFlows(8, o.RTOMin)}
	ktxOff := h.newQueue(alloc, CtlSlot, segCtlSlots)
	krxOff := h.newQueue(alloc, CtlSlot, segCtlSlots)
	h.eng, err = NewEngine(h.sh, EngineConfig{MAC: segLocalMAC, IP: segLocalIP, Clock: func() uint64 { return h.now }, AckHold: o.AckHold,
		MaxRetries: o.MaxRetries, KtxOff: ktxOff, KrxOff: krxOff, CtlSlots: segCtlSlots})
	if err != nil {
		t.Fatal(err)
	}
	h.ktx = h.must(shm.NewProducer(r, ktxOff, CtlSlot, segCtlSlots, nil))
	h.krxC = h.mustC(shm.NewConsumer(r, krxOff, CtlSlot, segCtlSlots, nil))
	h.batch = NewTxBatch(segTxFrames)
	if o.LargeFrame > 0 {
		h.batch = newSegmentBatch(segTxFrames, o.LargeFrame)
	}
	h.attachContext(alloc)
	h.installFlow(alloc)
	return h
}

func (h *segHarness) newQueue(a *shm.Allocator, slot, slots uint32) uint64 {
	off, err := a.Alloc(shm.QueueSize(slot, slots), shm.CacheLine)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := shm.InitQueue(h.region, off, slot, slots); err != nil {
		h.t.Fatal(err)
	}
	return off
}

func (h *segHarness) newRing(a *shm.Allocator, size uint32) uint64 {
	off, err := a.Alloc(shm.RingAreaSize(size), shm.CacheLine)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := shm.InitRing(h.region, off, size); err != nil {
		h.t.Fatal(err)
	}
	return off
}

func (h *segHarness) must(p *shm.Producer, err error) *shm.Producer {
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *segHarness) mustC(c *shm.Consumer, err error) *shm.Consumer {
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// attachContext registers context 0 the way the slow path does: publish
// the ContextInfo, then tell the core with KtxAddContext.
func (h *segHarness) attachContext(a *shm.Allocator) {
	d := appif.Desc{Index: segCtx, CmdSlots: segAppSlots, EvSlots: segAppSlots,
		CmdOff: []uint64{h.newQueue(a, appif.CmdSlot, segAppSlots)},
		EvOff:  []uint64{h.newQueue(a, appif.EvSlot, segAppSlots)}}
	h.sh.Contexts[segCtx].Store(&ContextInfo{Desc: d, Region: h.region})
	h.cmd = h.must(shm.NewProducer(h.region, d.CmdOff[0], appif.CmdSlot, segAppSlots, nil))
	h.ev = h.mustC(shm.NewConsumer(h.region, d.EvOff[0], appif.EvSlot, segAppSlots, nil))
	h.ktxSend(CtlMsg{Type: KtxAddContext, ID: segCtx})
	if out := h.poll(); len(out) != 0 {
		h.t.Fatalf("attaching a context sent %d frames", len(out))
	}
	if h.eng.ctxs[segCtx].ev == nil {
		h.t.Fatal("context not attached")
	}
}

func (h *segHarness) installFlow(a *shm.Allocator) {
	o := &h.o
	p := FlowParams{Key: h.key, RemoteMAC: segPeerMAC, Ctx: segCtx, Handle: h.handle,
		ISS: o.ISS, IRS: o.IRS, PeerWindow: o.PeerWindow, SndShift: o.SndShift, RcvShift: o.RcvShift,
		MSS: o.MSS, SACK: o.SACK, TS: o.TS, ECN: o.ECN, TSRecent: o.TSRecent, RTTSample: o.RTTSample,
		Region: h.region, RxOff: h.newRing(a, o.RxSize), RxSize: o.RxSize, TxOff: h.newRing(a, o.TxSize), TxSize: o.TxSize,
		AdvWindow: o.AdvWindow}
	if err := h.sh.Flows.Install(segFlowID, &p); err != nil {
		h.t.Fatal(err)
	}
	var err error
	if h.rx, err = appif.OpenRing(h.region, p.RxOff, p.RxSize); err != nil {
		h.t.Fatal(err)
	}
	if h.tx, err = appif.OpenRing(h.region, p.TxOff, p.TxSize); err != nil {
		h.t.Fatal(err)
	}
}

func (h *segHarness) ktxSend(m CtlMsg) {
	if n, _ := h.ktx.Reserve(1); n != 1 {
		h.t.Fatal("KTX queue full")
	}
	m.Put(h.ktx.Slot(0))
	h.ktx.Commit(1)
}

// segSpec describes one segment from the peer. Seq and Ack are relative
// to IRS+1 and ISS+1 (Wireshark's relative numbers) unless SeqAbs/AckAbs;
// SACK blocks are relative to ISS+1 unless SACKAbs.
type segSpec struct {
	Flags          wire.TCPFlags
	Seq, Ack       uint32
	SeqAbs, AckAbs bool
	Window         uint16 // the raw field (the flow scales it by SndShift)
	// Opts, when set, are sent as they are (absolute numbers, no
	// timestamp filled in). Otherwise a flow with timestamps gets the
	// peer's clock and an echo of the engine's last TSval, and SACK, if
	// any, is added.
	Opts    *wire.TCPOptions
	NoTS    bool // with Opts nil: leave the timestamps out
	SACK    []wire.SACKBlock
	SACKAbs bool
	// RawOpts replaces the options with these bytes (padded with EOL to
	// a multiple of 4), for malformed options.
	RawOpts []byte
	Payload []byte
	TOS     uint8
	IPOpts  []byte // IPv4 options, padded to a multiple of 4
	Urgent  uint16 // urgent pointer (set TCPFlagURG in Flags for it to mean anything)
	BadCsum bool   // corrupt the TCP checksum
}

// segOut is one frame the engine sent, parsed. Seq and Ack are absolute.
type segOut struct {
	Flags    wire.TCPFlags
	Seq, Ack tcp.Seq
	Window   uint16
	Opts     wire.TCPOptions
	Payload  []byte
	TOS      uint8
	Len      int // frame length
	// Seg is the segment size of a frame the queue is to cut (its
	// checksum field holds the pseudo-header sum), 0 for a whole one.
	Seg uint16
}

// relSeq and relAck give an outgoing segment's numbers relative to ISS+1
// and IRS+1.
func (h *segHarness) relSeq(s segOut) uint32 { return uint32(s.Seq - h.o.ISS.Add(1)) }
func (h *segHarness) relAck(s segOut) uint32 { return uint32(s.Ack - h.o.IRS.Add(1)) }

// frame builds the Ethernet/IPv4/TCP frame for s with a correct checksum
// (unless BadCsum).
func (h *segHarness) frame(s *segSpec) []byte {
	seq, ack := s.Seq, s.Ack
	if !s.SeqAbs {
		seq += uint32(h.o.IRS.Add(1))
	}
	if !s.AckAbs {
		ack += uint32(h.o.ISS.Add(1))
	}
	var tcpOpts [wire.TCPMaxOptionsLen]byte
	optLen := 0
	if s.RawOpts != nil {
		optLen = (copy(tcpOpts[:], s.RawOpts) + 3) &^ 3
	} else {
		o := h.peerOptions(s)
		optLen = o.Put(tcpOpts[:])
	}
	ipOptLen := (min(len(s.IPOpts), 40) + 3) &^ 3
	ipLen := wire.IPv4MinHeaderLen + ipOptLen
	tcpLen := wire.TCPMinHeaderLen + optLen + len(s.Payload)
	b := make([]byte, wire.EthernetHeaderLen+ipLen+tcpLen)
	k := wire.PutEthernet(b, segLocalMAC, segPeerMAC, wire.EtherTypeIPv4)
	wire.PutIPv4(b[k:], wire.IPv4Fields{TOS: s.TOS, TotalLen: uint16(ipLen + tcpLen), DF: true, TTL: 64,
		Protocol: wire.IPProtoTCP, Src: segPeerIP, Dst: segLocalIP})
	if ipOptLen > 0 {
		ip := wire.IPv4(b[k:])
		b[k] = 0x40 | uint8(ipLen/4)
		copy(b[k+wire.IPv4MinHeaderLen:], s.IPOpts)
		ip.UpdateChecksum()
	}
	k += ipLen
	seg := b[k:]
	wire.PutTCP(seg, wire.TCPFields{SrcPort: segPeerPort, DstPort: segLocalPort, SeqNum: seq, AckNum: ack,
		Flags: s.Flags, Window: s.Window, UrgentPtr: s.Urgent}, nil)
	copy(seg[wire.TCPMinHeaderLen:], tcpOpts[:optLen])
	wire.TCP(seg).SetDataOffset(wire.TCPMinHeaderLen + optLen)
	copy(seg[wire.TCPMinHeaderLen+optLen:], s.Payload)
	wire.SetTCPChecksum(segPeerIP, segLocalIP, seg)
	if s.BadCsum {
		seg[16] ^= 0x55
	}
	return b
}

// peerOptions are the options a well-behaved peer would put on s.
func (h *segHarness) peerOptions(s *segSpec) *wire.TCPOptions {
	if s.Opts != nil {
		return s.Opts
	}
	o := &wire.TCPOptions{}
	if h.o.TS && !s.NoTS {
		o.Present |= wire.OptTimestamps
		o.TSVal, o.TSEcr = h.peerTS, h.lastTS
	}
	base := uint32(h.o.ISS.Add(1))
	if s.SACKAbs {
		base = 0
	}
	for _, b := range s.SACK {
		o.AddSACK(wire.SACKBlock{Start: b.Start + base, End: b.End + base})
	}
	return o
}

// send delivers one peer segment and runs the engine's iteration; it
// returns what the engine sent.
func (h *segHarness) send(s segSpec) []segOut {
	h.t.Helper()
	return h.sendFrame(h.frame(&s))
}

// sendFrame delivers raw bytes as a received frame.
func (h *segHarness) sendFrame(fr []byte) []segOut {
	h.t.Helper()
	h.eng.Begin()
	h.eng.HandleFrame(fr, h.batch)
	return h.finish()
}

// poll runs one engine iteration with no frame received.
func (h *segHarness) poll() []segOut {
	h.t.Helper()
	h.eng.Begin()
	return h.finish()
}

// finish runs the iteration's Poll, and more while the engine holds
// ACKs (holdAck), as a core does: it does not sleep with them pending.
func (h *segHarness) finish() []segOut {
	h.t.Helper()
	h.eng.Poll(h.batch)
	for range 2 {
		if len(h.eng.ackHeld) == 0 {
			break
		}
		h.eng.Begin()
		h.eng.Poll(h.batch)
	}
	out := make([]segOut, 0, h.batch.Len())
	for i, fr := range h.batch.Frames() {
		out = append(out, h.parseSeg(fr, h.batch.segs[i]))
	}
	h.batch.Reset()
	return out
}

// advance moves the clock by d and runs an iteration (timers fire).
func (h *segHarness) advance(d time.Duration) []segOut {
	h.t.Helper()
	h.now += uint64(d)
	return h.poll()
}

// parse checks an outgoing frame from the Ethernet header to the TCP
// checksum and returns its fields.
func (h *segHarness) parse(fr []byte) segOut { return h.parseSeg(fr, 0) }

// parseSeg is parse for a frame committed with segment size seg: with a
// non-zero seg it may be as long as the batch's large buffers, and its
// checksum field must hold the pseudo-header sum.
func (h *segHarness) parseSeg(fr []byte, segSize uint16) segOut {
	h.t.Helper()
	t := h.t
	maxLen := nic.MaxFrame
	if segSize != 0 {
		maxLen = h.batch.LargeFrame()
	}
	if len(fr) > maxLen || len(fr) < 60 {
		t.Fatalf("frame of %d bytes (want 60..%d)", len(fr), maxLen)
	}
	et, hl, err := wire.ParseEthernet(fr)
	eth := wire.Ethernet(fr)
	if err != nil || et != wire.EtherTypeIPv4 || eth.Dst() != segPeerMAC || eth.Src() != segLocalMAC {
		t.Fatalf("bad Ethernet header: type %#x, %v -> %v, %v", et, eth.Src(), eth.Dst(), err)
	}
	ip, err := wire.ParseIPv4(fr[hl:])
	if err != nil || !ip.ChecksumValid() || ip.HasOptions() || ip.Protocol() != wire.IPProtoTCP ||
		ip.Src() != segLocalIP || ip.Dst() != segPeerIP || ip.TTL() == 0 || ip.IsFragment() {
		t.Fatalf("bad IPv4 header % x (%v)", fr[hl:min(len(fr), hl+20)], err)
	}
	seg, err := wire.ParseTCP(ip.Payload())
	csumOK := err == nil && wire.VerifyTCPChecksum(ip.Src(), ip.Dst(), seg)
	if segSize != 0 {
		csumOK = err == nil && wire.IsPartialChecksum(binary.BigEndian.Uint16(seg[16:]), wire.IPProtoTCP, ip.Src(), ip.Dst(), len(seg))
	}
	if err != nil || !csumOK {
		t.Fatalf("bad TCP segment (%v, checksum ok %v)", err, csumOK)
	}
	if seg.SrcPort() != segLocalPort || seg.DstPort() != segPeerPort {
		t.Fatalf("segment on ports %d -> %d", seg.SrcPort(), seg.DstPort())
	}
	s := segOut{Flags: seg.Flags(), Seq: tcp.Seq(seg.SeqNum()), Ack: tcp.Seq(seg.AckNum()), Window: seg.Window(),
		Payload: append([]byte(nil), seg.Payload()...), TOS: ip.TOS(), Len: len(fr), Seg: segSize}
	if err := wire.ParseTCPOptions(seg.Options(), &s.Opts); err != nil {
		t.Fatalf("engine sent unparsable options % x: %v", seg.Options(), err)
	}
	if s.Opts.Has(wire.OptTimestamps) {
		h.lastTS = s.Opts.TSVal
	}
	return s
}

// post sends an application command and runs an iteration.
func (h *segHarness) post(c appif.Cmd) []segOut {
	h.t.Helper()
	if n, _ := h.cmd.Reserve(1); n != 1 {
		h.t.Fatal("command queue full")
	}
	c.Put(h.cmd.Slot(0))
	h.cmd.Commit(1)
	return h.poll()
}

// txFree is the room the app has in the TX ring.
func (h *segHarness) txFree() uint32 {
	used := h.txHead - h.tx.Tail.Load()
	if used > h.tx.Mask+1 {
		return 0
	}
	return h.tx.Mask + 1 - used
}

// appWrite appends b (all of it: the test must check txFree) to the TX
// ring and posts the command that says so.
func (h *segHarness) appWrite(b []byte) []segOut {
	h.t.Helper()
	if uint32(len(b)) > h.txFree() {
		h.t.Fatalf("appWrite of %d bytes, %d free", len(b), h.txFree())
	}
	h.ringPut(b)
	return h.post(appif.Cmd{Conn: h.handle, TxBump: uint32(len(b))})
}

func (h *segHarness) ringPut(b []byte) {
	start := h.txHead & h.tx.Mask
	k := copy(h.tx.Data[start:], b)
	copy(h.tx.Data, b[k:])
	h.txHead += uint32(len(b))
	h.tx.Head.Store(h.txHead)
}

// appRead consumes everything readable from the RX ring and returns it
// to the engine with an RxBump command.
func (h *segHarness) appRead() ([]byte, []segOut) {
	h.t.Helper()
	head, tail := h.rx.Head.Load(), h.rx.Tail.Load()
	n := head - tail
	if n > h.rx.Mask+1 {
		h.t.Fatalf("RX ring head %d tail %d: more than its %d bytes", head, tail, h.rx.Mask+1)
	}
	data := make([]byte, n)
	start := tail & h.rx.Mask
	k := copy(data, h.rx.Data[start:])
	copy(data[k:], h.rx.Data)
	h.rx.Tail.Store(head)
	return data, h.post(appif.Cmd{Conn: h.handle, RxBump: n})
}

// appClose says the app will write nothing more (FIN after the data).
func (h *segHarness) appClose() []segOut {
	return h.post(appif.Cmd{Conn: h.handle, Flags: appif.CmdTxClose})
}

// events drains the context's event queue.
func (h *segHarness) events() []appif.Ev {
	n, err := h.ev.Peek(segAppSlots)
	if err != nil {
		h.t.Fatalf("event queue: %v", err)
	}
	evs := make([]appif.Ev, n)
	for i := range evs {
		evs[i].Get(h.ev.Slot(i))
	}
	h.ev.Release(n)
	return evs
}

// krxMsg is one message from the core to the slow path.
type krxMsg struct {
	CtlMsg
	Frame []byte // KrxFrame: the punted frame
}

// krx drains the core's queue to the slow path.
func (h *segHarness) krx() []krxMsg {
	n, err := h.krxC.Peek(segCtlSlots)
	if err != nil {
		h.t.Fatalf("KRX queue: %v", err)
	}
	ms := make([]krxMsg, n)
	for i := range ms {
		s := h.krxC.Slot(i)
		ms[i].Get(s)
		if ms[i].Type == KrxFrame {
			ms[i].Frame = append([]byte(nil), ms[i].CtlMsg.Frame(s)...)
		}
	}
	h.krxC.Release(n)
	return ms
}

// Flow state, for assertions.
func (h *segHarness) f() *flow           { return &h.sh.Flows.hot[segFlowID] }
func (h *segHarness) c() *flowCold       { return &h.sh.Flows.cold[segFlowID] }
func (h *segHarness) alive() bool        { return h.f().flags&fAlive != 0 }
func (h *segHarness) sndUna() tcp.Seq    { return h.f().sndUna }
func (h *segHarness) sndNxt() tcp.Seq    { return h.f().sndNxt }
func (h *segHarness) sndMax() tcp.Seq    { return h.f().sndMax }
func (h *segHarness) rcvNxt() tcp.Seq    { return h.f().rcvNxt }
func (h *segHarness) sndWnd() uint32     { return h.f().sndWnd }
func (h *segHarness) tsRecent() uint32   { return h.f().tsRecent }
func (h *segHarness) mss() uint16        { return h.f().mss }
func (h *segHarness) cwnd() uint32       { return h.f().cwnd }
func (h *segHarness) flowFlags() uint16  { return h.f().flags }
func (h *segHarness) stats() EngineStats { return h.eng.Stats() }

// ack is the pure ACK a peer sends for everything we sent, at its next
// sequence number.
func (h *segHarness) peerAck() segSpec {
	return segSpec{Flags: wire.TCPFlagACK, Seq: h.rel(h.rcvNxt()), Ack: uint32(h.sndMax() - h.o.ISS.Add(1)), Window: 0xffff}
}

// rel converts a peer sequence number to relative.
func (h *segHarness) rel(s tcp.Seq) uint32 { return uint32(s - h.o.IRS.Add(1)) }

// onlyOne fails unless out holds exactly one segment, which it returns.
func onlyOne(t testing.TB, what string, out []segOut) segOut {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("%s: engine sent %d segments, want 1: %+v", what, len(out), out)
	}
	return out[0]
}

// wantSeg checks the fields every test cares about on one reply.
func (h *segHarness) wantSeg(what string, s segOut, flags wire.TCPFlags, relSeq, relAck uint32, payload int) {
	h.t.Helper()
	if s.Flags != flags || h.relSeq(s) != relSeq || h.relAck(s) != relAck || len(s.Payload) != payload {
		h.t.Fatalf("%s: got %v seq %d ack %d len %d, want %v seq %d ack %d len %d", what,
			s.Flags, h.relSeq(s), h.relAck(s), len(s.Payload), flags, relSeq, relAck, payload)
	}
}

func segPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestSegInOrderDataAcked(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 0xfffffff0, IRS: 5000, TS: true, RxSize: 1 << 14, RcvShift: 2, TSRecent: 900})
	data := segPayload(100, 1)
	out := h.send(segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: data})
	a := onlyOne(t, "in-order data", out)
	h.wantSeg("in-order data", a, wire.TCPFlagACK, 0, 100, 0)
	if want := uint16((1<<14 - 100) >> 2); a.Window != want {
		t.Errorf("window field %d, want %d (free space >> shift 2)", a.Window, want)
	}
	if !a.Opts.Has(wire.OptTimestamps) || a.Opts.TSEcr != h.peerTS || a.Opts.TSVal != tcp.TSClock(h.now) {
		t.Errorf("timestamps %+v, want TSval %d TSecr %d", a.Opts, tcp.TSClock(h.now), h.peerTS)
	}
	if a.TOS != 0 {
		t.Errorf("pure ACK with TOS %#x, want 0 (no ECT without ECN)", a.TOS)
	}
	if h.rcvNxt() != h.o.IRS.Add(101) || h.tsRecent() != h.peerTS {
		t.Errorf("rcv_nxt %d ts_recent %d", h.rcvNxt(), h.tsRecent())
	}
	evs := h.events()
	if len(evs) != 1 || evs[0].Conn != h.handle || evs[0].RxBump != 100 || evs[0].TxBump != 0 {
		t.Fatalf("events %+v, want one RxBump 100", evs)
	}
	got, out := h.appRead()
	if string(got) != string(data) {
		t.Fatalf("app read %d bytes, not the payload", len(got))
	}
	if len(out) != 0 { // 100 bytes read do not reopen a window worth an update
		t.Errorf("reading 100 bytes sent %d segments", len(out))
	}
}

func TestSegRetransmittedDataGetsDupAck(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 77})
	seg := segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: segPayload(300, 9)}
	h.wantSeg("first copy", onlyOne(t, "first copy", h.send(seg)), wire.TCPFlagACK, 0, 300, 0)
	dup := onlyOne(t, "retransmission", h.send(seg))
	h.wantSeg("retransmission", dup, wire.TCPFlagACK, 0, 300, 0)
	if st := h.stats(); st.RxDupData != 1 || st.RxBytes != 300 {
		t.Errorf("RxDupData %d RxBytes %d, want 1 and 300", st.RxDupData, st.RxBytes)
	}
	if h.rx.Head.Load() != 300 {
		t.Errorf("RX head %d after a duplicate, want 300", h.rx.Head.Load())
	}
}

func TestSegExactRSTRemovesFlow(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 1 << 31, IRS: 42})
	h.send(segSpec{Flags: wire.TCPFlagACK, Window: 0xffff, Payload: segPayload(10, 0)})
	h.krx()
	if out := h.send(segSpec{Flags: wire.TCPFlagRST, Seq: 10}); len(out) != 0 {
		t.Fatalf("RST answered with %d segments", len(out))
	}
	if h.alive() {
		t.Fatal("flow alive after an exact RST")
	}
	ms := h.krx()
	if len(ms) != 1 || ms[0].Type != KrxGone || ms[0].Reason != GoneReset || ms[0].ID != segFlowID ||
		ms[0].Handle != uint64(h.handle) || ms[0].RcvNxt != uint32(h.o.IRS.Add(11)) || ms[0].SndNxt != uint32(h.o.ISS.Add(1)) {
		t.Fatalf("KRX %+v, want one KrxGone(GoneReset) for flow %d", ms, segFlowID)
	}
	if h.stats().Resets != 1 {
		t.Errorf("Resets = %d", h.stats().Resets)
	}
	// The flow's later segments are the slow path's now.
	if out := h.send(segSpec{Flags: wire.TCPFlagACK, Seq: 10, Window: 0xffff}); len(out) != 0 {
		t.Fatalf("segment after removal answered by the fast path")
	}
	if ms := h.krx(); len(ms) != 1 || ms[0].Type != KrxFrame || ms[0].Reason != PuntNoFlow {
		t.Fatalf("KRX %+v, want the segment punted (PuntNoFlow)", ms)
	}
}

func TestSegInWindowRSTGetsChallengeAck(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 0xffffff00, TS: true})
	a := onlyOne(t, "RST at rcv_nxt+1000", h.send(segSpec{Flags: wire.TCPFlagRST, Seq: 1000, NoTS: true}))
	h.wantSeg("challenge ACK", a, wire.TCPFlagACK, 0, 0, 0)
	if !h.alive() || h.stats().ChallengeAcks != 1 {
		t.Fatalf("alive %v, ChallengeAcks %d", h.alive(), h.stats().ChallengeAcks)
	}
	// Outside the advertised window: dropped without an answer.
	if out := h.send(segSpec{Flags: wire.TCPFlagRST, Seq: h.o.AdvWindow + 1}); len(out) != 0 {
		t.Fatalf("out-of-window RST answered with %d segments", len(out))
	}
	if !h.alive() || len(h.krx()) != 0 {
		t.Fatal("out-of-window RST affected the flow")
	}
}

func TestSegAppDataSegmentedAtMSS(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 100, IRS: 200, MSS: 1000, ECN: true})
	data := segPayload(3500, 3)
	out := h.appWrite(data)
	if len(out) != 4 {
		t.Fatalf("3500 bytes at MSS 1000 went out in %d segments, want 4", len(out))
	}
	for i, s := range out {
		n := min(1000, 3500-1000*i)
		h.wantSeg("data segment", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(1000*i), 0, n)
		if string(s.Payload) != string(data[1000*i:1000*i+n]) {
			t.Fatalf("segment %d payload differs from the app's bytes", i)
		}
		if s.TOS&3 != 2 {
			t.Errorf("segment %d TOS %#x, want ECT(0) with ECN on", i, s.TOS)
		}
	}
	if h.sndNxt() != h.o.ISS.Add(3501) || h.sndMax() != h.sndNxt() || h.sndUna() != h.o.ISS.Add(1) {
		t.Fatalf("snd una/nxt/max %d/%d/%d", h.sndUna(), h.sndNxt(), h.sndMax())
	}
	// The peer acknowledges everything: the ring space comes back.
	h.send(h.peerAck())
	evs := h.events()
	if len(evs) != 1 || evs[0].TxBump != 3500 || h.tx.Tail.Load() != 3500 {
		t.Fatalf("events %+v, TX tail %d; want TxBump 3500", evs, h.tx.Tail.Load())
	}
}

func TestSegRTORetransmitsFromSndUna(t *testing.T) {
	h := newSegHarness(t, segOpts{MSS: 1000})
	data := segPayload(3000, 5)
	if out := h.appWrite(data); len(out) != 3 {
		t.Fatalf("sent %d segments, want 3", len(out))
	}
	h.advance(10 * time.Millisecond)
	ack := h.peerAck()
	ack.Ack = 1000
	if out := h.send(ack); len(out) != 0 {
		t.Fatalf("partial ACK answered with %d segments", len(out))
	}
	if out := h.advance(100 * time.Millisecond); len(out) != 0 {
		t.Fatalf("%d segments before the RTO", len(out))
	}
	out := h.advance(2 * time.Second)
	r := onlyOne(t, "RTO", out)
	h.wantSeg("retransmission", r, wire.TCPFlagACK|wire.TCPFlagPSH, 1000, 0, 1000)
	if string(r.Payload) != string(data[1000:2000]) {
		t.Fatal("retransmitted payload differs")
	}
	if st := h.stats(); st.RTOs != 1 || st.TxRetransmits != 1 || h.cwnd() != 1000 {
		t.Fatalf("RTOs %d retransmits %d cwnd %d", st.RTOs, st.TxRetransmits, h.cwnd())
	}
}

// TestSegAppNotDrainingEventsLetsCoreSleep: an application that never
// reads its event queue fills it; the events that wait must not keep the
// core from sleeping (it spun at 100% CPU), only make it retry soon.
func TestSegAppNotDrainingEventsLetsCoreSleep(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 5000, RxSize: 1 << 16})
	for i := range segAppSlots + 8 {
		h.send(segSpec{Flags: wire.TCPFlagACK, Seq: uint32(10 * i), Window: 0xffff, Payload: segPayload(10, byte(i))})
	}
	if st := h.eng.Stats(); st.EventsDeferred == 0 {
		t.Fatal("the event queue never filled")
	}
	h.poll()
	if !h.eng.PrepareSleep() {
		t.Fatal("events blocked on a full queue keep the core awake")
	}
	h.eng.Woke()
	if at, ok := h.eng.NextDeadline(); !ok || at > h.now+eventRetrySleepNs {
		t.Fatalf("next deadline %d (ok %v), want a retry within %d ns", at-h.now, ok, eventRetrySleepNs)
	}
	// Once the application reads, the waiting event goes out.
	h.events()
	h.advance(time.Millisecond)
	if evs := h.events(); len(evs) == 0 {
		t.Fatal("the deferred event was never delivered")
	}
}

// resident counts the resident pages of the whole pages within b.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	page := uintptr(shm.PageSize)
	start, end := (base+page-1)&^(page-1), (base+uintptr(len(b)))&^(page-1)
	vec := make([]byte, (end-start)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, start, end-start, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestSegIdleRxRingReleasesItsPages: a flow that received 48 KiB, all of
// it read, gives its RX ring pages back after a sweep round of idleness;
// the stream then goes on where it was, byte for byte.
func TestSegIdleRxRingReleasesItsPages(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 5000, RxSize: 1 << 16})
	const seg = 1000
	for i := range 48 {
		h.send(segSpec{Flags: wire.TCPFlagACK, Seq: uint32(seg * i), Window: 0xffff, Payload: segPayload(seg, byte(i))})
	}
	h.appRead()
	before := resident(t, h.rx.Data)
	if before < 10 {
		t.Fatalf("only %d pages resident after 48 KiB", before)
	}
	h.advance(2 * shrinkSweepNs) // first sweep: idle since when?
	h.advance(2 * shrinkSweepNs) // second: still idle, released
	if after := resident(t, h.rx.Data); after > 0 || h.eng.Stats().RingBytesReleased == 0 {
		t.Fatalf("resident pages %d -> %d, released %d bytes", before, after, h.eng.Stats().RingBytesReleased)
	}
	more := segPayload(seg, 99)
	h.send(segSpec{Flags: wire.TCPFlagACK, Seq: 48 * seg, Window: 0xffff, Payload: more})
	got, _ := h.appRead()
	if string(got) != string(more) {
		t.Fatal("data after the release differs")
	}
}

// TestSegRxRingWithUnreadDataKeepsItsPages: data not yet read, or held
// out of order, is never released.
func TestSegRxRingWithUnreadDataKeepsItsPages(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 5000, RxSize: 1 << 16, SACK: true})
	h.send(segSpec{Flags: wire.TCPFlagACK, Seq: 0, Window: 0xffff, Payload: segPayload(20000, 1)})
	h.send(segSpec{Flags: wire.TCPFlagACK, Seq: 30000, Window: 0xffff, Payload: segPayload(8000, 2)})
	for range 4 {
		h.advance(2 * shrinkSweepNs)
	}
	h.appRead() // the first 20000 bytes: the gap keeps the rest out of order
	for range 4 {
		h.advance(2 * shrinkSweepNs)
	}
	if r := h.eng.Stats().RingBytesReleased; r != 0 {
		t.Fatalf("released %d bytes of a ring with unread or out-of-order data", r)
	}
	h.send(segSpec{Flags: wire.TCPFlagACK, Seq: 20000, Window: 0xffff, Payload: segPayload(10000, 3)})
	got, _ := h.appRead()
	want := append(segPayload(10000, 3), segPayload(8000, 2)...)
	if string(got) != string(want) {
		t.Fatalf("got %d bytes after filling the gap, want %d intact", len(got), len(want))
	}
}

// TestSegNoWindowUpdateAfterPeerFIN: once the peer's FIN is in, reading
// the data sends no window update: the peer sends nothing more, and a
// peer that has closed (Linux in LAST_ACK) answers it with a RST.
func TestSegNoWindowUpdateAfterPeerFIN(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 5000, RxSize: 1 << 14})
	const n = 1000
	for i := range 12 {
		h.send(segSpec{Flags: wire.TCPFlagACK, Seq: uint32(n * i), Window: 0xffff, Payload: segPayload(n, byte(i))})
	}
	h.send(segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Seq: 12 * n, Window: 0xffff})
	if _, out := h.appRead(); len(out) != 0 {
		t.Fatalf("reading after the peer's FIN sent %d segments (a window update)", len(out))
	}
}

// A request's ACK waits one iteration (holdAck), so that the answer the
// application posts before the next one carries it: one segment back,
// not a pure ACK and then the data. Unanswered, the ACK goes out at the
// end of the next iteration (TestSegInOrderDataAcked).
func TestSegAnswerCarriesTheAck(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 1000, IRS: 5000, TS: true, RxSize: 1 << 14, TxSize: 1 << 14, RcvShift: 2})
	req := segPayload(64, 1)
	h.eng.Begin()
	h.eng.HandleFrame(h.frame(&segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: req}), h.batch)
	h.eng.Poll(h.batch)
	if h.batch.Len() != 0 {
		t.Fatalf("the iteration that received the request sent %d frames, want its ACK held", h.batch.Len())
	}
	if evs := h.events(); len(evs) != 1 || evs[0].RxBump != 64 {
		t.Fatalf("events %+v, want one RxBump 64", evs)
	}
	// The application reads and answers before the next iteration.
	h.rx.Tail.Store(h.rx.Head.Load())
	resp := segPayload(64, 2)
	h.ringPut(resp)
	for _, c := range []appif.Cmd{{Conn: h.handle, RxBump: 64}, {Conn: h.handle, TxBump: 64}} {
		if n, _ := h.cmd.Reserve(1); n != 1 {
			t.Fatal("command queue full")
		}
		c.Put(h.cmd.Slot(0))
		h.cmd.Commit(1)
	}
	a := onlyOne(t, "the answer", h.poll())
	h.wantSeg("the answer", a, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 64, 64)
	if out := h.poll(); len(out) != 0 {
		t.Fatalf("after the answer the engine sent %d more segments: %+v", len(out), out)
	}
}

// With an AckHold (an application in another thread or process), the
// held ACK waits that long for the answer, iterations or not, then goes
// out alone.
func TestSegAckHoldWaitsItsTime(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 1000, IRS: 5000, TS: true, RxSize: 1 << 14, RcvShift: 2, AckHold: 40 * time.Microsecond})
	h.eng.Begin()
	h.eng.HandleFrame(h.frame(&segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: segPayload(64, 1)}), h.batch)
	h.eng.Poll(h.batch)
	for i := range 5 {
		h.now += uint64(5 * time.Microsecond)
		if out := h.poll(); len(out) != 0 {
			t.Fatalf("iteration %d, %d µs after the request: %d segments, want the ACK held for 40 µs", i+2, 5*(i+1), len(out))
		}
	}
	h.now += uint64(15 * time.Microsecond)
	a := onlyOne(t, "after the hold", h.poll())
	h.wantSeg("after the hold", a, wire.TCPFlagACK, 0, 64, 0)
}

// An answer that carries a held ACK leaves its ackHeld entry behind; the
// flow's next hold must still wait its own iteration, not be aged by that
// stale entry (found in review: the next request got a pure ACK before
// its answer).
func TestSegStaleHeldEntryKeepsNextHold(t *testing.T) {
	h := newSegHarness(t, segOpts{ISS: 1000, IRS: 5000, TS: true, RxSize: 1 << 14, TxSize: 1 << 14, RcvShift: 2})
	post := func(c appif.Cmd) {
		if n, _ := h.cmd.Reserve(1); n != 1 {
			t.Fatal("command queue full")
		}
		c.Put(h.cmd.Slot(0))
		h.cmd.Commit(1)
	}
	// Iteration 1: request A arrives, and data the application queued
	// earlier leaves in the same iteration, carrying A's ACK.
	h.ringPut(segPayload(64, 9))
	post(appif.Cmd{Conn: h.handle, TxBump: 64})
	h.eng.Begin()
	h.eng.HandleFrame(h.frame(&segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: segPayload(64, 1)}), h.batch)
	h.eng.Poll(h.batch)
	if h.batch.Len() != 1 {
		t.Fatalf("iteration 1 sent %d frames, want the data carrying A's ACK", h.batch.Len())
	}
	h.wantSeg("data with A's ACK", h.parse(h.batch.Frames()[0]), wire.TCPFlagACK|wire.TCPFlagPSH, 0, 64, 64)
	h.batch.Reset()
	h.events()
	// Iteration 2: request B, which ACKs our data.
	h.eng.Begin()
	h.eng.HandleFrame(h.frame(&segSpec{Seq: 64, Ack: 64, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 0xffff, Payload: segPayload(64, 2)}), h.batch)
	h.eng.Poll(h.batch)
	if n := h.batch.Len(); n != 0 {
		t.Fatalf("the iteration that received request B sent %d frames, want B's ACK held for its answer", n)
	}
}
