package sim

import (
	"fmt"
	"net/netip"

	"gotas/internal/appif"
)

// simPort is the receiver's listening port.
const simPort = 5000

// chunk is how much a sender queues per TxAlloc for an unbounded flow.
const chunk = 1 << 20

// flowState is one Flow's progress.
type flowState struct {
	Flow
	started, opened, shut, done bool
	h                           appif.Handle // sender side
	sent, rcvd                  int64
	fct                         uint64 // ns from Start to the last byte received
	err                         error
}

// app is a host's application: senders open their flows and keep their
// TX rings full; the receiver accepts and consumes.
type app struct {
	n       *Net
	h       *host
	ctx     *appif.Context
	evs     []appif.Event
	cookies map[uint64]int       // connect cookie -> flow
	rx      map[appif.Handle]int // receiver: conn -> flow
	tx      map[appif.Handle]int // sender: conn -> flow
	mine    []int                // sender: its flows
}

func newApp(n *Net, h *host) (*app, error) {
	ctx, err := h.st.NewContext()
	if err != nil {
		return nil, err
	}
	a := &app{n: n, h: h, ctx: ctx, evs: make([]appif.Event, 64), cookies: map[uint64]int{},
		rx: map[appif.Handle]int{}, tx: map[appif.Handle]int{}}
	return a, nil
}

// step polls the app's events and feeds its connections.
func (a *app) step(flows []flowState, ports map[netip.AddrPort]int) (bool, error) {
	k, err := a.ctx.Poll(a.evs)
	if err != nil {
		return false, err
	}
	for i := range a.evs[:k] {
		if err := a.event(&a.evs[i], flows, ports); err != nil {
			return false, err
		}
	}
	worked := k > 0
	for _, i := range a.mine {
		w, err := a.feed(&flows[i])
		if err != nil {
			return false, err
		}
		worked = worked || w
	}
	return worked, nil
}

func (a *app) event(ev *appif.Event, flows []flowState, ports map[netip.AddrPort]int) error {
	switch ev.Type {
	case appif.EvListenOpened:
		if ev.Err != 0 {
			return fmt.Errorf("sim: listen: %v", ev.Err)
		}
	case appif.EvConnOpened:
		i, ok := a.cookies[ev.Cookie]
		if !ok {
			return nil
		}
		if ev.Err != 0 {
			flows[i].err = fmt.Errorf("sim: flow %d: connect: %v", i, ev.Err)
			flows[i].done = true
			return nil
		}
		flows[i].h, flows[i].opened = ev.Conn, true
		a.tx[ev.Conn] = i
		if info, ok := a.h.st.ConnInfo(ev.Conn); ok {
			ports[netip.AddrPortFrom(a.h.ip, info.LocalPort)] = i
		}
	case appif.EvAccepted:
		if i, ok := ports[ev.Remote]; ok {
			a.rx[ev.Conn] = i
		}
	case appif.EvData:
		return a.data(ev, flows)
	case appif.EvRxClosed:
		// The receiver has every byte: release the connection (the
		// sender sees a reset, after its data).
		if _, ok := a.rx[ev.Conn]; ok {
			delete(a.rx, ev.Conn)
			_ = a.ctx.Close(ev.Conn)
		}
	case appif.EvClosed:
		delete(a.tx, ev.Conn)
		delete(a.rx, ev.Conn)
		_ = a.ctx.Close(ev.Conn)
	}
	return nil
}

// data counts bytes the receiver got and marks a flow done at its size.
func (a *app) data(ev *appif.Event, flows []flowState) error {
	if i, ok := a.rx[ev.Conn]; ok {
		f := &flows[i]
		f.rcvd += int64(ev.N)
		if f.Size > 0 && f.rcvd >= f.Size && !f.done {
			f.done = true
			f.fct = uint64(a.n.elapsed() - f.Start)
		}
	}
	return a.ctx.RxDone(ev.Conn, ev.N)
}

// feed starts a due flow and keeps an open one's TX ring full.
func (a *app) feed(f *flowState) (bool, error) {
	now := a.n.elapsed()
	switch {
	case f.done || f.shut:
		return false, nil
	case !f.started:
		if now < f.Start {
			return false, nil
		}
		f.started = true
		c, err := a.ctx.Connect(netip.AddrPortFrom(a.n.hosts[a.n.cfg.Senders].ip, simPort))
		a.cookies[c] = a.flowIndex(f)
		return true, err
	case !f.opened:
		return false, nil
	}
	if f.Stop > 0 && now >= f.Stop || f.Size > 0 && f.sent >= f.Size {
		f.shut = true
		return true, a.ctx.Shutdown(f.h)
	}
	want := chunk
	if f.Size > 0 {
		want = int(min(f.Size-f.sent, chunk))
	}
	x, y, err := a.ctx.TxAlloc(f.h, want)
	if err != nil || len(x)+len(y) == 0 {
		return false, err
	}
	f.sent += int64(len(x) + len(y))
	return true, a.ctx.TxSend(f.h, len(x)+len(y))
}

// flowIndex finds f among the net's flows.
func (a *app) flowIndex(f *flowState) int {
	for _, i := range a.mine {
		if &a.n.flows[i] == f {
			return i
		}
	}
	return -1
}
