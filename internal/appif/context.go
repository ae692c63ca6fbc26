package appif

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"gotas/internal/shm"
)

// EventType says what an Event reports.
type EventType uint8

const (
	EvListenOpened EventType = iota + 1 // Listener, Cookie, Err
	EvListenClosed                      // Listener
	EvAccepted                          // Conn, Listener, Remote
	EvConnOpened                        // Conn, Cookie; Err != 0: the connect failed
	EvData                              // Conn, Data, N: new bytes, zero-copy
	EvTxSpace                           // Conn, N: bytes acknowledged, TX ring space freed
	EvRxClosed                          // Conn: the peer's FIN arrived after all its data
	EvTxClosed                          // Conn: our FIN was acknowledged
	EvClosed                            // Conn, Err: the network ended the connection (ECONNRESET, ETIMEDOUT); Close it
)

// Event is one notification from Poll.
type Event struct {
	Type      EventType
	Conn      Handle
	Listener  Handle
	Cookie    uint64
	Err       syscall.Errno
	Data      [2][]byte // EvData: views into the RX ring (the second at its wrap), valid until RxDone
	N         int
	Remote    netip.AddrPort
	LocalPort uint16
}

// ErrAgain means a queue to the service is full; retry after Poll.
var ErrAgain = errors.New("appif: queue full, retry")

// ErrUnknown means the handle names no open connection of this context.
var ErrUnknown = errors.New("appif: unknown connection")

type conn struct {
	h      Handle
	rx     Ring
	rxTail uint32 // our consumed position
	rxSeen uint32 // bytes reported in EvData events
	tx     *shm.RingWriter
	// txSweepHead is the TX head at the last idle sweep; txReleased:
	// the ring's pages went back since it last moved.
	txSweepHead uint32
	txReleased  bool
	core        int
	dead        bool
	nagle       bool // every command carries CmdNagle
	kick        Cmd  // pending command when the queue was full
	kicked      bool
}

// Context is the client end of an application context: one per thread
// that uses gotas (not safe for concurrent use).
type Context struct {
	region *shm.Region
	desc   Desc
	bell   *shm.Doorbell
	req    *shm.Producer
	resp   *shm.Consumer
	cmd    []*shm.Producer
	ev     []*shm.Consumer
	conns  map[Handle]*conn
	pend   []Event
	stash  map[Handle][]Ev   // events that overtook their connection's open message
	nStash int               // events in stash, at most MaxStash
	closed map[uint32]uint32 // flow index -> newest generation closed here
	kicks  []*conn
	cookie uint64

	staleEvents, stashDrops uint64
}

// MaxStash bounds the events a Context holds for connections whose open
// message has not arrived yet; more are dropped (StashDrops).
const MaxStash = 1024

// Attach opens the context described at descOff in region. bell is the
// context's doorbell (the service rings it), slowBell and coreBells wake
// the slow path and the fast-path cores; nil coreBells ring none, for a
// caller that serves its own commands (slowpath.Stack.NewKickedContext).
func Attach(region *shm.Region, descOff uint64, bell, slowBell *shm.Doorbell, coreBells []*shm.Doorbell) (*Context, error) {
	b, err := region.Bytes(descOff, DescSize)
	if err != nil {
		return nil, err
	}
	d, ok := ParseDesc(b)
	if !ok || coreBells != nil && len(d.CmdOff) != len(coreBells) {
		return nil, fmt.Errorf("appif: bad context descriptor at %d", descOff)
	}
	c := &Context{region: region, desc: d, bell: bell, conns: map[Handle]*conn{}, stash: map[Handle][]Ev{},
		closed: map[uint32]uint32{}, pend: make([]Event, 0, 256)}
	if c.req, err = shm.NewProducer(region, d.ReqOff, ReqSlot, d.ReqSlots, slowBell); err != nil {
		return nil, err
	}
	if c.resp, err = shm.NewConsumer(region, d.RespOff, RespSlot, d.RespSlots, bell); err != nil {
		return nil, err
	}
	for i := range d.CmdOff {
		var coreBell *shm.Doorbell
		if coreBells != nil {
			coreBell = coreBells[i]
		}
		p, err := shm.NewProducer(region, d.CmdOff[i], CmdSlot, d.CmdSlots, coreBell)
		if err != nil {
			return nil, err
		}
		q, err := shm.NewConsumer(region, d.EvOff[i], EvSlot, d.EvSlots, bell)
		if err != nil {
			return nil, err
		}
		c.cmd, c.ev = append(c.cmd, p), append(c.ev, q)
	}
	return c, nil
}

// Index is the context's index in the service.
func (c *Context) Index() uint32 { return c.desc.Index }

func (c *Context) request(m Ctl) error {
	n, err := c.req.Reserve(1)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrAgain
	}
	m.Put(c.req.Slot(0))
	return c.req.Commit(1)
}

// Listen asks for a listener on port; EvListenOpened with the returned
// cookie reports the outcome. Accepted connections arrive as EvAccepted.
func (c *Context) Listen(port uint16, backlog int) (uint64, error) {
	return c.ListenCC(port, backlog, 0)
}

// ListenCC is Listen with the congestion control accepted connections
// run (cc.ID; 0: the stack's default).
func (c *Context) ListenCC(port uint16, backlog int, ccID uint8) (uint64, error) {
	c.cookie++
	return c.cookie, c.request(Ctl{Type: ReqListen, Flags: ccID, Cookie: c.cookie, LocalPort: port,
		Backlog: uint16(min(backlog, 0xffff))})
}

// ListenClose closes a listener; half-open connections are reset.
func (c *Context) ListenClose(l Handle) error { return c.request(Ctl{Type: ReqListenClose, Handle: l}) }

// Connect opens a connection to dst; EvConnOpened with the returned cookie
// reports the handle or the error (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH).
func (c *Context) Connect(dst netip.AddrPort) (uint64, error) { return c.ConnectCC(dst, 0) }

// ConnectCC is Connect with the connection's congestion control (cc.ID;
// 0: the stack's default).
func (c *Context) ConnectCC(dst netip.AddrPort, ccID uint8) (uint64, error) {
	if !dst.Addr().Is4() {
		return 0, errors.New("appif: IPv4 only")
	}
	c.cookie++
	return c.cookie, c.request(Ctl{Type: ReqConnect, Flags: ccID, Cookie: c.cookie, RemoteIP: dst.Addr().As4(),
		RemotePort: dst.Port()})
}

// Close releases a connection. If both directions were closed with FIN
// (EvRxClosed and EvTxClosed seen) it ends gracefully; otherwise the peer
// gets a RST. After an EvClosed, Close releases the service's resources.
func (c *Context) Close(h Handle) error {
	if _, ok := c.conns[h]; !ok {
		return ErrUnknown
	}
	if err := c.request(Ctl{Type: ReqClose, Handle: h}); err != nil {
		return err
	}
	delete(c.conns, h)
	// The core may still report on h until it has seen the close: such
	// events are dropped, not stashed as if h were yet to open. Handles
	// are never reused and a flow index's generations only grow, so one
	// entry per flow index is enough.
	c.closed[h.Index()] = h.Gen()
	return nil
}

// isClosed reports whether h was closed by this context (or is older than
// a handle of the same flow index that was).
func (c *Context) isClosed(h Handle) bool {
	g, ok := c.closed[h.Index()]
	return ok && int32(h.Gen()-g) <= 0
}

// StaleEvents counts fast-path events dropped because they named a
// connection already closed; StashDrops counts events dropped because
// MaxStash events already waited for their connections to open.
func (c *Context) StaleEvents() uint64 { return c.staleEvents }

// StashDrops: see StaleEvents.
func (c *Context) StashDrops() uint64 { return c.stashDrops }

// SetNagle turns Nagle's algorithm on or off for h: from now on every
// command for h carries CmdNagle or not, and one is sent now.
func (c *Context) SetNagle(h Handle, on bool) error {
	cn, ok := c.conns[h]
	if !ok {
		return ErrUnknown
	}
	if cn.nagle == on {
		return nil
	}
	cn.nagle = on
	return c.command(cn, Cmd{Conn: h})
}

// Shutdown closes the sending direction: a FIN follows the data sent so far.
func (c *Context) Shutdown(h Handle) error {
	cn, ok := c.conns[h]
	if !ok {
		return ErrUnknown
	}
	return c.command(cn, Cmd{Conn: h, Flags: CmdTxClose})
}

// RxDone returns n bytes of received data (from the start of the oldest
// unconsumed EvData) to the RX ring, which reopens the window.
func (c *Context) RxDone(h Handle, n int) error {
	cn, ok := c.conns[h]
	if !ok {
		return ErrUnknown
	}
	if n <= 0 || uint32(n) > cn.rxSeen-cn.rxTail {
		return fmt.Errorf("appif: RxDone(%d) beyond the %d bytes delivered", n, cn.rxSeen-cn.rxTail)
	}
	cn.rxTail += uint32(n)
	cn.rx.Tail.Store(cn.rxTail)
	return c.command(cn, Cmd{Conn: h, RxBump: uint32(n)})
}

// TxAlloc returns up to n bytes of free TX ring space as two slices (the
// second non-empty at the ring's wrap). Fill a prefix and TxSend it.
func (c *Context) TxAlloc(h Handle, n int) (a, b []byte, err error) {
	cn, ok := c.conns[h]
	if !ok || cn.dead {
		return nil, nil, ErrUnknown
	}
	a, b, err = cn.tx.Writable()
	if len(a) >= n {
		return a[:n], nil, err
	}
	return a, b[:min(len(b), n-len(a))], err
}

// TxSend sends n bytes written into the space TxAlloc returned.
func (c *Context) TxSend(h Handle, n int) error {
	cn, ok := c.conns[h]
	if !ok || cn.dead {
		return ErrUnknown
	}
	if err := cn.tx.Commit(n); err != nil {
		return err
	}
	return c.command(cn, Cmd{Conn: h, TxBump: uint32(n)})
}

// Send copies p into the TX ring (as much as fits) and sends it.
func (c *Context) Send(h Handle, p []byte) (int, error) {
	a, b, err := c.TxAlloc(h, len(p))
	if err != nil {
		return 0, err
	}
	n := copy(a, p)
	n += copy(b, p[n:])
	if n == 0 {
		return 0, nil
	}
	return n, c.TxSend(h, n)
}

// command posts a fast-path command; if the queue is full it is merged
// into a pending one and sent by a later Poll, so nothing is lost.
func (c *Context) command(cn *conn, m Cmd) error {
	m.Flags &^= CmdNagle
	if cn.nagle {
		m.Flags |= CmdNagle
	}
	if cn.kicked {
		cn.kick.TxBump += m.TxBump
		cn.kick.RxBump += m.RxBump
		cn.kick.Flags = cn.kick.Flags&^CmdNagle | m.Flags // CmdNagle: the newest level wins
		return nil
	}
	p := c.cmd[cn.core]
	if n, err := p.Reserve(1); n == 0 {
		if err != nil {
			return err
		}
		cn.kick, cn.kicked = m, true
		c.kicks = append(c.kicks, cn)
		return nil
	}
	m.Put(p.Slot(0))
	return p.Commit(1)
}

// Merged reports whether commands wait, merged, for room in a full
// command queue; the next Poll posts what fits.
func (c *Context) Merged() bool { return len(c.kicks) > 0 }

func (c *Context) flushKicks() {
	k := 0
	for ; k < len(c.kicks); k++ {
		cn := c.kicks[k]
		p := c.cmd[cn.core]
		if n, _ := p.Reserve(1); n == 0 {
			break
		}
		cn.kick.Put(p.Slot(0))
		p.Commit(1)
		cn.kicked = false
	}
	c.kicks = c.kicks[:copy(c.kicks, c.kicks[k:])]
}

// Poll returns up to len(evs) events; it never blocks.
func (c *Context) Poll(evs []Event) (int, error) {
	if len(c.kicks) > 0 {
		c.flushKicks()
	}
	if len(c.pend) < len(evs) {
		if err := c.pollResp(); err != nil {
			return 0, err
		}
		for i, q := range c.ev {
			n, err := q.Peek(64)
			if err != nil {
				return 0, err
			}
			for j := range n {
				var e Ev
				e.Get(q.Slot(j))
				c.fastEvent(i, &e)
			}
			q.Release(n)
		}
	}
	n := copy(evs, c.pend)
	c.pend = c.pend[:copy(c.pend, c.pend[n:])]
	return n, nil
}

func (c *Context) pollResp() error {
	n, err := c.resp.Peek(64)
	if err != nil {
		return err
	}
	for i := range n {
		var m Ctl
		m.Get(c.resp.Slot(i))
		c.slowEvent(&m)
	}
	return c.resp.Release(n)
}

func (c *Context) slowEvent(m *Ctl) {
	remote := netip.AddrPortFrom(netip.AddrFrom4(m.RemoteIP), m.RemotePort)
	switch m.Type {
	case MsgListenOpened:
		c.pend = append(c.pend, Event{Type: EvListenOpened, Listener: m.Handle, Cookie: m.Cookie,
			Err: syscall.Errno(m.Status), LocalPort: m.LocalPort})
	case MsgListenClosed:
		c.pend = append(c.pend, Event{Type: EvListenClosed, Listener: m.Handle})
	case MsgAccepted, MsgConnOpened:
		ev := Event{Type: EvConnOpened, Conn: m.Handle, Cookie: m.Cookie, Err: syscall.Errno(m.Status),
			Remote: remote, LocalPort: m.LocalPort}
		if m.Type == MsgAccepted {
			ev.Type, ev.Listener = EvAccepted, m.Aux
		}
		if ev.Err == 0 {
			if err := c.open(m); err != nil {
				ev.Err = syscall.EPROTO
			}
		}
		c.pend = append(c.pend, ev)
		if len(c.stash) > 0 {
			c.unstash(m.Handle)
		}
	case MsgConnClosed:
		if cn := c.conns[m.Handle]; cn != nil {
			// The core placed (and acknowledged) every byte up to the
			// ring head before the flow ended, but its EvData may still
			// be behind this message on the event queue, or was never
			// sent (the core drops a gone flow's pending event): report
			// the rest now, so the reset does not eat them.
			c.deliver(cn, cn.rx.Mask+1)
			cn.dead = true
		}
		c.pend = append(c.pend, Event{Type: EvClosed, Conn: m.Handle, Err: syscall.Errno(m.Status)})
	}
}

func (c *Context) open(m *Ctl) error {
	rx, err := OpenRing(c.region, m.RxOff, m.RxSize)
	if err != nil {
		return err
	}
	tx, err := shm.NewRingWriter(c.region, m.TxOff, m.TxSize)
	if err != nil {
		return err
	}
	t := rx.Tail.Load()
	c.conns[m.Handle] = &conn{h: m.Handle, rx: rx, rxTail: t, rxSeen: t, tx: tx}
	return nil
}

// unstash replays the events held for h, which just opened, and drops
// those of older handles of its flow index, which never will.
func (c *Context) unstash(h Handle) {
	for sh, st := range c.stash {
		if sh.Index() == h.Index() && int32(sh.Gen()-h.Gen()) < 0 {
			delete(c.stash, sh)
			c.nStash -= len(st)
			c.stashDrops += uint64(len(st))
		}
	}
	st, ok := c.stash[h]
	if !ok {
		return
	}
	delete(c.stash, h)
	c.nStash -= len(st)
	for i := range st {
		c.fastEvent(0, &st[i])
	}
}

// deliver reports up to n more received bytes of cn as EvData, never
// beyond the ring head nor more unread bytes than the ring holds (the
// head is the service's to write, so it is checked, not trusted).
func (c *Context) deliver(cn *conn, n uint32) {
	head := cn.rx.Head.Load()
	if head-cn.rxTail > cn.rx.Mask+1 {
		return
	}
	n = min(n, head-cn.rxSeen)
	if n == 0 || cn.rxSeen+n-cn.rxTail > cn.rx.Mask+1 {
		return
	}
	s := cn.rxSeen & cn.rx.Mask
	first := min(n, cn.rx.Mask+1-s)
	c.pend = append(c.pend, Event{Type: EvData, Conn: cn.h, N: int(n),
		Data: [2][]byte{cn.rx.Data[s : s+first], cn.rx.Data[:n-first]}})
	cn.rxSeen += n
}

func (c *Context) fastEvent(core int, e *Ev) {
	cn := c.conns[e.Conn]
	if cn == nil {
		if c.isClosed(e.Conn) {
			c.staleEvents++ // the core spoke before it saw our Close
			return
		}
		// The event overtook the slow path's open message: that message
		// was published first, so a fresh look at its queue finds it.
		c.pollResp()
		if cn = c.conns[e.Conn]; cn == nil {
			if c.nStash >= MaxStash {
				c.stashDrops++
				return
			}
			c.stash[e.Conn] = append(c.stash[e.Conn], *e)
			c.nStash++
			return
		}
	}
	cn.core = core
	if e.RxBump > 0 {
		c.deliver(cn, e.RxBump)
	}
	if e.TxBump > 0 {
		c.pend = append(c.pend, Event{Type: EvTxSpace, Conn: e.Conn, N: int(e.TxBump)})
	}
	if e.Flags&EvRxFin != 0 {
		c.pend = append(c.pend, Event{Type: EvRxClosed, Conn: e.Conn})
	}
	if e.Flags&EvTxFinAcked != 0 {
		c.pend = append(c.pend, Event{Type: EvTxClosed, Conn: e.Conn})
	}
}

// Wait blocks until an event may be ready or timeout passes (< 0: no
// timeout), using the sleeping-flag protocol so no wakeup is lost.
func (c *Context) Wait(timeout time.Duration) error {
	if len(c.pend) > 0 || len(c.kicks) > 0 {
		return nil
	}
	armed := make([]*shm.Consumer, 0, 1+len(c.ev))
	defer func() {
		for _, q := range armed {
			q.Disarm()
		}
	}()
	for _, q := range append([]*shm.Consumer{c.resp}, c.ev...) {
		ok, err := q.ArmSleep()
		if err != nil || !ok {
			return err
		}
		armed = append(armed, q)
	}
	_, err := c.bell.Wait(timeout)
	return err
}

// WaitFD is the doorbell eventfd, for callers that multiplex it with
// other descriptors (arm with Wait's protocol first).
func (c *Context) WaitFD() int { return c.bell.Fd() }

// ReleaseIdleTx gives back the pages of TX rings that stayed empty (every
// byte written acknowledged) since the last call, and returns the bytes
// released. The core reads a TX ring only between its tail and our head,
// so an empty ring is read by no one, and only this context writes it:
// call it where nothing writes to the context's rings concurrently.
func (c *Context) ReleaseIdleTx() uint64 {
	var n uint64
	for _, cn := range c.conns {
		if cn.dead {
			continue
		}
		empty, head := cn.tx.Empty()
		idle := empty && head == cn.txSweepHead
		cn.txSweepHead = head
		switch {
		case !idle:
			cn.txReleased = false
		case !cn.txReleased:
			cn.txReleased = true
			n += cn.tx.Release()
		}
	}
	return n
}

// Conns lists the open connections of the context.
func (c *Context) Conns() []Handle {
	out := make([]Handle, 0, len(c.conns))
	for h := range c.conns {
		out = append(out, h)
	}
	return out
}
