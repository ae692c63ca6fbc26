package slowpath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime/debug"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/impair"
	"gotas/internal/shm"
)

// FuzzHostileApp runs a verified transfer between a well-behaved
// application on stack A and one on stack B while a second application
// context on stack A, with connections of its own, writes what the fuzz
// input says into the shared memory it can reach: its command and request
// queue slots (forged handles, other contexts' handles, random bumps and
// flags, random control requests), the queue index words, and the head
// and tail words and headers of its own connections' rings.
//
// Invariants: the service (Stack.Step) never panics; the well-behaved
// transfer completes intact within a virtual-time bound and without the
// stacks livelocking (spinning without letting virtual time advance).
// The hostile context's own flows may be torn down, and its own client
// library (appif.Context, which runs in the hostile process) may fail or
// panic: that is not counted.
//
// Failures are tagged so they can be told apart:
//
//	HOSTILE/service-panic    Stack.Step panicked (fastpath or slowpath)
//	HOSTILE/livelock         the stacks kept reporting work, time stood still
//	HOSTILE/victim-stalled   the good transfer did not finish in time
//	HOSTILE/victim-corrupt   the good transfer's bytes differ
//	HOSTILE/victim-closed    the good connection was closed with an error
//	HOSTILE/stack-error      Stack.Err is set
func FuzzHostileApp(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 10})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 {
			data = data[:1024]
		}
		runHostile(t, data)
	})
}

// fuzzIn reads the fuzz input; past its end everything reads as zero.
type fuzzIn struct{ b []byte }

func (r *fuzzIn) empty() bool { return len(r.b) == 0 }

func (r *fuzzIn) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	x := r.b[0]
	r.b = r.b[1:]
	return x
}

func (r *fuzzIn) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }
func (r *fuzzIn) u32() uint32 { return uint32(r.u16()) | uint32(r.u16())<<16 }
func (r *fuzzIn) u64() uint64 { return uint64(r.u32()) | uint64(r.u32())<<32 }

// hostile is the hostile application: a context on stack A driven partly
// through the appif API and partly by raw writes to shared memory.
type hostile struct {
	t      *testing.T
	s      *Stack
	ctx    *appif.Context
	desc   appif.Desc
	evs    []appif.Event
	conns  []appif.Handle
	panics int // of its own client library
	errs   int
	closed map[appif.Handle]bool // EvClosed seen
	// mustAbort: flows whose app-owned ring position (TX head, RX tail)
	// was set out of range and the core told (strict mode checks they
	// end); tainted: flows whose service-owned words or headers were
	// written too, which makes "out of range" ambiguous.
	mustAbort map[appif.Handle]string
	tainted   map[appif.Handle]bool
}

// try runs f as the hostile process's own code: its panics and errors
// are its own business.
func (h *hostile) try(f func() error) {
	defer func() {
		if r := recover(); r != nil {
			h.panics++
		}
	}()
	if err := f(); err != nil {
		h.errs++
	}
}

func (h *hostile) step() bool {
	worked := false
	h.try(func() error {
		n, err := h.ctx.Poll(h.evs)
		if err != nil {
			return err
		}
		worked = n > 0
		for _, ev := range h.evs[:n] {
			switch ev.Type {
			case appif.EvAccepted:
				h.conns = append(h.conns, ev.Conn)
			case appif.EvConnOpened:
				if ev.Err == 0 {
					h.conns = append(h.conns, ev.Conn)
				}
			case appif.EvData:
				h.ctx.RxDone(ev.Conn, ev.N)
			case appif.EvClosed:
				h.closed[ev.Conn] = true
			}
		}
		return nil
	})
	return worked
}

// world is the pair of stacks, the good applications (pa, pb on the
// pair), the hostile context on A and its benign peer on B.
type world struct {
	t      *testing.T
	p      *pair
	h      *hostile
	peer   *app // on B: the hostile context's peer
	end    time.Time
	iters  int
	idle   int // consecutive busy iterations
	victim func() (*appConn, *appConn)
}

// hostileStrict requires the hostile context's flows with out-of-range
// ring positions to be aborted (fastpath.GoneCorrupt).
const hostileStrict = true

const (
	hostileLimit   = 20 * time.Second // virtual
	hostileBusyCap = 2_000_000        // iterations without time advancing
)

func (w *world) serviceStep(s *Stack, name string) (worked bool) {
	defer func() {
		if r := recover(); r != nil {
			w.t.Fatalf("HOSTILE/service-panic: stack %s: %v\n%s", name, r, debug.Stack())
		}
	}()
	return s.Step()
}

// tick does one round; when nothing worked it advances virtual time to
// the next deadline. It reports false once the time limit is reached.
func (w *world) tick() bool {
	p := w.p
	wk := w.serviceStep(p.a, "A")
	wk = w.serviceStep(p.b, "B") || wk
	wk = p.pa.step() || wk
	wk = p.pb.step() || wk
	wk = w.peer.step() || wk
	wk = w.h.step() || wk
	w.iters++
	if wk {
		if w.idle++; w.idle > hostileBusyCap {
			w.t.Fatalf("HOSTILE/livelock: %d iterations without virtual time advancing at t=%v\nA %+v",
				w.idle, p.clock.Now().Sub(p.start), p.a.EngineStats(0))
		}
		return true
	}
	w.idle = 0
	if !p.clock.Now().Before(w.end) {
		return false
	}
	p.advanceToNext(w.end)
	return true
}

func (w *world) runUntil(done func() bool) bool {
	for !done() {
		if !w.tick() {
			return false
		}
	}
	return true
}

// hostileN is the bytes each way on the good connection; hostileLink's
// rate stretches the transfer over some 40 ms of virtual time, so that the
// hostile context's writes land while it runs.
const hostileN = 256 << 10

var hostileLink = impair.Config{Delay: 20 * time.Microsecond, RateBps: 100e6}

func runHostile(t *testing.T, data []byte) {
	// Fuzzing makes thousands of pairs in one process: release what
	// Stack.Stop leaves behind (the mapped region, the contexts' doorbells).
	// Registered first, this runs after newPair's cleanup has stopped both
	// stacks.
	var p *pair
	t.Cleanup(func() {
		if p == nil {
			return
		}
		for _, s := range []*Stack{p.a, p.b} {
			for _, c := range s.sp.ctxs {
				c.info.Bell.Close()
			}
			s.region.Close()
		}
	})
	p = newPair(t, testConfig(ipA), testConfig(ipB), hostileLink, hostileLink)
	w := &world{t: t, p: p, end: p.clock.Now().Add(hostileLimit)}
	p.pa.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = hostileN, true, true }
	p.pb.onConn = func(c *appConn) { c.sendTotal, c.shutdown, c.close = hostileN, true, true }
	hctx, err := p.a.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{t: t, s: p.a, ctx: hctx, evs: make([]appif.Event, 64), closed: map[appif.Handle]bool{},
		mustAbort: map[appif.Handle]string{}, tainted: map[appif.Handle]bool{}}
	w.h = h
	w.peer = newApp(t, p.b)
	w.peer.onConn = func(c *appConn) { c.sendTotal = 64 << 10 }

	p.pa.listen(80)
	w.peer.listen(82)
	h.try(func() error { _, err := hctx.Listen(81, 16); return err })
	if !w.runUntil(func() bool { return p.pa.listened && w.peer.listened }) {
		t.Fatal("listen")
	}
	cookie := p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	w.peer.connect(netip.AddrPortFrom(ipA.Addr(), 81))
	h.try(func() error { _, err := hctx.Connect(netip.AddrPortFrom(ipB.Addr(), 82)); return err })
	if !w.runUntil(func() bool { return len(p.pa.order) == 1 && len(p.pb.order) == 1 && len(h.conns) >= 2 }) {
		t.Fatalf("setup: A %d B %d hostile %d conns; %+v", len(p.pa.order), len(p.pb.order), len(h.conns), p.pb.opened[cookie])
	}
	for _, c := range p.a.sp.ctxs {
		if uint32(c.idx) == hctx.Index() {
			h.desc = c.info.Desc
		}
	}
	if h.desc.CmdSlots == 0 {
		t.Fatal("hostile context not adopted")
	}
	good := p.pa.order[0]

	in := &fuzzIn{b: data}
	for ops := 0; !in.empty() && ops < 128 && w.iters < 100_000; ops++ {
		w.op(in, good)
	}
	ca, cb := p.pa.order[0], p.pb.order[0]
	if !w.runUntil(func() bool { return ca.closed && cb.closed || ca.err != 0 || cb.err != 0 }) {
		t.Fatalf("HOSTILE/victim-stalled: good transfer not done after %v virtual: A got %d sent %d, B got %d sent %d\nA %+v",
			hostileLimit, ca.recvd, ca.sent, cb.recvd, cb.sent, p.a.EngineStats(0))
	}
	if ca.err != 0 || cb.err != 0 {
		t.Fatalf("HOSTILE/victim-closed: A %v B %v", ca.err, cb.err)
	}
	if ca.recvd != hostileN || cb.recvd != hostileN || ca.bad != 0 || cb.bad != 0 ||
		!bytes.Equal(ca.sum.Sum(nil), streamSum(hostileN)) || !bytes.Equal(cb.sum.Sum(nil), streamSum(hostileN)) {
		t.Fatalf("HOSTILE/victim-corrupt: A got %d (bad %d), B got %d (bad %d)", ca.recvd, ca.bad, cb.recvd, cb.bad)
	}
	for _, s := range []*Stack{p.a, p.b} {
		if err := s.Err(); err != nil {
			t.Fatalf("HOSTILE/stack-error: %v", err)
		}
	}
	if hostileStrict {
		// Known engine gap while GoneCorrupt is being implemented: a flow
		// whose app wrote an impossible ring position must be aborted.
		w.end = p.clock.Now().Add(time.Second)
		w.runUntil(func() bool { return false })
		sp := p.a.sp
		for hd, which := range h.mustAbort {
			if h.tainted[hd] || h.closed[hd] {
				continue
			}
			id := hd.Index()
			if x := sp.byID[id]; x != nil && x.handle == hd && x.state == stEstablished {
				t.Fatalf("HOSTILE/own-flow-%s-not-aborted (strict): flow %d: the app set an out-of-range ring position and the core was told; the flow is still established a second later", which, id)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("hostile: %d conns, %d own panics, %d own errors; A %+v", len(h.conns), h.panics, h.errs, p.a.EngineStats(0))
	}
}

// handle picks a handle for a forged command or request.
func (w *world) handle(in *fuzzIn, good *appConn) appif.Handle {
	h := w.h
	sel := in.u8()
	switch sel % 8 {
	case 0:
		if len(h.conns) > 0 {
			return h.conns[int(in.u8())%len(h.conns)]
		}
		return 0
	case 1:
		return good.h // another context's live connection
	case 2:
		return appif.MakeHandle(good.h.Index(), good.h.Gen()+uint32(int8(in.u8()))) // forged generation
	case 3:
		return w.p.pa.listener // another context's listener
	case 4:
		return appif.MakeHandle(uint32(in.u8())%80, in.u32())
	case 5:
		if len(h.conns) > 0 { // own flow, forged generation
			c := h.conns[int(in.u8())%len(h.conns)]
			return appif.MakeHandle(c.Index(), c.Gen()^uint32(in.u8()))
		}
		return 0
	case 6:
		return appif.MakeHandle(in.u32(), in.u32())
	default:
		return appif.Handle(in.u64())
	}
}

// queue is one of the hostile context's queues: offset, slot size, slots.
func (w *world) queue(sel uint8) (off uint64, slot, slots uint32) {
	d := &w.h.desc
	switch sel % 4 {
	case 0:
		return d.CmdOff[0], appif.CmdSlot, d.CmdSlots
	case 1:
		return d.EvOff[0], appif.EvSlot, d.EvSlots
	case 2:
		return d.ReqOff, appif.ReqSlot, d.ReqSlots
	default:
		return d.RespOff, appif.RespSlot, d.RespSlots
	}
}

func (w *world) word(off uint64) uint32 {
	a, err := w.p.a.region.Uint32(off)
	if err != nil {
		w.t.Fatal(err)
	}
	return a.Load()
}

func (w *world) setWord(off uint64, v uint32) {
	a, err := w.p.a.region.Uint32(off)
	if err != nil {
		w.t.Fatal(err)
	}
	a.Store(v)
}

// publish writes msg into the next slot of the queue at off as its
// producer would and advances the producer index, whatever the consumer
// index says.
func (w *world) publish(off uint64, slot, slots uint32, msg []byte) {
	prod := w.word(off + 1*shm.CacheLine)
	b, err := w.p.a.region.Bytes(off+shm.QueueHeaderSize+uint64(prod&(slots-1))*uint64(slot), uint64(slot))
	if err != nil {
		w.t.Fatal(err)
	}
	copy(b, msg)
	w.setWord(off+1*shm.CacheLine, prod+1)
}

// rings returns the hostile flow's RX and TX rings, if it still has them.
func (w *world) rings(hd appif.Handle) (rx, tx appif.Ring, ok bool) {
	sp := w.p.a.sp
	id := hd.Index()
	if id >= uint32(len(sp.byID)) || sp.byID[id] == nil || sp.byID[id].handle != hd {
		return rx, tx, false
	}
	x := sp.byID[id]
	cfg := &w.p.a.cfg
	rx, err1 := appif.OpenRing(w.p.a.region, x.rxOff, cfg.RxBuf)
	tx, err2 := appif.OpenRing(w.p.a.region, x.txOff, cfg.TxBuf)
	return rx, tx, err1 == nil && err2 == nil
}

func (w *world) cmd(hd appif.Handle, tx, rx uint32, fl uint8) {
	var b [appif.CmdSlot]byte
	c := appif.Cmd{Conn: hd, TxBump: tx, RxBump: rx, Flags: fl}
	c.Put(b[:])
	off, slot, slots := w.queue(0)
	w.publish(off, slot, slots, b[:])
}

func (w *world) op(in *fuzzIn, good *appConn) {
	h := w.h
	switch in.u8() % 10 {
	case 0: // forged fast-path command
		hd := w.handle(in, good)
		w.cmd(hd, in.u32(), in.u32(), in.u8())
	case 1: // forged slow-path request
		m := appif.Ctl{Handle: w.handle(in, good), Cookie: in.u64()}
		switch t := in.u8(); t % 6 {
		case 0, 1, 2, 3:
			m.Type = t%6 + 1
		case 4:
			m.Type = in.u8()
		}
		m.LocalPort, m.Backlog, m.Flags = in.u16(), in.u16(), in.u8()
		switch in.u8() % 4 {
		case 0:
			m.RemoteIP = ipB.Addr().As4()
		case 1:
			m.RemoteIP = ipA.Addr().As4() // ourselves
		case 2:
			m.RemoteIP = [4]byte{10, 0, 0, in.u8()}
		default:
			binary.LittleEndian.PutUint32(m.RemoteIP[:], in.u32())
		}
		m.RemotePort = in.u16()
		m.Aux = w.handle(in, good)
		m.RxOff, m.TxOff, m.RxSize, m.TxSize = in.u64(), in.u64(), in.u32(), in.u32()
		var b [appif.ReqSlot]byte
		m.Put(b[:])
		w.publish(h.desc.ReqOff, appif.ReqSlot, h.desc.ReqSlots, b[:])
	case 2: // a ring's head or tail word
		if len(h.conns) == 0 {
			return
		}
		hd := h.conns[int(in.u8())%len(h.conns)]
		rx, tx, ok := w.rings(hd)
		if !ok {
			return
		}
		sel := in.u8()
		r := rx
		if sel&1 != 0 {
			r = tx
		}
		a := r.Head
		if sel&2 != 0 {
			a = r.Tail
		}
		switch (sel >> 2) % 4 {
		case 0:
			a.Store(in.u32())
		case 1:
			a.Add(uint32(int32(int16(in.u16())))) // small step either way
		case 2:
			a.Add(r.Mask + 1 + uint32(in.u8())) // a ring's worth and more
		default:
			a.Add(^uint32(0)) // back by one
		}
		appOwned := sel&3 == 1 || sel&3 == 2 // TX head, RX tail
		if !appOwned {
			h.tainted[hd] = true
		}
		if sel&16 != 0 { // make the core look at it, now
			w.cmd(hd, uint32(in.u8())|uint32(sel&1), uint32(in.u8())|uint32(sel>>1&1), in.u8()&appif.CmdNagle)
			if appOwned && !h.tainted[hd] && !h.closed[hd] {
				if sel&1 != 0 && tx.Head.Load()-tx.Tail.Load() > tx.Mask+1 {
					h.mustAbort[hd] = "tx-head"
				}
				if sel&1 == 0 && rx.Head.Load()-rx.Tail.Load() > rx.Mask+1 {
					h.mustAbort[hd] = "rx-tail"
				}
			}
			w.tick()
		}
	case 3: // a queue's index words
		off, _, _ := w.queue(in.u8())
		word := off + uint64(1+in.u8()%3)*shm.CacheLine // prod, cons, sleeping
		switch in.u8() % 4 {
		case 0:
			w.setWord(word, in.u32())
		case 1:
			w.setWord(word, w.word(word)+uint32(int32(int8(in.u8()))))
		case 2:
			w.setWord(word, w.word(word)+1<<31)
		default:
			w.setWord(word, w.word(word)+uint32(in.u16()))
		}
	case 4: // let the world run
		for n := 1 + 4*int(in.u8()); n > 0; n-- {
			if !w.tick() {
				return
			}
		}
	case 5: // ordinary API calls, some of them misuse
		var hd appif.Handle
		if len(h.conns) > 0 {
			hd = h.conns[int(in.u8())%len(h.conns)]
		}
		switch in.u8() % 6 {
		case 0:
			n := int(in.u16())
			h.try(func() error { _, err := h.ctx.Send(hd, pattern[:n%len(pattern)]); return err })
		case 1:
			h.try(func() error { return h.ctx.Close(hd) })
		case 2:
			h.try(func() error { return h.ctx.Shutdown(hd) })
		case 3:
			h.try(func() error { _, err := h.ctx.Connect(netip.AddrPortFrom(ipB.Addr(), 82)); return err })
		case 4:
			port := in.u16()
			h.try(func() error { _, err := h.ctx.Listen(port, int(in.u8())); return err })
		default:
			n := int(in.u32())
			h.try(func() error { return h.ctx.RxDone(hd, n) })
		}
	case 6: // scribble on a queue slot without publishing it
		off, slot, slots := w.queue(in.u8())
		i := uint64(in.u16() % uint16(slots))
		b, _ := w.p.a.region.Bytes(off+shm.QueueHeaderSize+i*uint64(slot), uint64(slot))
		for j := range b {
			if in.empty() {
				break
			}
			b[j] = in.u8()
		}
	case 7: // scribble on a queue or ring header
		var off uint64
		if sel := in.u8(); sel&1 == 0 || len(h.conns) == 0 {
			off, _, _ = w.queue(sel >> 1)
		} else {
			hd := h.conns[int(sel>>1)%len(h.conns)]
			id := hd.Index()
			sp := w.p.a.sp
			if id >= uint32(len(sp.byID)) || sp.byID[id] == nil {
				return
			}
			off = sp.byID[id].rxOff
			if sel&2 != 0 {
				off = sp.byID[id].txOff
			}
		}
		w.setWord(off+uint64(in.u8()%64)*4, in.u32())
		for _, hd := range h.conns {
			if id := hd.Index(); id < uint32(len(w.p.a.sp.byID)) && w.p.a.sp.byID[id] != nil &&
				(w.p.a.sp.byID[id].rxOff == off || w.p.a.sp.byID[id].txOff == off) {
				h.tainted[hd] = true
			}
		}
	case 8: // fill the TX ring behind the app's back and bump
		if len(h.conns) == 0 {
			return
		}
		hd := h.conns[int(in.u8())%len(h.conns)]
		_, tx, ok := w.rings(hd)
		if !ok {
			return
		}
		n := uint32(in.u16())
		head := tx.Head.Load()
		for i := uint32(0); i < n && i <= tx.Mask; i++ {
			tx.Data[(head+i)&tx.Mask] = byte(i)
		}
		tx.Head.Store(head + n)
		w.cmd(hd, n, 0, in.u8())
	case 9: // a burst of commands: fills the queue, mixes handles
		hd := w.handle(in, good)
		for n := 1 + int(in.u8())*16; n > 0; n-- {
			w.cmd(hd, uint32(n&7), uint32(n&3), uint8(n))
		}
	}
}
