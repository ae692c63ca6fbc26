package appif

import (
	"testing"

	"gotas/internal/shm"
)

// fakeService plays the service's side of one context with one core: it
// posts slow-path messages and fast-path events and reads commands.
type fakeService struct {
	t      *testing.T
	region *shm.Region
	alloc  *shm.Allocator
	ctx    *Context
	resp   *shm.Producer // slow path -> app
	ev     *shm.Producer // core -> app
	cmd    *shm.Consumer // app -> core
}

const fakeSlots = 64

func newFakeService(t *testing.T) *fakeService {
	t.Helper()
	r, err := shm.Create("appif-test", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f := &fakeService{t: t, region: r, alloc: shm.NewAllocator(0, r.Size())}
	queue := func(slot uint32) uint64 {
		off, err := f.alloc.Alloc(shm.QueueSize(slot, fakeSlots), shm.CacheLine)
		if err == nil {
			err = shm.InitQueue(r, off, slot, fakeSlots)
		}
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	d := Desc{CmdSlots: fakeSlots, EvSlots: fakeSlots, ReqSlots: fakeSlots, RespSlots: fakeSlots}
	d.ReqOff, d.RespOff = queue(ReqSlot), queue(RespSlot)
	d.CmdOff, d.EvOff = []uint64{queue(CmdSlot)}, []uint64{queue(EvSlot)}
	descOff, err := f.alloc.Alloc(DescSize, shm.CacheLine)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Bytes(descOff, DescSize)
	d.Put(b)
	var bells [3]*shm.Doorbell
	for i := range bells {
		if bells[i], err = shm.NewDoorbell(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bells[i].Close() })
	}
	if f.ctx, err = Attach(r, descOff, bells[0], bells[1], []*shm.Doorbell{bells[2]}); err != nil {
		t.Fatal(err)
	}
	if f.resp, err = shm.NewProducer(r, d.RespOff, RespSlot, fakeSlots, bells[0]); err != nil {
		t.Fatal(err)
	}
	if f.ev, err = shm.NewProducer(r, d.EvOff[0], EvSlot, fakeSlots, bells[0]); err != nil {
		t.Fatal(err)
	}
	if f.cmd, err = shm.NewConsumer(r, d.CmdOff[0], CmdSlot, fakeSlots, bells[2]); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeService) ring() uint64 {
	off, err := f.alloc.Alloc(shm.RingAreaSize(4096), shm.CacheLine)
	if err == nil {
		err = shm.InitRing(f.region, off, 4096)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return off
}

// open posts CONN_OPENED for h.
func (f *fakeService) open(h Handle, cookie uint64) {
	m := Ctl{Type: MsgConnOpened, Cookie: cookie, Handle: h, RemoteIP: [4]byte{10, 0, 0, 2}, RemotePort: 80,
		RxOff: f.ring(), TxOff: f.ring(), RxSize: 4096, TxSize: 4096}
	f.post(f.resp, m.Put)
}

func (f *fakeService) event(e Ev) { f.post(f.ev, e.Put) }

func (f *fakeService) post(p *shm.Producer, put func([]byte)) {
	if n, err := p.Reserve(1); n != 1 || err != nil {
		f.t.Fatalf("queue full: %v", err)
	}
	put(p.Slot(0))
	p.Commit(1)
}

// poll drains the context's events.
func (f *fakeService) poll() []Event {
	var out []Event
	evs := make([]Event, 16)
	for {
		n, err := f.ctx.Poll(evs)
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		out = append(out, evs[:n]...)
	}
}

// commands drains the command queue.
func (f *fakeService) commands() []Cmd {
	var out []Cmd
	n, _ := f.cmd.Peek(fakeSlots)
	for i := range n {
		var c Cmd
		c.Get(f.cmd.Slot(i))
		out = append(out, c)
	}
	f.cmd.Release(n)
	return out
}

// Events for a connection the application already closed are dropped and
// counted; they used to be stashed forever as if it were yet to open.
func TestEventsAfterCloseAreDropped(t *testing.T) {
	f := newFakeService(t)
	h := MakeHandle(3, 1)
	f.open(h, 1)
	if evs := f.poll(); len(evs) != 1 || evs[0].Type != EvConnOpened || evs[0].Conn != h {
		t.Fatalf("open: %+v", evs)
	}
	if err := f.ctx.Close(h); err != nil {
		t.Fatal(err)
	}
	for range 10 * fakeSlots {
		f.event(Ev{Conn: h, TxBump: 1})
		if evs := f.poll(); len(evs) != 0 {
			t.Fatalf("events for a closed connection: %+v", evs)
		}
	}
	if len(f.ctx.stash) != 0 || f.ctx.nStash != 0 {
		t.Fatalf("%d handles (%d events) stashed for a closed connection", len(f.ctx.stash), f.ctx.nStash)
	}
	if got := f.ctx.StaleEvents(); got != 10*fakeSlots {
		t.Fatalf("StaleEvents %d, want %d", got, 10*fakeSlots)
	}
	// The next connection on the same flow index is not affected.
	h2 := MakeHandle(3, 2)
	f.event(Ev{Conn: h2, TxBump: 5}) // overtakes its open message
	if evs := f.poll(); len(evs) != 0 {
		t.Fatalf("event before open: %+v", evs)
	}
	f.open(h2, 2)
	evs := f.poll()
	if len(evs) != 2 || evs[0].Type != EvConnOpened || evs[1].Type != EvTxSpace || evs[1].Conn != h2 || evs[1].N != 5 {
		t.Fatalf("open after an early event: %+v", evs)
	}
}

// Events for handles that never open are held only up to MaxStash.
func TestStashIsBounded(t *testing.T) {
	f := newFakeService(t)
	const n = 3 * MaxStash
	for i := range n {
		f.event(Ev{Conn: MakeHandle(uint32(i%100), uint32(1+i/100)), TxBump: 1})
		if i%fakeSlots == fakeSlots-1 {
			f.poll()
		}
	}
	f.poll()
	if f.ctx.nStash > MaxStash {
		t.Fatalf("%d events stashed, bound %d", f.ctx.nStash, MaxStash)
	}
	if got := f.ctx.StashDrops(); got != n-MaxStash {
		t.Fatalf("StashDrops %d, want %d", got, n-MaxStash)
	}
	// Opening a newer handle of a flow index drops what older ones held.
	f.open(MakeHandle(5, 1000), 1)
	f.poll()
	for h := range f.ctx.stash {
		if h.Index() == 5 {
			t.Fatalf("events of %x still stashed after a newer handle of its flow opened", h)
		}
	}
}

// SetNagle makes every later command of the flow carry CmdNagle, and only
// of that flow; the newest setting wins when commands are merged.
func TestSetNagleFlagsCommands(t *testing.T) {
	f := newFakeService(t)
	h, other := MakeHandle(1, 1), MakeHandle(2, 1)
	f.open(h, 1)
	f.open(other, 2)
	f.poll()
	if _, err := f.ctx.Send(h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if cs := f.commands(); len(cs) != 1 || cs[0].Flags&CmdNagle != 0 {
		t.Fatalf("default (Nagle off): %+v", cs)
	}
	if err := f.ctx.SetNagle(h, true); err != nil {
		t.Fatal(err)
	}
	f.ctx.Send(h, []byte("y"))
	f.ctx.Send(other, []byte("z"))
	f.ctx.Shutdown(h)
	cs := f.commands()
	if len(cs) != 4 {
		t.Fatalf("commands %+v", cs)
	}
	for _, c := range cs {
		if want := c.Conn == h; (c.Flags&CmdNagle != 0) != want {
			t.Fatalf("command %+v: CmdNagle should be %v", c, want)
		}
	}
	if cs[3].Flags&CmdTxClose == 0 {
		t.Fatalf("shutdown lost TX_CLOSE: %+v", cs[3])
	}
	// Fill the command queue so that commands merge, and turn Nagle off
	// meanwhile: the merged command must say off.
	for range fakeSlots {
		f.ctx.Send(other, []byte("f"))
	}
	f.ctx.Send(h, []byte("a")) // queued as h's pending command, Nagle on
	f.ctx.SetNagle(h, false)   // merged into it
	f.commands()               // the core drains the queue
	f.poll()                   // the pending command goes out
	cs = f.commands()
	if len(cs) != 1 || cs[0].Conn != h || cs[0].Flags&CmdNagle != 0 || cs[0].TxBump != 1 {
		t.Fatalf("merged command %+v, want h's with Nagle off", cs)
	}
	if err := f.ctx.SetNagle(MakeHandle(9, 9), true); err != ErrUnknown {
		t.Fatalf("SetNagle of an unknown handle: %v", err)
	}
}

// Bytes the core placed in the RX ring before the peer's reset are
// delivered even when the slow path's CONN_CLOSED overtakes (or replaces)
// their EvData: they were acknowledged, so losing them loses data.
func TestResetDeliversPlacedBytes(t *testing.T) {
	f := newFakeService(t)
	h := MakeHandle(4, 1)
	rxOff := f.ring()
	m := Ctl{Type: MsgConnOpened, Cookie: 1, Handle: h, RxOff: rxOff, TxOff: f.ring(), RxSize: 4096, TxSize: 4096}
	f.post(f.resp, m.Put)
	f.poll()
	rx, err := OpenRing(f.region, rxOff, 4096)
	if err != nil {
		t.Fatal(err)
	}
	place := func(s string) { // what the core does with in-order data
		head := rx.Head.Load()
		copy(rx.Data[head&rx.Mask:], s)
		rx.Head.Store(head + uint32(len(s)))
	}
	place("hello ")
	f.event(Ev{Conn: h, RxBump: 6})
	place("world") // its event never made it: the core dropped the gone flow's
	closed := Ctl{Type: MsgConnClosed, Handle: h, Status: 104}
	f.post(f.resp, closed.Put)
	// The reset is read first (Poll reads the slow path's queue first),
	// then the stale EvData, which must not deliver anything twice.
	evs := f.poll()
	var got []byte
	var types []EventType
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Type == EvData {
			got = append(append(got, e.Data[0]...), e.Data[1]...)
		}
	}
	if string(got) != "hello world" {
		t.Fatalf("delivered %q, want %q (events %v)", got, "hello world", types)
	}
	if last := evs[len(evs)-1]; last.Type != EvClosed {
		t.Fatalf("last event %v, want EvClosed after the data (events %v)", last.Type, types)
	}
	// A hostile head far beyond what the ring holds delivers nothing.
	h2 := MakeHandle(5, 1)
	rxOff2 := f.ring()
	m2 := Ctl{Type: MsgConnOpened, Cookie: 2, Handle: h2, RxOff: rxOff2, TxOff: f.ring(), RxSize: 4096, TxSize: 4096}
	f.post(f.resp, m2.Put)
	f.poll()
	rx2, _ := OpenRing(f.region, rxOff2, 4096)
	rx2.Head.Store(rx2.Head.Load() + 5000)
	closed2 := Ctl{Type: MsgConnClosed, Handle: h2}
	f.post(f.resp, closed2.Put)
	for _, e := range f.poll() {
		if e.Type == EvData {
			t.Fatalf("EvData of %d bytes from a head beyond the ring", e.N)
		}
	}
}
