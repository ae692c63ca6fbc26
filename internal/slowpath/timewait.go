package slowpath

import (
	"gotas/internal/fastpath"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// twEntry is a connection in TIME_WAIT: what re-acknowledging a
// retransmitted FIN and judging a new SYN (RFC 6191) need.
type twEntry struct {
	key            fastpath.FlowKey
	sndNxt, rcvNxt tcp.Seq
	rmac           wire.MAC
	expires        uint64
	ownPort        bool
	dead           bool // left sp.tw before expiring; still in the FIFO
	// ts: the connection used timestamps; tsRecent is the peer's last
	// TSval the core accepted (KrxGone), what RFC 6191 compares a new
	// SYN's with, and what our ACKs echo.
	ts       bool
	tsRecent uint32
}

// twISSGap puts the ISS of a connection that replaces a TIME_WAIT one
// this far above the old SND.NXT when the clock-driven ISS is not already
// above it (RFC 1122 4.2.2.13: the new ISS must exceed the old sequence
// space, so old duplicates cannot fall into the new window).
const twISSGap = 1 << 17

// enterTimeWait keeps x's 4-tuple in TIME_WAIT for 2*MSL. At MaxTimeWait
// entries the oldest is dropped early (counted), as an unbounded map would
// let a peer that closes many connections exhaust memory; the oldest has
// the least TIME_WAIT left to protect.
func (sp *slow) enterTimeWait(x *conn, m *fastpath.CtlMsg) {
	if len(sp.tw) >= sp.s.cfg.MaxTimeWait {
		sp.st.twOverflow.Add(1)
		sp.expireTimeWait(^uint64(0), 1)
	}
	now := sp.now()
	t := &twEntry{key: x.key, sndNxt: tcp.Seq(m.SndNxt), rcvNxt: tcp.Seq(m.RcvNxt), rmac: x.rmac,
		expires: now + 2*uint64(sp.s.cfg.MSL), ownPort: x.ownPort, ts: x.ts, tsRecent: x.tsRecent}
	if x.ts && int32(m.TSRecent-x.tsRecent) > 0 {
		t.tsRecent = m.TSRecent
	}
	sp.tw[x.key] = t
	sp.twq = append(sp.twq, t)
	sp.res.timeWait.Add(1)
	sp.armTimer(t.expires)
}

// dropTimeWait ends TIME_WAIT for t (expired, evicted or replaced).
func (sp *slow) dropTimeWait(t *twEntry) {
	delete(sp.tw, t.key)
	t.dead = true
	sp.res.timeWait.Add(-1)
	if t.ownPort {
		sp.releasePort(t.key)
	}
}

// expireTimeWait drops up to limit entries that expire by now, oldest
// first, and returns the next expiry (0: none). Every entry lives 2*MSL,
// so the FIFO is in expiry order and a tick touches only what expires.
func (sp *slow) expireTimeWait(now uint64, limit int) uint64 {
	for sp.twHead < len(sp.twq) {
		t := sp.twq[sp.twHead]
		if !t.dead {
			if limit == 0 || now < t.expires {
				return t.expires
			}
			sp.dropTimeWait(t)
			limit--
		}
		sp.twq[sp.twHead] = nil
		sp.twHead++
		if sp.twHead == len(sp.twq) || sp.twHead >= 64 && sp.twHead*2 >= len(sp.twq) {
			sp.twq = sp.twq[:copy(sp.twq, sp.twq[sp.twHead:])]
			sp.twHead = 0
		}
	}
	return 0
}

// synReplacesTimeWait applies RFC 6191: a SYN may reopen a 4-tuple in
// TIME_WAIT if its timestamp is newer than the last one seen (when both
// connections use timestamps), else if its sequence number is above the
// old RCV.NXT (RFC 1122 4.2.2.13).
func (t *twEntry) synReplaces(seq tcp.Seq, o *wire.TCPOptions) bool {
	if t.ts && o.Has(wire.OptTimestamps) {
		return int32(o.TSVal-t.tsRecent) > 0
	}
	return seq.GreaterThan(t.rcvNxt)
}

// twISS is the ISS for a connection replacing TIME_WAIT entry t.
func (sp *slow) twISS(t *twEntry) tcp.Seq {
	iss := sp.isn(t.key)
	if !iss.GreaterThan(t.sndNxt) {
		iss = t.sndNxt.Add(twISSGap)
	}
	return iss
}
