package slowpath

import (
	"errors"
	"net/netip"
	"time"

	"gotas/internal/appif"
)

// FlowInfo describes one connection, for operators (tasctl stats).
type FlowInfo struct {
	Local, Remote netip.AddrPort
	State         string
	Pid           int32 // the owning application
	// RxFill and TxFill are bytes waiting in the connection's rings:
	// received and not yet read, written and not yet acknowledged.
	RxFill, TxFill uint32
	RxBuf, TxBuf   uint32
	SRTTus         uint32
	RateKbps       uint32
	AckedBytes     uint64
	ECNBytes       uint64
	Retransmits    uint64
	FastRetx, RTOs uint64
}

// AppInfo describes one application's holdings.
type AppInfo struct {
	Pid                  int32
	Flows, Listeners     int
	Contexts             int
	Dying                bool
	MaxFlows, MaxListens int
}

// Snapshot is the slow path's view at one moment.
type Snapshot struct {
	Flows     []FlowInfo
	Apps      []AppInfo
	Listeners []ListenerInfo
	TimeWait  int
}

// ListenerInfo is one listening port.
type ListenerInfo struct {
	Port    uint16
	Pid     int32
	Backlog int
	Pending int
}

// ErrNotRunning means the stack's slow path did not answer: it is not
// started, or stopped.
var ErrNotRunning = errors.New("slowpath: stack not running")

// Snapshot asks the running slow path for its state. It may be called
// from any goroutine; the slow path builds the answer between two
// iterations, so nothing in it is torn.
func (s *Stack) Snapshot(timeout time.Duration) (Snapshot, error) {
	ch := make(chan Snapshot, 1)
	s.mu.Lock()
	s.snapReqs = append(s.snapReqs, ch)
	s.hasNew.Store(true)
	s.mu.Unlock()
	s.slowBell.Ring()
	select {
	case snap := <-ch:
		return snap, nil
	case <-time.After(timeout):
		return Snapshot{}, ErrNotRunning
	}
}

var stateNames = [...]string{stSynSent: "SYN_SENT", stSynRcvd: "SYN_RCVD", stEstablished: "ESTABLISHED",
	stClosing: "CLOSING", stGone: "CLOSED"}

func (sp *slow) snapshot() Snapshot {
	var snap Snapshot
	apps := map[*App]*AppInfo{}
	appOf := func(a *App) *AppInfo {
		if ai := apps[a]; ai != nil {
			return ai
		}
		ai := &AppInfo{Pid: a.Pid, Flows: a.flows, Listeners: a.listeners, Contexts: len(a.ctxs), Dying: a.dying,
			MaxFlows: a.limits.MaxFlows, MaxListens: a.limits.MaxListeners}
		apps[a] = ai
		return ai
	}
	for _, c := range sp.ctxs {
		appOf(c.app)
	}
	for _, a := range sp.dying {
		appOf(a)
	}
	for _, x := range sp.conns {
		snap.Flows = append(snap.Flows, sp.flowInfo(x))
		appOf(x.ctx.app)
	}
	for _, l := range sp.listeners {
		snap.Listeners = append(snap.Listeners, ListenerInfo{Port: l.port, Pid: l.ctx.app.Pid, Backlog: l.backlog, Pending: l.pending})
	}
	for _, ai := range apps {
		snap.Apps = append(snap.Apps, *ai)
	}
	snap.TimeWait = len(sp.tw)
	return snap
}

func (sp *slow) flowInfo(x *conn) FlowInfo {
	cfg := &sp.s.cfg
	fi := FlowInfo{Local: netip.AddrPortFrom(x.key.LocalIP.Addr(), x.key.LocalPort),
		Remote: netip.AddrPortFrom(x.key.RemoteIP.Addr(), x.key.RemotePort), Pid: x.ctx.app.Pid,
		RxBuf: cfg.RxBuf, TxBuf: cfg.TxBuf}
	if int(x.state) < len(stateNames) {
		fi.State = stateNames[x.state]
	}
	if sp.byID[x.id] != x {
		return fi // no flow id, rings or counters (yet)
	}
	a := x.ctx.app
	if rx, err := appif.OpenRing(a.region, x.rxOff, cfg.RxBuf); err == nil {
		fi.RxFill = rx.Head.Load() - rx.Tail.Load()
	}
	if tx, err := appif.OpenRing(a.region, x.txOff, cfg.TxBuf); err == nil {
		fi.TxFill = tx.Head.Load() - tx.Tail.Load()
	}
	ctr := &sp.s.sh.Flows.Counters[x.id]
	fi.SRTTus, fi.RateKbps = ctr.SRTT.Load(), ctr.RateKbps.Load()
	fi.AckedBytes, fi.ECNBytes, fi.Retransmits = ctr.AckedBytes.Load(), ctr.ECNBytes.Load(), ctr.Retransmits.Load()
	fi.FastRetx, fi.RTOs = ctr.FastRetx.Load(), ctr.RTOs.Load()
	return fi
}
