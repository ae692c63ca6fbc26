package slowpath

import (
	"crypto/sha256"
	"hash"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
)

// The memnic tests drive both stacks and both applications on the test
// goroutine with a virtual clock: a run is a deterministic function of the
// link seeds.

var debugRun = os.Getenv("GOTAS_DEBUG_RUN") != ""

var (
	ipA = netip.MustParsePrefix("10.0.0.1/24")
	ipB = netip.MustParsePrefix("10.0.0.2/24")
)

func testConfig(p netip.Prefix) Config {
	return Config{Prefix: p, MSL: 10 * time.Millisecond, SynRTO: 20 * time.Millisecond, SynRetries: 3,
		RTOMin: 5 * time.Millisecond, ARPRetry: 20 * time.Millisecond, MaxFlows: 64, RegionSize: 64 << 20}
}

type pair struct {
	t      testing.TB
	clock  *memnic.ManualClock
	start  time.Time
	a, b   *Stack
	pa, pb *app
}

func newPair(t testing.TB, ca, cb Config, ab, ba impair.Config) *pair {
	t.Helper()
	start := time.Unix(1_000_000, 0)
	clock := memnic.NewManualClock(start)
	portA, portB := memnic.Pair(ab, ba, memnic.WithClock(clock))
	now := func() uint64 { return uint64(clock.Now().Sub(start)) + 1_000_000_000 }
	ca.Clock, cb.Clock = now, now
	a, err := NewStack(portA, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStack(portB, cb)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{t: t, clock: clock, start: start, a: a, b: b}
	p.pa, p.pb = newApp(t, a), newApp(t, b)
	t.Cleanup(func() {
		a.Stop()
		b.Stop()
		portA.Close()
		portB.Close()
	})
	return p
}

func (p *pair) now() uint64 { return uint64(p.clock.Now().Sub(p.start)) + 1_000_000_000 }

// run steps everything until done() or the virtual time limit.
func (p *pair) run(limit time.Duration, done func() bool) {
	p.t.Helper()
	end := p.clock.Now().Add(limit)
	for it := 0; !done(); it++ {
		if debugRun && it%200000 == 0 {
			p.t.Logf("it %d t=%v A %+v\nB %+v\nA conns %+v B conns %+v", it, p.clock.Now().Sub(p.start), p.a.EngineStats(0), p.b.EngineStats(0), p.pa.order, p.pb.order)
		}
		w := p.a.Step()
		w = p.b.Step() || w
		w = p.pa.step() || w
		w = p.pb.step() || w
		if w {
			continue
		}
		if !p.clock.Now().Before(end) {
			p.t.Fatalf("not done after %v of virtual time", limit)
		}
		p.advanceToNext(end)
	}
}

// advanceToNext moves virtual time to the earliest link or stack
// deadline, no later than end and at least a microsecond on.
func (p *pair) advanceToNext(end time.Time) {
	next := end
	if t, ok := p.clock.NextDeadline(); ok && t.Before(next) {
		next = t
	}
	for _, s := range []*Stack{p.a, p.b} {
		if d, ok := s.NextDeadline(); ok {
			if t := p.start.Add(time.Duration(d - 1_000_000_000)); t.Before(next) {
				next = t
			}
		}
	}
	if min := p.clock.Now().Add(time.Microsecond); next.Before(min) {
		next = min
	}
	p.clock.AdvanceTo(next)
}

// pattern is the payload: byte i of a stream is pattern[i%len(pattern)];
// a prime length keeps it from lining up with the rings.
var pattern = func() []byte {
	b := make([]byte, 65521)
	x := uint32(1)
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}()

type appConn struct {
	h                  appif.Handle
	sendTotal, sent    int
	recvd              int
	bad                int // received bytes that differ from the pattern
	sum                hash.Hash
	shutdown, close    bool // shut down after sending / close after both FINs
	shut, closed       bool
	rxClosed, txClosed bool
	err                syscall.Errno
	hold               bool // stop reading (zero-window tests)
	held               int
}

type app struct {
	t         testing.TB
	s         *Stack
	ctx       *appif.Context
	evs       []appif.Event
	listener  appif.Handle
	listened  bool
	listenErr syscall.Errno
	conns     map[appif.Handle]*appConn
	order     []*appConn
	opened    map[uint64]appif.Event // by cookie
	// onConn configures each new connection.
	onConn func(c *appConn)
	// ccID is the congestion control listen and connect ask for (cc.ID).
	ccID uint8
}

func newApp(t testing.TB, s *Stack) *app {
	ctx, err := s.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	return &app{t: t, s: s, ctx: ctx, evs: make([]appif.Event, 64), conns: map[appif.Handle]*appConn{},
		opened: map[uint64]appif.Event{}}
}

func (a *app) newConn(h appif.Handle) *appConn {
	c := &appConn{h: h, sum: sha256.New()}
	if a.onConn != nil {
		a.onConn(c)
	}
	a.conns[h] = c
	a.order = append(a.order, c)
	return c
}

func (a *app) step() bool {
	n, err := a.ctx.Poll(a.evs)
	if err != nil {
		a.t.Fatal(err)
	}
	worked := n > 0
	for _, ev := range a.evs[:n] {
		switch ev.Type {
		case appif.EvListenOpened:
			if ev.Err != 0 {
				a.listenErr = ev.Err // tests that wait for listened fail
				continue
			}
			a.listener, a.listened = ev.Listener, true
		case appif.EvAccepted:
			a.newConn(ev.Conn)
		case appif.EvConnOpened:
			a.opened[ev.Cookie] = ev
			if ev.Err == 0 {
				a.newConn(ev.Conn)
			}
		case appif.EvData:
			c := a.conns[ev.Conn]
			for _, d := range ev.Data {
				for i, x := range d {
					if x != pattern[(c.recvd+i)%len(pattern)] {
						c.bad++
					}
				}
				c.sum.Write(d)
				c.recvd += len(d)
			}
			if c.hold {
				c.held += ev.N
			} else if err := a.ctx.RxDone(ev.Conn, ev.N); err != nil {
				a.t.Fatal(err)
			}
		case appif.EvRxClosed:
			a.conns[ev.Conn].rxClosed = true
		case appif.EvTxClosed:
			a.conns[ev.Conn].txClosed = true
		case appif.EvClosed:
			a.conns[ev.Conn].err = ev.Err
		}
	}
	for _, c := range a.order {
		if c.closed || c.err != 0 {
			continue
		}
		if !c.hold && c.held > 0 {
			if err := a.ctx.RxDone(c.h, c.held); err != nil {
				a.t.Fatal(err)
			}
			c.held = 0
			worked = true
		}
		for c.sent < c.sendTotal {
			x, y, err := a.ctx.TxAlloc(c.h, c.sendTotal-c.sent)
			if err != nil {
				a.t.Fatal(err)
			}
			if len(x)+len(y) == 0 {
				break
			}
			k := 0
			for _, b := range [][]byte{x, y} {
				for len(b) > 0 {
					o := (c.sent + k) % len(pattern)
					m := copy(b, pattern[o:])
					b = b[m:]
					k += m
				}
			}
			if err := a.ctx.TxSend(c.h, k); err != nil {
				a.t.Fatal(err)
			}
			c.sent += k
			worked = true
		}
		if c.shutdown && !c.shut && c.sent == c.sendTotal {
			if err := a.ctx.Shutdown(c.h); err != nil {
				a.t.Fatal(err)
			}
			c.shut = true
			worked = true
		}
		if c.close && c.rxClosed && c.txClosed {
			if err := a.ctx.Close(c.h); err != nil {
				a.t.Fatal(err)
			}
			c.closed = true
			worked = true
		}
	}
	return worked
}

func (a *app) listen(port uint16) {
	if _, err := a.ctx.ListenCC(port, 16, a.ccID); err != nil {
		a.t.Fatal(err)
	}
}

func (a *app) connect(dst netip.AddrPort) uint64 {
	c, err := a.ctx.ConnectCC(dst, a.ccID)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// streamSum is the sha256 of the first n bytes of the pattern stream.
func streamSum(n int) []byte {
	h := sha256.New()
	for n > 0 {
		k := min(n, len(pattern))
		h.Write(pattern[:k])
		n -= k
	}
	return h.Sum(nil)
}
