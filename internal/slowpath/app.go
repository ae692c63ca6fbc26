package slowpath

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"gotas/internal/appif"
	"gotas/internal/fastpath"
	"gotas/internal/shm"
)

// AppLimits bound what one application may hold. The zero value of a
// field means its default.
type AppLimits struct {
	// MaxFlows bounds its connections, half-open ones included (default:
	// the stack's MaxFlows). Every connection holds one local port, so
	// this bounds its ephemeral ports as well.
	MaxFlows int
	// MaxListeners bounds its listening ports (default 1024).
	MaxListeners int
	// MaxContexts bounds its contexts (default 64).
	MaxContexts int
}

// Default AppLimits.
const (
	defaultAppListeners = 1024
	defaultAppContexts  = 64
	// outBacklogPerSlot: a context whose response queue stays full while
	// this many times its slots wait behind it stopped reading; it is
	// torn down rather than let grow the service's memory.
	outBacklogPerSlot = 4
)

// ErrStopped means the stack was stopped.
var ErrStopped = errors.New("slowpath: stack stopped")

// ErrAppLimit means a registration exceeded an application limit.
var ErrAppLimit = errors.New("application limit reached")

// App is one registered application: a memory region of its own holding
// its contexts' queues and its connections' rings, and doorbells of its
// own. Only the application and the service map the region; the control
// queues and all flow state live elsewhere, so an application can reach
// neither another's bytes nor the service's own state.
type App struct {
	Pid    int32
	limits AppLimits
	region *shm.Region
	// allocMu serializes alloc: the slow path allocates rings, and
	// NewAppContext (on a registration goroutine) context queues.
	allocMu sync.Mutex
	alloc   *shm.Allocator
	// slowBell is what the application rings to wake the slow path;
	// coreBells[i] what it rings to wake core i.
	slowBell  *shm.Doorbell
	coreBells []*shm.Doorbell

	// The rest belongs to the slow-path goroutine.
	ctxs      []*svcCtx
	flows     int // connections holding a conn record
	listeners int
	dying     bool
	local     bool // this process (Stack.NewContext's): never torn down
	acks      int  // KrxContextGone answers still awaited
	freed     chan struct{}
	// bufBytes is the region bytes its rings and queues hold; it points
	// at the stack's total, so every application adds to one counter.
	bufBytes *atomic.Int64
}

// Limits are the application's limits, defaults filled in.
func (a *App) Limits() AppLimits { return a.limits }

// Region is the application's memory, to be passed to it (its fd).
func (a *App) Region() *shm.Region { return a.region }

// SlowBell and CoreBells are the doorbells the application rings.
func (a *App) SlowBell() *shm.Doorbell    { return a.slowBell }
func (a *App) CoreBells() []*shm.Doorbell { return a.coreBells }
func (a *App) Freed() <-chan struct{}     { return a.freed }

// appRegionSize is the region an application with these limits needs: its
// connections' rings and its contexts' queues.
func appRegionSize(l AppLimits, rx, tx uint32, cores int) uint64 {
	return uint64(l.MaxFlows)*(ringArea(rx)+ringArea(tx)) + uint64(l.MaxContexts)*contextSize(cores)
}

// contextSize is the region bytes one context takes.
func contextSize(cores int) uint64 {
	const slack = shm.CacheLine // alignment, per allocation
	perCore := shm.QueueSize(appif.CmdSlot, ctxCmdSlots) + shm.QueueSize(appif.EvSlot, ctxEvSlots) + 2*slack
	return shm.QueueSize(appif.ReqSlot, ctxReqSlots) + shm.QueueSize(appif.RespSlot, ctxRespSlots) +
		appif.DescSize + 3*slack + uint64(cores)*perCore
}

// NewApp registers an application. Its region is a sparse memfd: only
// pages that bytes went through cost memory.
func (s *Stack) NewApp(pid int32, l AppLimits) (*App, error) {
	if l.MaxFlows <= 0 || l.MaxFlows > s.cfg.MaxFlows {
		l.MaxFlows = s.cfg.MaxFlows
	}
	if l.MaxListeners <= 0 {
		l.MaxListeners = defaultAppListeners
	}
	if l.MaxContexts <= 0 || l.MaxContexts > fastpath.MaxContexts {
		l.MaxContexts = min(defaultAppContexts, fastpath.MaxContexts)
	}
	a := &App{Pid: pid, limits: l, freed: make(chan struct{}), bufBytes: &s.sp.res.bufBytes}
	size := s.cfg.RegionSize
	if size == 0 {
		size = appRegionSize(l, s.cfg.RxBuf, s.cfg.TxBuf, len(s.cores))
	}
	var err error
	if a.region, err = shm.Create(fmt.Sprintf("gotas-app-%d", pid), size); err != nil {
		return nil, err
	}
	a.alloc = shm.NewAllocator(0, size)
	if a.slowBell, err = shm.NewDoorbell(); err != nil {
		a.close()
		return nil, err
	}
	for range s.cores {
		b, err := shm.NewDoorbell()
		if err != nil {
			a.close()
			return nil, err
		}
		a.coreBells = append(a.coreBells, b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil { // stopped
		a.close()
		return nil, ErrStopped
	}
	s.apps[a] = struct{}{}
	return a, nil
}

// close releases what NewApp made; nothing may use the app afterwards.
func (a *App) close() {
	a.closeBells()
	if a.region != nil {
		a.region.Close()
	}
}

// closeBells closes the app's doorbells (Close on a closed one is a no-op).
func (a *App) closeBells() {
	for _, c := range a.ctxs {
		c.info.Bell.Close()
	}
	for _, b := range a.coreBells {
		b.Close()
	}
	if a.slowBell != nil {
		a.slowBell.Close()
	}
}

// NewAppContext gives application a a context: its queues in a's region
// and a doorbell the service rings to wake it. It returns the offset of
// the context's descriptor (appif.Desc) in the region and the doorbell.
// It may be called from any goroutine.
func (s *Stack) NewAppContext(a *App) (uint64, *shm.Doorbell, error) {
	descOff, bell, _, err := s.newAppContext(a, false)
	return descOff, bell, err
}

func (s *Stack) newAppContext(a *App, dupFd bool) (uint64, *shm.Doorbell, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appCtxs[a] >= a.limits.MaxContexts {
		return 0, nil, -1, fmt.Errorf("slowpath: %d contexts: %w", a.limits.MaxContexts, ErrAppLimit)
	}
	if len(s.freeCtx) == 0 {
		return 0, nil, -1, fmt.Errorf("slowpath: all %d contexts in use: %w", fastpath.MaxContexts, ErrAppLimit)
	}
	bell, err := shm.NewDoorbell()
	if err != nil {
		return 0, nil, -1, err
	}
	idx := s.freeCtx[len(s.freeCtx)-1]
	sc, descOff, err := s.buildContext(a, idx, bell)
	fd := -1
	if err == nil && dupFd {
		if fd, err = unix.FcntlInt(uintptr(bell.Fd()), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			err = fmt.Errorf("slowpath: dup doorbell: %w", err)
		}
	}
	if err != nil {
		bell.Close()
		return 0, nil, -1, err
	}
	s.freeCtx = s.freeCtx[:len(s.freeCtx)-1]
	s.appCtxs[a]++
	s.newCtxs = append(s.newCtxs, sc)
	s.hasNew.Store(true)
	s.slowBell.Ring()
	return descOff, bell, fd, nil
}

// NewAppContextFd is NewAppContext for a context of another process: it
// returns a duplicate of the doorbell's fd for the caller to send and then
// close. The duplicate is made before the slow path learns of the
// context, which may close the doorbell itself at any time (a dying
// application), its fd number then free for reuse.
func (s *Stack) NewAppContextFd(a *App) (uint64, int, error) {
	descOff, _, fd, err := s.newAppContext(a, true)
	return descOff, fd, err
}

// buildContext lays out context idx's queues and descriptor in a's region.
// On error what it allocated stays allocated: the region goes with the
// application.
func (s *Stack) buildContext(a *App, idx uint16, bell *shm.Doorbell) (*svcCtx, uint64, error) {
	a.allocMu.Lock()
	defer a.allocMu.Unlock()
	d := appif.Desc{Index: uint32(idx), CmdSlots: ctxCmdSlots, EvSlots: ctxEvSlots,
		ReqSlots: ctxReqSlots, RespSlots: ctxRespSlots}
	var err error
	if d.ReqOff, err = newQueue(a.region, a.alloc, appif.ReqSlot, ctxReqSlots); err != nil {
		return nil, 0, err
	}
	if d.RespOff, err = newQueue(a.region, a.alloc, appif.RespSlot, ctxRespSlots); err != nil {
		return nil, 0, err
	}
	for range s.cores {
		c, err := newQueue(a.region, a.alloc, appif.CmdSlot, ctxCmdSlots)
		if err != nil {
			return nil, 0, err
		}
		e, err := newQueue(a.region, a.alloc, appif.EvSlot, ctxEvSlots)
		if err != nil {
			return nil, 0, err
		}
		d.CmdOff, d.EvOff = append(d.CmdOff, c), append(d.EvOff, e)
	}
	descOff, err := a.alloc.Alloc(appif.DescSize, shm.CacheLine)
	if err != nil {
		return nil, 0, err
	}
	b, _ := a.region.Bytes(descOff, appif.DescSize)
	d.Put(b)
	a.bufBytes.Add(int64(contextSize(len(s.cores))))
	info := &fastpath.ContextInfo{Desc: d, Region: a.region, Bell: bell, CoreBells: a.coreBells}
	sc := &svcCtx{idx: idx, info: info, app: a}
	if sc.req, err = shm.NewConsumer(a.region, d.ReqOff, appif.ReqSlot, ctxReqSlots, nil); err != nil {
		return nil, 0, err
	}
	if sc.resp, err = shm.NewProducer(a.region, d.RespOff, appif.RespSlot, ctxRespSlots, bell); err != nil {
		return nil, 0, err
	}
	return sc, descOff, nil
}

// newQueue allocates and formats a queue in region r.
func newQueue(r *shm.Region, a *shm.Allocator, slot, slots uint32) (uint64, error) {
	off, err := a.Alloc(shm.QueueSize(slot, slots), shm.CacheLine)
	if err != nil {
		return 0, err
	}
	if err := shm.InitQueue(r, off, slot, slots); err != nil {
		a.Free(off)
		return 0, err
	}
	return off, nil
}

// RemoveApp tears application a down (it exited, or its control
// connection closed): its connections are reset, its listeners closed,
// its ports freed; once every core has let go of its contexts, its region
// and doorbells are released and Freed is closed. Any goroutine may call
// it, more than once.
func (s *Stack) RemoveApp(a *App) {
	s.mu.Lock()
	s.deadApps = append(s.deadApps, a)
	s.hasNew.Store(true)
	s.mu.Unlock()
	s.slowBell.Ring()
}

// adoptApps brings registered contexts and dead applications into the
// slow path.
func (sp *slow) adoptApps(news []*svcCtx, dead []*App) {
	for _, c := range news {
		a := c.app
		if a.dying {
			c.info.Bell.Close()
			a.bufBytes.Add(-int64(contextSize(len(sp.s.cores))))
			sp.releaseContext(c)
			continue
		}
		if len(a.ctxs) == 0 {
			sp.s.slowBells.Add(a.slowBell)
		}
		a.ctxs = append(a.ctxs, c)
		sp.ctxs = append(sp.ctxs, c)
		sp.s.sh.Contexts[c.idx].Store(c.info)
		for i := range sp.s.ktx {
			sp.toCore(i, fastpath.CtlMsg{Type: fastpath.KtxAddContext, ID: uint32(c.idx)}, nil)
		}
	}
	for _, a := range dead {
		sp.dropApp(a)
	}
}

// dropApp resets everything application a holds and asks every core to
// let go of its contexts.
func (sp *slow) dropApp(a *App) {
	if a.dying {
		return
	}
	a.dying = true
	for port, l := range sp.listeners {
		if l.ctx.app == a {
			sp.closeListener(l)
			delete(sp.listeners, port)
		}
	}
	for _, x := range sp.conns {
		if x.ctx.app == a {
			sp.abandon(x)
		}
	}
	if len(a.ctxs) > 0 {
		sp.s.slowBells.Remove(a.slowBell)
	}
	for _, c := range a.ctxs {
		sp.ctxs = slices.DeleteFunc(sp.ctxs, func(x *svcCtx) bool { return x == c })
		for i := range sp.s.ktx {
			sp.toCore(i, fastpath.CtlMsg{Type: fastpath.KtxDelContext, ID: uint32(c.idx)}, nil)
			a.acks++
		}
	}
	sp.maybeFree(a)
}

// abandon ends connection x of a dead application: the peer gets a RST
// (from the core, which knows the sequence numbers, when the flow is
// installed), and nothing is kept for an application that cannot read.
func (sp *slow) abandon(x *conn) {
	switch x.state {
	case stSynSent, stGone:
		sp.free(x, false)
	case stSynRcvd:
		sp.rstConn(x)
		sp.free(x, false)
	case stEstablished:
		x.state = stClosing
		sp.toCore(0, fastpath.CtlMsg{Type: fastpath.KtxRemove, ID: x.id, Handle: uint64(x.handle)}, nil)
	}
}

// contextGone handles a core's KrxContextGone.
func (sp *slow) contextGone(idx uint32) {
	for _, a := range sp.dying {
		for _, c := range a.ctxs {
			if uint32(c.idx) == idx && a.acks > 0 {
				c.info.Released.Load() // orders the core's last use before our close
				a.acks--
				sp.maybeFree(a)
				return
			}
		}
	}
}

// maybeFree releases a dying application's memory once no core uses its
// contexts and no connection its rings.
func (sp *slow) maybeFree(a *App) {
	if a.acks > 0 || a.flows > 0 {
		if !slices.Contains(sp.dying, a) {
			sp.dying = append(sp.dying, a)
		}
		return
	}
	a.bufBytes.Add(-int64(uint64(len(a.ctxs)) * contextSize(len(sp.s.cores))))
	for _, c := range a.ctxs {
		sp.releaseContext(c)
	}
	sp.dying = slices.DeleteFunc(sp.dying, func(x *App) bool { return x == a })
	sp.s.mu.Lock()
	delete(sp.s.appCtxs, a)
	delete(sp.s.apps, a)
	sp.s.mu.Unlock()
	a.close()
	sp.st.appsFreed.Add(1)
	close(a.freed)
}

// releaseContext returns context c's index for reuse.
func (sp *slow) releaseContext(c *svcCtx) {
	sp.s.sh.Contexts[c.idx].Store(nil)
	sp.s.mu.Lock()
	sp.s.freeCtx = append(sp.s.freeCtx, c.idx)
	sp.s.mu.Unlock()
}
