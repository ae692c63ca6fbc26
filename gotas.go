// Package gotas is the embedded form of the gotas TCP stack: New opens a
// NIC and runs the fast and slow paths in this process, and Listen and Dial
// return standard net.Listener and net.Conn values on top of them.
//
//	st, err := gotas.New(gotas.Config{Addr: netip.MustParsePrefix("10.0.0.1/24"), NIC: "afxdp:eth0"})
//	ln, err := st.Listen("tcp", ":8080")
//	http.Serve(ln, handler)
//
// Errors from connections wrap syscall errnos, so errors.Is(err,
// syscall.ECONNRESET) and friends work as they do with package net.
package gotas

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gotas/internal/appif"
	"gotas/internal/cc"
	"gotas/internal/ctlsock"
	"gotas/internal/nic"
	"gotas/internal/nic/nicopen"
	"gotas/internal/shm"
	"gotas/internal/slowpath"
)

// Config configures an embedded stack.
type Config struct {
	// Addr is the stack's IPv4 address and directly connected prefix.
	Addr netip.Prefix
	// NIC is the packet I/O back-end, kind:interface (afxdp:eth0,
	// afpacket:eth0, tap:tas0). Ignored when Port is set.
	NIC string
	// XDPMode is auto, native or generic (AF_XDP only).
	XDPMode string
	// XDPTx is how AF_XDP transmits: gso (the default) or ring
	// (nicopen.Options.Tx).
	XDPTx string
	// Port is an already opened NIC (tests use nic/memnic); the stack
	// closes it on Close.
	Port nic.Port
	// Routes are static routes: destination prefix to next hop.
	Routes []Route
	// Stack tunes the TCP engine (buffer sizes, options, timers); its
	// Prefix and Routes are filled from the fields above.
	Stack slowpath.Config
	// Threads runs each fast-path core on a locked OS thread of its own
	// and the slow path on a goroutine, as the tas service does for
	// applications in other processes. Otherwise (the default) the stack
	// runs inline (slowpath.Config.Inline): one goroutine drives it and
	// this process's goroutines serve their own requests, so a request
	// wakes no thread of the stack's.
	Threads bool
	// Service is the control socket of a running tas service. When set,
	// the stack is the service's: this process registers there and every
	// other field is ignored. A Config that names neither a NIC nor a
	// Port takes it from the TAS_SOCKET environment variable, so one
	// program runs embedded or on the service by configuration alone.
	Service string
}

// ServiceEnv names the environment variable that points programs at the
// tas service's control socket.
const ServiceEnv = "TAS_SOCKET"

// txSweepInterval is how often the poller looks for idle TX rings: a ring
// is released after it stayed empty for one to two intervals. (A
// variable for tests.)
var txSweepInterval = time.Second

// ErrServiceGone is what connections, listeners and calls fail with when
// the tas service stopped or restarted; connections also match
// syscall.ECONNRESET. Make a new Stack with New to register again.
var ErrServiceGone = ctlsock.ErrServiceGone

// Route sends traffic for Dst through the gateway Via.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// ParseRoute parses DEST/P,NEXTHOP (the --ip-route flag), e.g.
// 10.1.0.0/16,10.0.0.254.
func ParseRoute(s string) (Route, error) {
	dst, via, ok := strings.Cut(s, ",")
	if !ok {
		return Route{}, fmt.Errorf("route %q: want DEST/P,NEXTHOP, e.g. 10.1.0.0/16,10.0.0.254", s)
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil || !p.Addr().Is4() {
		return Route{}, fmt.Errorf("route %q: destination %q is not an IPv4 prefix", s, dst)
	}
	a, err := netip.ParseAddr(via)
	if err != nil || !a.Is4() {
		return Route{}, fmt.Errorf("route %q: next hop %q is not an IPv4 address", s, via)
	}
	return Route{Dst: p.Masked(), Via: a}, nil
}

// Stack is a running gotas stack: embedded in this process, or the tas
// service's as seen by one registered application.
type Stack struct {
	st     *slowpath.Stack // embedded: the stack in this process
	port   nic.Port        // embedded: its NIC, closed by Close
	client *ctlsock.Client // on the service: the registration
	addr   netip.Addr

	// mu serializes use of ctx, which, like TAS's libtas context, is not
	// safe for concurrent use; it also guards the bookkeeping below.
	mu   sync.Mutex
	ctx  *appif.Context
	park *shm.Parker // the poller waits for ctx's doorbell here (not inline)
	evs  []appif.Event
	// inline: the stack's driver dispatches events (afterTurn), and
	// callers that post commands serve them (unlock).
	inline bool
	// nextTxSweep is when the poller next releases idle TX rings;
	// txReleased counts the bytes it gave back.
	nextTxSweep time.Time
	txReleased  uint64
	polls       uint64 // poller turns, for txSweepPolls
	// spin, when set (by the service), is how long the idle poller spins
	// before it parks; otherwise pollerSpins turns.
	spin      time.Duration
	conns     map[appif.Handle]*Conn
	listeners map[appif.Handle]*Listener
	pending   map[uint64]*waiter // Listen/Connect cookie -> waiter
	closeQ    []closeReq         // closes the request queue had no room for
	closed    bool
	closeErr  error // what calls fail with once closed
	shut      bool  // shutdown ran: the poller is stopped or stopping

	// Events the poller dropped because they name no open connection or
	// listener of this stack (closed ones, or abandoned opens).
	strayEvents uint64

	pollerDone chan struct{}
}

// waiter is a Listen or Dial waiting for its answer. The poller creates
// and registers the Listener or Conn itself, in the same critical section
// in which it sees the answer, so the object's first events (a greeting
// from a server that speaks first, an accepted connection) find it.
type waiter struct {
	ch     chan openResult // buffered: the poller never blocks on it
	remote netip.AddrPort  // Dial: the destination
	port   uint16          // Listen: the port
}

type openResult struct {
	err  syscall.Errno
	conn *Conn
	ln   *Listener
}

// closeReq is a Close or ListenClose to retry.
type closeReq struct {
	h        appif.Handle
	listener bool
}

// New opens the NIC and starts the stack, or, when cfg.Service (or
// TAS_SOCKET, see Config.Service) names a control socket, registers with
// the tas service.
func New(cfg Config) (*Stack, error) {
	if cfg.Service == "" && cfg.NIC == "" && cfg.Port == nil {
		cfg.Service = os.Getenv(ServiceEnv)
	}
	if cfg.Service != "" {
		return attach(cfg.Service)
	}
	st, port, err := assemble(cfg)
	if err != nil {
		return nil, err
	}
	newCtx := st.NewContext
	if st.Inline() {
		newCtx = st.NewKickedContext
	}
	ctx, err := newCtx()
	if err != nil {
		st.Stop()
		port.Close()
		return nil, err
	}
	s, err := newStack(ctx, cfg.Addr.Addr(), !st.Inline())
	if err != nil {
		st.Stop()
		port.Close()
		return nil, err
	}
	s.st, s.port = st, port
	if s.inline = st.Inline(); s.inline {
		close(s.pollerDone) // the driver dispatches; there is no poller
		st.SetAfterTurn(s.afterTurn)
		st.Start()
	} else {
		st.Start()
		go s.poll()
	}
	return s, nil
}

// assemble builds the stack: the one place that does, for embedders and
// for the tas daemon.
func assemble(cfg Config) (*slowpath.Stack, nic.Port, error) {
	if !cfg.Addr.Addr().Is4() {
		return nil, nil, fmt.Errorf("gotas: Config.Addr %v: want an IPv4 prefix such as 10.0.0.1/24", cfg.Addr)
	}
	port := cfg.Port
	if port == nil {
		spec, err := nicopen.Parse(cfg.NIC)
		if err != nil {
			return nil, nil, err
		}
		if port, err = nicopen.Open(spec, nicopen.Options{Addr: cfg.Addr.Addr(), XDPMode: cfg.XDPMode, Tx: cfg.XDPTx}); err != nil {
			return nil, nil, err
		}
	}
	sc := cfg.Stack
	sc.Prefix, sc.Inline = cfg.Addr, !cfg.Threads
	if len(cfg.Routes) > 0 {
		sc.Routes = &slowpath.Routes{}
		for _, r := range cfg.Routes {
			if err := sc.Routes.Add(r.Dst, r.Via); err != nil {
				port.Close()
				return nil, nil, err
			}
		}
	}
	st, err := slowpath.NewStack(port, sc)
	if err != nil {
		port.Close()
		return nil, nil, err
	}
	return st, port, nil
}

// attach registers with the service at path.
func attach(path string) (*Stack, error) {
	cl, err := ctlsock.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("gotas: %w", err)
	}
	ctx, err := cl.NewContext()
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("gotas: %w", err)
	}
	s, err := newStack(ctx, cl.Welcome().Addr, true)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("gotas: %w", err)
	}
	s.client = cl
	s.spin = time.Duration(cl.Welcome().AppPollUs) * time.Microsecond
	go s.poll()
	go s.watchService()
	return s, nil
}

// newStack makes the Stack for ctx; poller: it gets a poller goroutine,
// which parks on the context's doorbell.
func newStack(ctx *appif.Context, addr netip.Addr, poller bool) (*Stack, error) {
	var park *shm.Parker
	if poller {
		var err error
		if park, err = shm.NewParker(ctx.WaitFD(), ctx.DrainBell); err != nil {
			return nil, err
		}
	}
	return &Stack{addr: addr, ctx: ctx, park: park, evs: make([]appif.Event, 64), conns: map[appif.Handle]*Conn{},
		listeners: map[appif.Handle]*Listener{}, pending: map[uint64]*waiter{}, pollerDone: make(chan struct{}),
		closeErr: net.ErrClosed}, nil
}

// watchService fails everything when the service goes away: nothing will
// answer or wake this process any more.
func (s *Stack) watchService() {
	<-s.client.Gone()
	s.shutdown(ErrServiceGone, fmt.Errorf("gotas: %w: %w", ErrServiceGone, syscall.ECONNRESET))
}

// Addr is the stack's IPv4 address.
func (s *Stack) Addr() netip.Addr { return s.addr }

// Engine gives access to the TCP engine for statistics and resource
// counts.
func (s *Stack) Engine() *slowpath.Stack { return s.st }

// RingBytesReleased counts the bytes of idle rings this stack gave back
// to the kernel: TX rings by this process, RX rings by the cores (when
// embedded).
func (s *Stack) RingBytesReleased() uint64 {
	s.mu.Lock()
	n := s.txReleased
	s.mu.Unlock()
	if s.st != nil {
		for i := range s.st.Cores() {
			n += s.st.EngineStats(i).RingBytesReleased
		}
	}
	return n
}

// DroppedEvents counts events dropped because they named a connection
// already released (by this package or in the application context) or
// because too many waited for their connection to open (appif.MaxStash).
func (s *Stack) DroppedEvents() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strayEvents + s.ctx.StaleEvents() + s.ctx.StashDrops()
}

// Close stops the stack (on the service: ends the registration, and the
// service resets its connections); open connections and listeners fail
// with net.ErrClosed.
func (s *Stack) Close() error {
	first := s.shutdown(net.ErrClosed, net.ErrClosed)
	if s.client != nil {
		return s.client.Close()
	}
	if !first {
		return nil
	}
	// The port goes last: closing it detaches the XDP program (or
	// deletes the TAP device), which must not happen while cores run.
	return errors.Join(s.st.Stop(), s.port.Close())
}

// shutdown marks the stack closed, fails what is open and stops the
// poller; it reports whether it did (the first call).
func (s *Stack) shutdown(callErr, connErr error) bool {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return false
	}
	s.shut = true
	if !s.closed { // else a failed context closed it already
		s.closed, s.closeErr = true, callErr
		for _, c := range s.conns {
			c.fail(connErr)
		}
		for _, l := range s.listeners {
			l.fail(callErr)
		}
		for _, w := range s.pending {
			close(w.ch)
		}
	}
	s.mu.Unlock()
	s.ctx.Wake()
	<-s.pollerDone
	if s.park != nil {
		s.park.Close()
	}
	return true
}

// poll is the context's event loop: it turns events into state changes of
// connections and listeners and wakes whoever waits on them. It spins a
// little when idle, then sleeps on the context's doorbell.
func (s *Stack) poll() {
	defer close(s.pollerDone)
	idle, idleSince := 0, time.Time{}
	for {
		s.mu.Lock()
		n, open := s.dispatchEvents()
		if !open {
			s.mu.Unlock()
			return
		}
		if s.polls++; s.polls%txSweepPolls == 0 {
			s.sweepTx()
		}
		if n > 0 {
			s.mu.Unlock()
			idle = 0
			continue
		}
		if idle == 0 {
			idleSince = time.Now()
		}
		idle++
		if s.spinning(idle, idleSince) {
			s.mu.Unlock()
			runtime.Gosched()
			continue
		}
		s.sweepTx() // about to park: idle rings are likely now
		ready, err := s.ctx.ArmWait()
		if err != nil {
			s.failAll(err)
			s.mu.Unlock()
			return
		}
		// Closes waiting for room are retried soon; read under the lock.
		timeout := pick(len(s.closeQ) > 0, time.Millisecond, 100*time.Millisecond)
		s.mu.Unlock()
		if !ready {
			// Park in the netpoller, holding no thread: the goroutines
			// dispatch made runnable run now on this P, and the doorbell
			// wakes us on whichever P polls the network next.
			s.park.Wait(timeout)
		}
		s.mu.Lock()
		s.ctx.DisarmWait()
		s.mu.Unlock()
		idle = 0
	}
}

// dispatchEvents applies the events the context has; it reports how many,
// and false once the stack is closed. s.mu is held.
func (s *Stack) dispatchEvents() (int, bool) {
	if s.closed {
		return 0, false
	}
	n, err := s.ctx.Poll(s.evs)
	if err != nil {
		s.failAll(err)
		return 0, false
	}
	for i := range s.evs[:n] {
		s.dispatch(&s.evs[i])
	}
	if len(s.closeQ) > 0 {
		s.retryCloses()
	}
	return n, true
}

// afterTurn is the inline driver's hook, and what a caller runs after
// its own Kick ran the cores: it dispatches what they produced. It
// reports whether there was anything, commands it posted, or closes
// still to retry.
func (s *Stack) afterTurn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := s.ctx.Merged() // Poll posts them: the cores must run after
	n, open := s.dispatchEvents()
	if !open {
		return false
	}
	if n == 0 {
		s.sweepTx() // an idle turn: a clock read costs nothing here
	} else if s.polls++; s.polls%txSweepPolls == 0 {
		s.sweepTx()
	}
	return n > 0 || merged || len(s.closeQ) > 0
}

// unlock releases s.mu after posting commands. Inline, the caller then
// serves them itself if the driver is parked (slowpath.Stack.Kick) and
// dispatches the events that produced: the response an application
// writes leaves in its own Write, and no thread is woken for it.
func (s *Stack) unlock() {
	s.mu.Unlock()
	if !s.inline {
		return
	}
	// The iterations may produce more events than one dispatch takes, and
	// the dispatch may post merged commands: go on while the driver stays
	// parked and there is more, then leave the rest to the driver.
	for range unlockRounds {
		if !s.st.Kick() || !s.afterTurn() {
			return
		}
	}
	s.st.WakeDriver()
}

// unlockRounds bounds the iterations and dispatches a caller of unlock
// runs for the stack before it wakes the driver for the rest.
const unlockRounds = 8

// txSweepPolls: a poller that never goes idle still looks at the clock
// for the TX sweep once in this many turns (a clock read per turn costs
// more than the turn).
const txSweepPolls = 4096

// sweepTx gives idle TX rings their pages back once per txSweepInterval,
// as the core does for RX rings; s.mu is held, so nothing writes to them.
func (s *Stack) sweepTx() {
	if now := time.Now(); now.After(s.nextTxSweep) {
		s.nextTxSweep = now.Add(txSweepInterval)
		s.txReleased += s.ctx.ReleaseIdleTx()
	}
}

// pollerSpins is how many idle turns the poller spins before it parks,
// unless the service set a spin time (tas --fp-poll-interval-app).
const pollerSpins = 64

// spinning reports whether an idle poller should poll once more.
func (s *Stack) spinning(turns int, since time.Time) bool {
	if s.spin > 0 {
		return time.Since(since) < s.spin
	}
	return turns < pollerSpins
}

// failAll ends the stack when its context failed (the poller stops):
// everything open fails, and so does every later call, instead of
// waiting for a poller that is gone. s.mu is held.
func (s *Stack) failAll(err error) {
	err = fmt.Errorf("gotas: application context failed: %w", err)
	for _, c := range s.conns {
		c.fail(err)
	}
	for _, l := range s.listeners {
		l.fail(err)
	}
	if !s.closed {
		s.closed, s.closeErr = true, err
		for _, w := range s.pending {
			close(w.ch)
		}
	}
}

// dispatch applies one event; s.mu is held.
func (s *Stack) dispatch(e *appif.Event) {
	switch e.Type {
	case appif.EvListenOpened, appif.EvConnOpened:
		listener := e.Type == appif.EvListenOpened
		w, ok := s.pending[e.Cookie]
		if ok {
			delete(s.pending, e.Cookie)
		}
		if e.Err != 0 {
			if ok {
				w.ch <- openResult{err: e.Err}
			}
			return
		}
		if !ok { // its caller gave up
			s.closeHandle(pick(listener, e.Listener, e.Conn), listener)
			return
		}
		// Register before anything else is dispatched: the events that
		// follow in this very batch may be the new object's.
		if listener {
			l := &Listener{s: s, h: e.Listener, addr: netip.AddrPortFrom(s.addr, w.port), ready: make(chan struct{}, 1)}
			s.listeners[l.h] = l
			w.ch <- openResult{ln: l}
		} else {
			w.ch <- openResult{conn: s.newConn(e.Conn, netip.AddrPortFrom(s.addr, e.LocalPort), w.remote)}
		}
	case appif.EvAccepted:
		l := s.listeners[e.Listener]
		if l == nil || l.err != nil || e.Err != 0 {
			if e.Err == 0 {
				s.closeHandle(e.Conn, false)
			}
			return
		}
		c := s.newConn(e.Conn, netip.AddrPortFrom(s.addr, e.LocalPort), e.Remote)
		l.backlog = append(l.backlog, c)
		notify(l.ready)
	case appif.EvListenClosed:
		if l := s.listeners[e.Listener]; l != nil {
			delete(s.listeners, e.Listener)
			l.fail(net.ErrClosed)
		}
	default:
		c := s.conns[e.Conn]
		if c == nil {
			s.strayEvents++ // a connection already released
			return
		}
		s.connEvent(c, e)
	}
}

// connEvent applies an event of an open connection; s.mu is held.
func (s *Stack) connEvent(c *Conn, e *appif.Event) {
	switch e.Type {
	case appif.EvData:
		if c.closed {
			c.release() // nobody will read it: reset, as Linux does
			return
		}
		for _, d := range e.Data {
			if len(d) > 0 {
				c.rx = append(c.rx, d)
			}
		}
		notify(c.rxReady)
	case appif.EvTxSpace:
		notify(c.txReady)
	case appif.EvRxClosed:
		c.rxEOF = true
		notify(c.rxReady)
		c.finished()
	case appif.EvTxClosed:
		c.txFinAcked = true
		c.finished()
	case appif.EvClosed:
		errno := e.Err
		if errno == 0 {
			errno = syscall.ECONNRESET
		}
		c.fail(errno)
		c.release() // keeps the unread bytes, copied out of the ring
	}
}

// closeHandle sends Close (or ListenClose) for h, and retries it from the
// poller if the request queue is full; s.mu is held.
func (s *Stack) closeHandle(h appif.Handle, listener bool) {
	if s.closed {
		return
	}
	var err error
	if listener {
		err = s.ctx.ListenClose(h)
	} else {
		err = s.ctx.Close(h)
	}
	if errors.Is(err, appif.ErrAgain) {
		s.closeQ = append(s.closeQ, closeReq{h, listener})
	}
}

// retryCloses sends the closes that found the request queue full; s.mu is
// held.
func (s *Stack) retryCloses() {
	q := s.closeQ
	s.closeQ = nil
	for i, r := range q {
		s.closeHandle(r.h, r.listener)
		if len(s.closeQ) > 0 { // still full: keep the rest, in order
			s.closeQ = append(s.closeQ, q[i+1:]...)
			return
		}
	}
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// notify wakes a waiter without blocking; a pending wakeup is enough.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// request sends a Listen or Connect and waits for its answer.
func (s *Stack) request(ctx context.Context, w *waiter, send func() (uint64, error)) (openResult, error) {
	w.ch = make(chan openResult, 1)
	var cookie uint64
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return openResult{}, s.closeErr
		}
		var err error
		cookie, err = send()
		if err == nil {
			s.pending[cookie] = w
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		if !errors.Is(err, appif.ErrAgain) {
			return openResult{}, err
		}
		select {
		case <-ctx.Done():
			return openResult{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	select {
	case r, ok := <-w.ch:
		if !ok {
			s.mu.Lock()
			defer s.mu.Unlock()
			return openResult{}, s.closeErr
		}
		return r, nil
	case <-ctx.Done():
	}
	// Nobody waits any more: forget the request, so that dispatch closes
	// a connection that still opens. An answer already delivered is
	// closed here.
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, cookie)
	select {
	case r, ok := <-w.ch:
		if ok && r.conn != nil {
			r.conn.closed = true
			r.conn.release()
		}
		if ok && r.ln != nil {
			r.ln.closeLocked()
		}
	default:
	}
	return openResult{}, ctx.Err()
}

func parseAddr(network, address string) (netip.AddrPort, error) {
	switch network {
	case "tcp", "tcp4":
	default:
		return netip.AddrPort{}, fmt.Errorf("gotas: network %q: only tcp and tcp4 are supported", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gotas: bad port in %q", address)
	}
	var ip netip.Addr
	if host != "" {
		if ip, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("gotas: %q: want a numeric IPv4 address (no name resolution)", address)
		}
		ip = ip.Unmap()
		if !ip.Is4() {
			return netip.AddrPort{}, fmt.Errorf("gotas: %q: only IPv4 is supported", address)
		}
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Options are per-connection choices for DialOptions and ListenOptions.
type Options struct {
	// CC is the congestion control (cc.Names(); "" is the stack's
	// Config.Stack.CC). A listener's choice applies to what it accepts.
	CC string
}

// Listen listens on a local port. The address's host part must be empty,
// 0.0.0.0 or the stack's address.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	return s.ListenOptions(network, address, Options{})
}

// ListenOptions is Listen with per-connection options.
func (s *Stack) ListenOptions(network, address string, o Options) (net.Listener, error) {
	ccID, err := cc.ID(o.CC)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ap, err := parseAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	if ap.Addr().IsValid() && !ap.Addr().IsUnspecified() && ap.Addr() != s.addr {
		return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EADDRNOTAVAIL}
	}
	if ap.Port() == 0 {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("gotas: listening needs an explicit port")}
	}
	r, err := s.request(context.Background(), &waiter{port: ap.Port()}, func() (uint64, error) { return s.ctx.ListenCC(ap.Port(), 1024, ccID) })
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	if r.err != 0 {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("listen", r.err)}
	}
	if testHookOpened != nil {
		testHookOpened(true)
	}
	return r.ln, nil
}

// Dial connects to address (numeric IPv4:port).
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext connects to address, giving up when ctx ends.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return s.DialOptions(ctx, network, address, Options{})
}

// DialOptions is DialContext with per-connection options.
func (s *Stack) DialOptions(ctx context.Context, network, address string, o Options) (net.Conn, error) {
	ccID, err := cc.ID(o.CC)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ap, err := parseAddr(network, address)
	if err == nil && !ap.Addr().IsValid() {
		err = errors.New("gotas: dial needs a destination address")
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	r, err := s.request(ctx, &waiter{remote: ap}, func() (uint64, error) { return s.ctx.ConnectCC(ap, ccID) })
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(ap), Err: err}
	}
	if r.err != 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(ap), Err: os.NewSyscallError("connect", r.err)}
	}
	if testHookOpened != nil {
		testHookOpened(false)
	}
	return r.conn, nil
}

// newConn registers a connection; s.mu is held.
func (s *Stack) newConn(h appif.Handle, local, remote netip.AddrPort) *Conn {
	c := &Conn{s: s, h: h, local: local, remote: remote,
		rxReady: make(chan struct{}, 1), txReady: make(chan struct{}, 1)}
	s.conns[h] = c
	return c
}

// testHookOpened, if set, runs in Listen and Dial once the stack has
// answered the request, before they return: tests widen the window in
// which the poller dispatches the new object's first events.
var testHookOpened func(listener bool)

func tcpAddr(ap netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap) }
