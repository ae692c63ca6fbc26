package slowpath

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gotas/internal/appif"
	"gotas/internal/cc"
	"gotas/internal/fastpath"
	"gotas/internal/nic"
	"gotas/internal/shm"
	"gotas/internal/wire"
)

// Config configures a Stack. The zero value of every field but Prefix is a
// usable default.
type Config struct {
	// Prefix is the local address and its directly connected subnet
	// (--ip-addr, e.g. 10.0.0.1/24).
	Prefix netip.Prefix
	// Routes adds static routes (may be nil).
	Routes *Routes
	// RxBuf and TxBuf are the per-connection ring sizes (powers of two;
	// default DefaultRingSize, 1 MiB each, so one flow can fill a
	// bulk window).
	RxBuf, TxBuf uint32
	// MaxFlows bounds concurrent connections (default DefaultMaxFlows).
	MaxFlows int
	// RegionSize is the size of each application's shared-memory region
	// (default RegionSizeFor(MaxFlows, RxBuf, TxBuf): room for every flow's rings
	// and every context's queues). The region is a sparse memfd: only
	// pages that bytes went through cost memory, and a freed ring's pages
	// are punched out of it (docs/ARCHITECTURE.md, "Memory").
	RegionSize uint64
	// NoSACK, NoTimestamps, NoWindowScale, NoECN switch off offering (and
	// accepting) each option.
	NoSACK, NoTimestamps, NoWindowScale, NoECN bool
	// MSL is the maximum segment lifetime; TIME_WAIT lasts 2*MSL
	// (default 30 s; tests use milliseconds).
	MSL time.Duration
	// MaxTimeWait bounds connections in TIME_WAIT (default 2*MaxFlows;
	// Linux's tcp_max_tw_buckets plays this part); at the bound the
	// oldest entry is dropped early.
	MaxTimeWait int
	// SynRTO is the first SYN / SYN-ACK retransmission timeout (default
	// 1 s, doubling); SynRetries how many retransmissions before a
	// connect fails with ETIMEDOUT (default 5).
	SynRTO     time.Duration
	SynRetries int
	// RTOMin is the fast path's retransmission-timeout floor (default
	// 200 ms); RTORetries how many consecutive RTOs abort a connection.
	RTOMin     time.Duration
	RTORetries int
	// ARPRetry and ARPRetries control resolution (default 500 ms, 3).
	ARPRetry   time.Duration
	ARPRetries int
	// Clock returns monotonic nanoseconds (default: real time). Tests pass
	// a virtual clock and drive the stack with Step.
	Clock func() uint64
	// BusyPoll keeps the fast-path cores spinning (--fp-no-ints).
	BusyPoll bool
	// SpinBeforeBlock is how long an idle core polls before it blocks
	// (--fp-poll-interval-tas; default fastpath's).
	SpinBeforeBlock time.Duration
	// Inline runs the cores and the slow path on one goroutine, and lets
	// this process's goroutines run the cores' iterations for the
	// commands they post (inline.go): no thread of the stack's own, and
	// no thread woken to serve a request of this process. The default
	// for an embedded stack; a service whose applications are other
	// processes runs a thread per core instead.
	Inline bool
	// AckHold is how long the ACK of a message's last segment waits for
	// the application's answer to carry it (fastpath.EngineConfig.AckHold;
	// 0: until the next iteration, right for Inline). For the service,
	// 40 µs made no difference measurable through the noise of this
	// machine (docs/PERF.md, "Inline"), so it stays 0 there too.
	AckHold time.Duration
	// CC is the congestion control of connections that do not choose
	// one (a cc.Names() entry; default "reno": the fast path's window,
	// no pacing). CCParams tunes the rate-based ones.
	CC       string
	CCParams cc.Params
}

// Resources counts what connections hold, for leak checks.
type Resources struct {
	Flows, Ports, TimeWait, Conns int
	BufferBytes                   uint64 // bytes of the region in use by rings and queues
}

// StackStats counts slow-path events.
type StackStats struct {
	Host                                          Stats
	Punted                                        [8]uint64 // by fastpath.Punt* reason
	SynsIn, SynAcksOut, BacklogOverflow, RstsSent uint64
	Refused, TimedOut, Resets, Reinjected         uint64
	BadChecksum, NoRoute, ARPRequests             uint64
	// KtxDropped counts frames not handed to a core because its queue was
	// full (control messages wait instead).
	KtxDropped uint64
	// ARPRefused counts neighbours not cached, or resolutions failed at
	// once, because the ARP cache or its pending resolutions were full.
	ARPRefused uint64
	// PMTUAccepted counts ICMP "fragmentation needed" messages passed to
	// a core (KtxPMTU); PMTUIgnored those that failed the checks.
	PMTUAccepted, PMTUIgnored uint64
	// TimeWaitOverflow counts TIME_WAIT entries dropped early because
	// MaxTimeWait were held; TimeWaitReplaced those a new SYN reopened
	// (RFC 6191).
	TimeWaitOverflow, TimeWaitReplaced uint64
	// AcceptNoMem counts handshakes reset at the final ACK because no flow
	// id or ring memory was left. CookiesSent counts SYN cookies sent
	// (the SYN found the backlog full); CookiesOK the ACKs that
	// validated one and opened a connection, CookiesBad those that did
	// not (answered with a RST).
	AcceptNoMem, CookiesSent, CookiesOK, CookiesBad uint64
	// Established counts connections handed to the fast path, and how many
	// of them negotiated each option.
	Established, WithTS, WithSACK, WithWS, WithECN uint64
	// AppsFreed counts applications whose memory was released after they
	// went away; AppsStalled those torn down because they stopped reading
	// their responses; AppLimited requests refused by an AppLimits bound.
	AppsFreed, AppsStalled, AppLimited uint64
	// RingBytesDiscarded counts ring bytes whose pages were given back to
	// the kernel when their connection was freed.
	RingBytesDiscarded uint64
	// CCKicks counts rate changes congestion control sent to a core.
	// CCINT counts PowerTCP updates that had fresh telemetry, CCNoINT
	// those that fell back to θ-PowerTCP's RTT law without it.
	CCKicks, CCINT, CCNoINT uint64
}

// Stack is a complete TCP/IP stack on one port: fast-path engines and
// their cores, and the slow path. NewContext gives applications access.
type Stack struct {
	cfg    Config
	port   nic.Port
	mac    wire.MAC
	ip     wire.Addr4
	region *shm.Region
	alloc  *shm.Allocator
	sh     *fastpath.Shared

	engines   []*fastpath.Engine
	cores     []*fastpath.Core
	coreBells []*shm.Doorbell
	coreSets  []*shm.BellSet // what each core sleeps on: its doorbell and the apps'
	slowBell  *shm.Doorbell
	slowBells *shm.BellSet
	park      *shm.Parker // Inline: where the idle driver parks
	after     func() bool // Inline: the driver's hook (SetAfterTurn)
	ktx       []*shm.Producer
	krx       []*shm.Consumer

	// mu guards what other goroutines hand the slow path: new contexts,
	// dead applications, the free context indices and per-app counts.
	mu       sync.Mutex
	newCtxs  []*svcCtx
	deadApps []*App
	snapReqs []chan Snapshot
	freeCtx  []uint16
	appCtxs  map[*App]int
	apps     map[*App]struct{} // registered and not yet freed
	hasNew   atomic.Bool
	local    *App // NewContext's application: this process

	sp      *slow // slow-path state, owned by the slow-path goroutine
	wg      sync.WaitGroup
	stopped atomic.Bool
	errMu   sync.Mutex
	err     error
}

const ctlSlots = 8192

// respRetrySleep bounds the slow path's sleep while responses wait for
// room in an application's full queue.
const respRetrySleep = time.Millisecond

// Defaults for Config.
const (
	// DefaultMaxFlows is how many connections a default stack holds
	// (Linux holds 100,000 idle ones on a small machine; so do we).
	DefaultMaxFlows = 1 << 17
	// DefaultRingSize is the default RxBuf and TxBuf.
	DefaultRingSize = 1 << 20
)

// ringArea is the region bytes one ring of size data bytes takes: whole
// pages, page aligned, so a freed ring's pages can be punched out without
// touching a neighbour's.
func ringArea(size uint32) uint64 {
	return (shm.RingAreaSize(size) + shm.PageSize - 1) &^ (shm.PageSize - 1)
}

// RegionSizeFor is the size of the region of one application that holds
// maxFlows connections with rx- and tx-byte rings, plus the queues of its
// contexts. With the defaults it is about 256 GiB of virtual memory; the
// memfd is sparse, so only touched pages are resident.
func RegionSizeFor(maxFlows int, rx, tx uint32) uint64 {
	return appRegionSize(AppLimits{MaxFlows: maxFlows, MaxContexts: defaultAppContexts}, rx, tx, 1)
}

// controlRegionSize holds the control queues of cores cores: service
// memory that no application maps.
func controlRegionSize(cores int) uint64 {
	return uint64(cores) * 2 * (shm.QueueSize(fastpath.CtlSlot, ctlSlots) + shm.CacheLine)
}

// ccDefaults fills in and checks the congestion-control choice.
func (cfg *Config) ccDefaults() error {
	if cfg.CC == "" {
		cfg.CC = "reno"
	}
	if _, err := cc.New(cfg.CC, cfg.CCParams); err != nil {
		return fmt.Errorf("slowpath: Config.CC: %w", err)
	}
	return nil
}

// NewStack assembles a stack on port. It does not start goroutines: call
// Start, or drive it with Step (tests).
func NewStack(port nic.Port, cfg Config) (*Stack, error) {
	if !cfg.Prefix.Addr().Is4() {
		return nil, errors.New("slowpath: Config.Prefix must be an IPv4 prefix")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	info := port.Info()
	s := &Stack{cfg: cfg, port: port, mac: info.MAC, ip: wire.Addr4(cfg.Prefix.Addr().As4()), appCtxs: map[*App]int{}, apps: map[*App]struct{}{}}
	for i := fastpath.MaxContexts - 1; i >= 0; i-- {
		s.freeCtx = append(s.freeCtx, uint16(i))
	}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var err error
	queues := port.Queues()
	size := controlRegionSize(len(queues))
	if s.region, err = shm.Create("gotas-control", size); err != nil {
		return nil, err
	}
	s.alloc = shm.NewAllocator(0, size)
	s.sh = &fastpath.Shared{Region: s.region,
		Flows: fastpath.NewFlows(cfg.MaxFlows, uint32(cfg.RTOMin/time.Microsecond))}
	if s.slowBell, err = shm.NewDoorbell(); err != nil {
		return nil, err
	}
	if s.slowBells, err = shm.NewBellSet(s.slowBell); err != nil {
		return nil, err
	}
	if len(queues) != 1 {
		// Flows are owned by the core their packets arrive on; until the
		// slow path steers flows (flow groups), one queue keeps that true.
		return nil, fmt.Errorf("slowpath: %d queues; the stack drives exactly one", len(queues))
	}
	for i, q := range queues {
		if err := s.addCore(i, q, info); err != nil {
			return nil, err
		}
	}
	s.sp = newSlow(s)
	if cfg.Inline {
		if err := s.initInline(); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// defaults fills the fields left zero.
func (cfg *Config) defaults() error {
	if err := cfg.ccDefaults(); err != nil {
		return err
	}
	if cfg.RxBuf == 0 {
		cfg.RxBuf = DefaultRingSize
	}
	if cfg.TxBuf == 0 {
		cfg.TxBuf = DefaultRingSize
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	if cfg.MaxTimeWait <= 0 {
		cfg.MaxTimeWait = 2 * cfg.MaxFlows
	}
	if cfg.MSL == 0 {
		cfg.MSL = 30 * time.Second
	}
	if cfg.SynRTO == 0 {
		cfg.SynRTO = time.Second
	}
	if cfg.SynRetries == 0 {
		cfg.SynRetries = 5
	}
	if cfg.ARPRetry == 0 {
		cfg.ARPRetry = 500 * time.Millisecond
	}
	if cfg.ARPRetries == 0 {
		cfg.ARPRetries = defaultARPRetries
	}
	if cfg.Clock == nil {
		start := time.Now()
		cfg.Clock = func() uint64 { return uint64(time.Since(start)) }
	}
	return nil
}

// addCore makes fast-path core i over queue q: its doorbell and bell set,
// its control queues to and from the slow path, its engine and its loop.
func (s *Stack) addCore(i int, q nic.Queue, info nic.Info) error {
	cfg := &s.cfg
	bell, err := shm.NewDoorbell()
	if err != nil {
		return err
	}
	s.coreBells = append(s.coreBells, bell)
	bells, err := shm.NewBellSet(bell)
	if err != nil {
		return err
	}
	s.coreSets = append(s.coreSets, bells)
	ktxOff, err := s.newQueue(fastpath.CtlSlot, ctlSlots)
	if err != nil {
		return err
	}
	krxOff, err := s.newQueue(fastpath.CtlSlot, ctlSlots)
	if err != nil {
		return err
	}
	eng, err := fastpath.NewEngine(s.sh, fastpath.EngineConfig{Core: i, MAC: s.mac, IP: s.ip,
		PartialCsum: info.PartialRxCsum, Clock: cfg.Clock, MaxRetries: cfg.RTORetries,
		KtxOff: ktxOff, KrxOff: krxOff, CtlSlots: ctlSlots, SlowBell: s.slowBell, Bells: bells, AckHold: cfg.AckHold})
	if err != nil {
		return err
	}
	core, err := fastpath.NewCore(q, eng, fastpath.Config{BusyPoll: cfg.BusyPoll, CPU: -1, Bells: bells, Clock: cfg.Clock,
		SpinBeforeBlock: cfg.SpinBeforeBlock})
	if err != nil {
		return err
	}
	p, err := shm.NewProducer(s.region, ktxOff, fastpath.CtlSlot, ctlSlots, bell)
	if err != nil {
		return err
	}
	c, err := shm.NewConsumer(s.region, krxOff, fastpath.CtlSlot, ctlSlots, s.slowBell)
	if err != nil {
		return err
	}
	s.engines, s.cores = append(s.engines, eng), append(s.cores, core)
	s.ktx, s.krx = append(s.ktx, p), append(s.krx, c)
	return nil
}

// newQueue allocates and formats a control queue in the service region.
func (s *Stack) newQueue(slot, slots uint32) (uint64, error) {
	return newQueue(s.region, s.alloc, slot, slots)
}

// svcCtx is the service side of an application context.
type svcCtx struct {
	app  *App
	idx  uint16
	info *fastpath.ContextInfo
	req  *shm.Consumer
	resp *shm.Producer
	out  shm.Backlog[appif.Ctl, *appif.Ctl] // messages waiting for room in resp
}

// Context queue sizes.
const (
	ctxCmdSlots, ctxEvSlots   = 4096, 4096
	ctxReqSlots, ctxRespSlots = 512, 512
)

// NewContext registers a context of this process and returns its client
// end. All such contexts belong to one application (this process), made
// on first use. It may be called from any goroutine.
func (s *Stack) NewContext() (*appif.Context, error) { return s.newContext(true) }

// NewKickedContext is NewContext for the embedding process's own
// dispatcher in Inline mode: its commands ring no doorbell, and the
// caller calls Kick after posting them instead (a ring would wake the
// parked driver for work Kick does on the caller's goroutine).
func (s *Stack) NewKickedContext() (*appif.Context, error) { return s.newContext(false) }

func (s *Stack) newContext(bells bool) (*appif.Context, error) {
	s.mu.Lock()
	a := s.local
	s.mu.Unlock()
	if a == nil {
		var err error
		if a, err = s.NewApp(int32(os.Getpid()), AppLimits{MaxFlows: s.cfg.MaxFlows}); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.local == nil {
			s.local, a.local = a, true
		} else {
			a.close()
			a = s.local
		}
		s.mu.Unlock()
	}
	descOff, bell, err := s.NewAppContext(a)
	if err != nil {
		return nil, err
	}
	coreBells := a.coreBells
	if !bells {
		coreBells = nil
	}
	return appif.Attach(a.region, descOff, bell, a.slowBell, coreBells)
}

// Start runs the cores and the slow path on their own goroutines, or, in
// Inline mode, the driver that runs them all.
func (s *Stack) Start() {
	if s.cfg.Inline {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.drive()
		}()
		return
	}
	for _, c := range s.cores {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := c.Run(); err != nil {
				s.setErr(err)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runSlow()
	}()
}

func (s *Stack) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// Err returns the first error a loop stopped with.
func (s *Stack) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Step runs one iteration of every core and of the slow path on the
// calling goroutine, for deterministic tests; it reports whether anything
// happened.
func (s *Stack) Step() bool {
	worked := false
	for _, c := range s.cores {
		w, err := c.Step()
		if err != nil {
			s.setErr(err)
		}
		worked = worked || w
	}
	return s.sp.poll() || worked
}

// NextDeadline is the earliest timer of the stack (ns on its clock).
func (s *Stack) NextDeadline() (uint64, bool) {
	t, ok := s.sp.nextTimer, s.sp.nextTimer != 0
	for _, e := range s.engines {
		if d, ok2 := e.NextDeadline(); ok2 && (!ok || d < t) {
			t, ok = d, true
		}
	}
	return t, ok
}

func (s *Stack) runSlow() {
	for !s.stopped.Load() {
		if s.sp.poll() {
			continue
		}
		if !s.sp.prepareSleep() {
			continue
		}
		timeout := 100 * time.Millisecond
		if s.sp.retrySoon {
			timeout = respRetrySleep
		}
		if t := s.sp.nextTimer; t != 0 {
			now := s.cfg.Clock()
			if t <= now {
				s.sp.woke()
				continue
			}
			timeout = min(timeout, time.Duration(t-now))
		}
		s.slowBells.Wait(timeout)
		s.sp.woke()
	}
}

// Stop stops the loops (if started) and releases everything. Contexts
// must not be used afterwards.
func (s *Stack) Stop() error {
	s.stopped.Store(true)
	for _, c := range s.cores {
		c.Stop()
	}
	s.slowBell.Ring()
	s.wg.Wait()
	for _, c := range s.cores {
		c.Shut() // a Kick still turning (inline) must not outlive what close frees
	}
	return s.close()
}

func (s *Stack) close() error {
	for _, c := range s.cores {
		c.Close()
	}
	for _, b := range s.coreSets {
		b.Close()
	}
	for _, b := range s.coreBells {
		b.Close()
	}
	if s.park != nil {
		s.park.Close()
	}
	if s.slowBells != nil {
		s.slowBells.Close()
	}
	if s.slowBell != nil {
		s.slowBell.Close()
	}
	// Applications still registered: their doorbells go. The regions of
	// other processes' applications are unmapped (the cores have
	// stopped); this process's own stays mapped: its Contexts may still
	// hold views into it, which the GC cannot see, so unmapping would
	// turn a late access into a crash instead of a stale read.
	if s.region != nil {
		s.region.Close() // the control queues: no loop runs any more
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.apps {
		if a == s.local {
			a.closeBells()
			a.region.CloseFd()
		} else {
			a.close()
		}
	}
	s.apps = nil
	return nil
}

// Resources reports what connections currently hold. Safe to call from
// any goroutine (the counts are atomics).
func (s *Stack) Resources() Resources {
	r := &s.sp.res
	return Resources{Flows: int(r.flows.Load()), Ports: int(r.ports.Load()),
		TimeWait: int(r.timeWait.Load()), Conns: int(r.conns.Load()), BufferBytes: s.bufferBytes()}
}

// Cores is the number of fast-path cores.
func (s *Stack) Cores() int { return len(s.cores) }

// CoreStats returns the poll-loop counters of core i.
func (s *Stack) CoreStats(i int) fastpath.Stats { return s.cores[i].Stats() }

// NICInfo describes the port.
func (s *Stack) NICInfo() nic.Info { return s.port.Info() }

// NICStats returns the port's frame counters, summed over its queues.
func (s *Stack) NICStats() nic.Stats { return nic.PortStats(s.port) }

// EngineStats returns the fast-path counters of core i.
func (s *Stack) EngineStats(i int) fastpath.EngineStats { return s.engines[i].Stats() }

// FlowCounters returns the congestion-control counters of flow id.
func (s *Stack) FlowCounters(id uint32) *fastpath.FlowCounters { return &s.sh.Flows.Counters[id] }

// AddNeighbor installs a static ARP entry.
func (s *Stack) AddNeighbor(ip netip.Addr, mac [6]byte) {
	s.sp.staticARP(wire.Addr4(ip.As4()), mac)
}

// Stats returns the slow path's counters.
func (s *Stack) Stats() StackStats { return s.sp.stats() }

// RxBuf and TxBuf are the per-connection ring sizes.
func (s *Stack) RxBuf() uint32 { return s.cfg.RxBuf }
func (s *Stack) TxBuf() uint32 { return s.cfg.TxBuf }

// Addr is the stack's IPv4 address.
func (s *Stack) Addr() netip.Addr { return s.cfg.Prefix.Addr() }

func randomKey() (k [32]byte) {
	rand.Read(k[:])
	return k
}

// ConnInfo is what a connection negotiated.
type ConnInfo struct {
	FlowID             uint32
	SACK, TS, ECN, WS  bool
	SndShift, RcvShift uint8
	PeerMSS            uint16
	LocalPort          uint16
}

// ConnInfo describes connection h. It reads slow-path state without
// synchronisation: call it only on a stack driven by Step (tests).
func (s *Stack) ConnInfo(h appif.Handle) (ConnInfo, bool) {
	id := h.Index()
	if id >= uint32(len(s.sp.byID)) || s.sp.byID[id] == nil || s.sp.byID[id].handle != h {
		return ConnInfo{}, false
	}
	x := s.sp.byID[id]
	return ConnInfo{FlowID: id, SACK: x.sack, TS: x.ts, ECN: x.ecn, WS: x.ws, SndShift: x.sndShift,
		RcvShift: x.rcvShift, PeerMSS: x.peerMSS, LocalPort: x.key.LocalPort}, true
}

// bufferBytes is the memory held by rings and queues in applications'
// regions and the control region (allocated, not necessarily resident).
func (s *Stack) bufferBytes() uint64 {
	return uint64(s.sp.res.bufBytes.Load()) + controlRegionSize(len(s.cores))
}
