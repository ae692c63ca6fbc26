package slowpath

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
	"gotas/internal/shm"
)

// newSeparateApp registers a second application on s, the way the service
// does for another process: its own region, doorbells and context.
func newSeparateApp(t *testing.T, s *Stack, l AppLimits) (*App, *app) {
	t.Helper()
	a, err := s.NewApp(4242, l)
	if err != nil {
		t.Fatal(err)
	}
	descOff, bell, err := s.NewAppContext(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := appif.Attach(a.Region(), descOff, bell, a.SlowBell(), a.CoreBells())
	if err != nil {
		t.Fatal(err)
	}
	return a, &app{t: t, s: s, ctx: ctx, evs: make([]appif.Event, 64), conns: map[appif.Handle]*appConn{},
		opened: map[uint64]appif.Event{}}
}

// TestAppDeathResetsItsFlowsOnlyAndFreesItsMemory: stack A serves two
// applications, one listening on 80 and one on 81; the peer streams to
// both. When the first dies, its connections are reset (the peer sees
// ECONNRESET), its listener, ports, flows and region are freed, and the
// other application's transfer completes with every byte intact.
func TestAppDeathResetsItsFlowsOnlyAndFreesItsMemory(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	dead, deadApp := newSeparateApp(t, p.a, AppLimits{})
	const victims, total = 4, 2 << 20
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown = total, true }
	p.pa.onConn = func(c *appConn) { c.shutdown, c.close = true, true }
	deadApp.listen(80)
	p.pa.listen(81)
	step := func() bool { return deadApp.step() }
	run := func(limit time.Duration, done func() bool) {
		p.run(limit, func() bool { step(); return done() })
	}
	run(time.Second, func() bool { return deadApp.listened && p.pa.listened })
	for range victims {
		p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	}
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 81))
	run(time.Second, func() bool { return len(deadApp.order) == victims && len(p.pa.order) == 1 && p.pa.order[0].recvd > 0 })
	before := p.a.Resources()
	p.a.RemoveApp(dead)
	step = func() bool { return false } // the process is gone: nobody polls its context
	run(5*time.Second, func() bool {
		select {
		case <-dead.Freed():
		default:
			return false
		}
		return len(p.pa.order) == 1 && p.pa.order[0].closed
	})
	resets := 0
	for _, c := range p.pb.order {
		if c.err == syscall.ECONNRESET {
			resets++
		}
	}
	if resets != victims {
		t.Fatalf("peer saw %d resets, want %d (one per connection of the dead app)", resets, victims)
	}
	survivor := p.pa.order[0]
	if survivor.recvd != total || survivor.bad != 0 || !bytes.Equal(survivor.sum.Sum(nil), streamSum(total)) {
		t.Fatalf("other app got %d of %d bytes, %d bad", survivor.recvd, total, survivor.bad)
	}
	r := p.a.Resources()
	if r.Flows > 1 || r.Ports > 2 || r.BufferBytes >= before.BufferBytes {
		t.Fatalf("after the death: %+v (before %+v)", r, before)
	}
	if st := p.a.Stats(); st.AppsFreed != 1 {
		t.Fatalf("AppsFreed = %d", st.AppsFreed)
	}
	// Its port is free again.
	p.pa.listened = false
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
}

// TestAppLimits: an application cannot hold more flows or listeners than
// its limits; the excess fails with ENOBUFS, counted, and the stack's
// other applications are not affected.
func TestAppLimits(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	_, lim := newSeparateApp(t, p.b, AppLimits{MaxFlows: 2, MaxListeners: 1})
	p.pa.listen(80)
	lim.listen(90)
	p.run(time.Second, func() bool { lim.step(); return p.pa.listened && lim.listened })
	if _, err := lim.ctx.Listen(91, 4); err != nil {
		t.Fatal(err)
	}
	var cookies []uint64
	for range 3 {
		cookies = append(cookies, lim.connect(netip.AddrPortFrom(ipA.Addr(), 80)))
	}
	other := p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(time.Second, func() bool {
		lim.step()
		_, ok := p.pb.opened[other]
		return len(lim.opened) == 3 && ok && lim.listenErr != 0
	})
	failed := 0
	for _, c := range cookies {
		if lim.opened[c].Err == syscall.ENOBUFS {
			failed++
		}
	}
	if failed != 1 || p.pb.opened[other].Err != 0 {
		t.Fatalf("%d of 3 connects over a limit of 2 failed with ENOBUFS; other app: %v", failed, p.pb.opened[other].Err)
	}
	if lim.listenErr != syscall.ENOBUFS {
		t.Fatalf("second listen over a limit of 1: %v, want ENOBUFS", lim.listenErr)
	}
	if st := p.b.Stats(); st.AppLimited != 2 { // the third connect and the second listen
		t.Fatalf("AppLimited = %d, want 2", st.AppLimited)
	}
}

// TestConnectRefusesImpossibleDestinations: port 0, the unspecified,
// broadcast and multicast addresses and the stack's own address fail at
// once, without a flow, a port or a SYN.
func TestConnectRefusesImpossibleDestinations(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	cases := map[string]syscall.Errno{
		"10.0.0.2:0": syscall.EADDRNOTAVAIL, "0.0.0.0:80": syscall.ENETUNREACH,
		"255.255.255.255:80": syscall.ENETUNREACH, "10.0.0.255:80": syscall.ENETUNREACH,
		"224.0.0.1:80": syscall.ENETUNREACH, "10.0.0.1:80": syscall.ECONNREFUSED,
	}
	cookies := map[uint64]string{}
	for dst := range cases {
		cookies[p.pa.connect(netip.MustParseAddrPort(dst))] = dst
	}
	p.run(time.Second, func() bool { return len(p.pa.opened) == len(cases) })
	for c, dst := range cookies {
		if got := p.pa.opened[c].Err; got != cases[dst] {
			t.Errorf("connect %s: %v, want %v", dst, got, cases[dst])
		}
	}
	if r := p.a.Resources(); r.Flows != 0 || r.Ports != 0 || p.a.EngineStats(0).TxSegments != 0 {
		t.Fatalf("refused connects left %+v and sent %d segments", r, p.a.EngineStats(0).TxSegments)
	}
}

// TestStopReleasesDescriptors: a stack stopped with applications still
// registered (its own and another's) leaves no eventfd, epoll or memfd
// behind.
func TestStopReleasesDescriptors(t *testing.T) {
	count := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(fds)
	}
	run := func() {
		pa, pb := memnic.Pair(impair.Config{}, impair.Config{})
		defer pa.Close()
		defer pb.Close()
		s, err := NewStack(pa, testConfig(ipA))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewContext(); err != nil {
			t.Fatal(err)
		}
		a, err := s.NewApp(1, AppLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.NewAppContext(a); err != nil {
			t.Fatal(err)
		}
		s.Step()
		s.Stop()
	}
	run() // first use may open descriptors that stay (the runtime's)
	before := count()
	for range 20 {
		run()
	}
	if after := count(); after > before+2 {
		t.Fatalf("%d descriptors before 20 stacks, %d after", before, after)
	}
}

// TestAppNotReadingResponses: an application that sends requests and
// never reads the answers neither keeps the slow path awake nor grows its
// memory: past its queue the answers wait (and the slow path sleeps,
// retrying soon), past four queues' worth it is torn down.
func TestAppNotReadingResponses(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	dead, mute := newSeparateApp(t, p.a, AppLimits{MaxListeners: 1 << 16})
	slept := false
	for port := 1; port < 65536 && p.a.Stats().AppsStalled == 0; port++ {
		if _, err := mute.ctx.Listen(uint16(port), 1); err != nil {
			if !errors.Is(err, appif.ErrAgain) {
				t.Fatal(err)
			}
			for p.a.Step() {
			}
			if p.a.sp.prepareSleep() && p.a.sp.retrySoon {
				slept = true
			}
			p.a.sp.woke()
		}
	}
	if !slept {
		t.Fatal("the slow path never could sleep with answers waiting")
	}
	p.run(time.Second, func() bool {
		select {
		case <-dead.Freed():
			return true
		default:
			return false
		}
	})
	if r := p.a.Resources(); r.Ports != 0 {
		t.Fatalf("the stalled app's listeners hold %d ports", r.Ports)
	}
}

// TestAppForgingAnothersHandles: application B writes commands and
// requests naming application A's connection straight into its own
// queues (a FIN, ring bumps, a close). A's transfer completes intact; the
// forgeries are counted bad commands.
func TestAppForgingAnothersHandles(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	b, err := p.a.NewApp(7, AppLimits{})
	if err != nil {
		t.Fatal(err)
	}
	descOff, _, err := p.a.NewAppContext(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := b.Region().Bytes(descOff, appif.DescSize)
	d, ok := appif.ParseDesc(raw)
	if !ok {
		t.Fatal("descriptor")
	}
	cmdQ, err := shm.NewProducer(b.Region(), d.CmdOff[0], appif.CmdSlot, d.CmdSlots, b.CoreBells()[0])
	if err != nil {
		t.Fatal(err)
	}
	reqQ, err := shm.NewProducer(b.Region(), d.ReqOff, appif.ReqSlot, d.ReqSlots, b.SlowBell())
	if err != nil {
		t.Fatal(err)
	}
	const total = 1 << 20
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown = total, true }
	p.pa.onConn = func(c *appConn) { c.shutdown, c.close = true, true }
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(time.Second, func() bool { return len(p.pa.order) == 1 })
	victim := p.pa.order[0].h
	forged := false
	p.run(5*time.Second, func() bool {
		if !forged {
			var buf [appif.ReqSlot]byte
			(&appif.Cmd{Conn: victim, TxBump: 4096, RxBump: 4096, Flags: appif.CmdTxClose}).Put(buf[:appif.CmdSlot])
			cmdQ.Push(buf[:appif.CmdSlot])
			(&appif.Ctl{Type: appif.ReqClose, Handle: victim}).Put(buf[:])
			reqQ.Push(buf[:])
			(&appif.Ctl{Type: appif.ReqListenClose, Handle: p.pa.listener}).Put(buf[:])
			reqQ.Push(buf[:])
			forged = true
		}
		return p.pa.order[0].closed
	})
	c := p.pa.order[0]
	if c.recvd != total || c.bad != 0 || c.err != 0 {
		t.Fatalf("victim got %d of %d bytes, %d bad, err %v", c.recvd, total, c.bad, c.err)
	}
	if st := p.a.EngineStats(0); st.BadCommands == 0 {
		t.Fatal("the forged command was not counted")
	}
	if l := p.a.sp.listeners[80]; l == nil || l.ctx.app == b {
		t.Fatal("the forged ListenClose closed A's listener")
	}
}

// TestSecondContextOfAnApp: contexts of one application share its
// doorbell for each core; the second one must work too (it was never
// attached: its doorbell was in the core's set already), and closing one
// must not take the doorbell from the other.
func TestSecondContextOfAnApp(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	second := newApp(t, p.a) // the same application as p.pa: this process
	const total = 64 << 10
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown = total, true }
	second.onConn = func(c *appConn) { c.shutdown, c.close = true, true }
	p.pa.listen(80)
	second.listen(81)
	run := func(done func() bool) { p.run(3*time.Second, func() bool { second.step(); return done() }) }
	run(func() bool { return p.pa.listened && second.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 81))
	run(func() bool { return len(second.order) == 1 && second.order[0].closed })
	if c := second.order[0]; c.recvd != total || c.bad != 0 {
		t.Fatalf("second context got %d of %d bytes, %d bad", c.recvd, total, c.bad)
	}
}

// TestOwnAppNeverTornDown: this process's application is not torn down
// for not reading its answers (its Contexts live here and use its
// memory); a separate application would be.
func TestOwnAppNeverTornDown(t *testing.T) {
	p := newPair(t, testConfig(ipA), testConfig(ipB), impair.Config{}, impair.Config{})
	for port := 1; port < 3000; port++ {
		if _, err := p.pa.ctx.Listen(uint16(port), 1); err != nil {
			for p.a.Step() {
			}
		}
	}
	for p.a.Step() {
	}
	if st := p.a.Stats(); st.AppsStalled != 0 || st.AppsFreed != 0 {
		t.Fatalf("own application torn down: stalled %d freed %d", st.AppsStalled, st.AppsFreed)
	}
	if _, err := p.pa.ctx.Poll(p.pa.evs); err != nil { // its memory is still mapped and valid
		t.Fatal(err)
	}
}
