package slowpath

import (
	"encoding/binary"

	"gotas/internal/fastpath"
	"gotas/internal/tcp"
	"gotas/internal/wire"
)

// SYN cookies (RFC 4987 3.6), laid out as Linux's (net/ipv4/syncookies.c):
//
//	ISN = H(k, 0) + peer ISN + count<<24 + (H(k, count) + MSS index) mod 2^24
//
// with count a coarse clock and H a keyed hash of the 4-tuple. With
// timestamps, the low 6 bits of our TSval carry the peer's window scale
// (0xf: none), SACK-permitted and ECN, and come back in its TSecr.
const (
	cookieBits = 24 // Linux COOKIEBITS
	cookieMask = 1<<cookieBits - 1
	// cookiePeriod is the time counter's tick (Linux: 60 s in jiffies).
	cookiePeriod = 64_000_000_000
	// cookieMaxAge: a cookie is valid for ACKs this many ticks after it
	// was sent, 2-3 minutes (Linux MAX_SYNCOOKIE_AGE).
	cookieMaxAge = 2
	// cookieValid: ACKs are checked as cookies only this long after the
	// listener last sent one (Linux TCP_SYNCOOKIE_VALID: 2 minutes), so
	// blind ACKs cannot open connections on a listener that is not
	// flooded.
	cookieValid = 120_000_000_000

	tsOptWScale = 0xf // TSval bits: the peer's window scale, 0xf for none
	tsOptSACK   = 1 << 4
	tsOptECN    = 1 << 5
	tsOptMask   = 1<<6 - 1
)

// cookieMSS is Linux's msstab: the MSS values a cookie can encode.
var cookieMSS = [4]uint16{536, 1300, 1440, 1460}

// cookieHash is H(k, count) of the cookie layout; tag separates H(k, 0)
// from the counted hash.
func (sp *slow) cookieHash(k *fastpath.FlowKey, count uint32, tag uint64) uint32 {
	be := binary.BigEndian
	m0 := uint64(be.Uint32(k.RemoteIP[:]))<<32 | uint64(be.Uint32(k.LocalIP[:]))
	m1 := uint64(k.RemotePort)<<48 | uint64(k.LocalPort)<<32 | uint64(count&0x7fffffff)<<1 | tag
	return uint32(sipHash128(sp.cookieKey[0], sp.cookieKey[1], m0, m1))
}

func (sp *slow) cookieCount() uint32 { return uint32(sp.now() / cookiePeriod) }

// cookieISN encodes a cookie for the SYN with sequence number irs.
func (sp *slow) cookieISN(k *fastpath.FlowKey, irs tcp.Seq, mssIdx uint32) tcp.Seq {
	c := sp.cookieCount()
	v := sp.cookieHash(k, 0, 1) + uint32(irs) + c<<cookieBits + (sp.cookieHash(k, c, 0)+mssIdx)&cookieMask
	return tcp.Seq(v)
}

// checkCookie validates iss (our ISN, the ACK's ack-1) against the peer's
// irs and returns the MSS index it encodes.
func (sp *slow) checkCookie(k *fastpath.FlowKey, irs, iss tcp.Seq) (uint32, bool) {
	v := uint32(iss) - sp.cookieHash(k, 0, 1) - uint32(irs)
	now := sp.cookieCount()
	age := (now - v>>cookieBits) & (0xffffffff >> cookieBits)
	if age >= cookieMaxAge {
		return 0, false
	}
	idx := (v - sp.cookieHash(k, now-age, 0)) & cookieMask
	return idx, idx < uint32(len(cookieMSS))
}

// cookieMSSIndex is the largest msstab entry not above mss (Linux's
// choice, which also rounds an MSS below 536 up to it).
func cookieMSSIndex(mss uint16) uint32 {
	i := uint32(len(cookieMSS) - 1)
	for ; i > 0 && cookieMSS[i] > mss; i-- {
	}
	return i
}

// cookieTSval puts x's options into the low bits of our TSval, keeping it
// at or below the clock (Linux cookie_init_timestamp).
func (sp *slow) cookieTSval(x *conn) uint32 {
	bits := uint32(tsOptWScale)
	if x.ws {
		bits = uint32(x.sndShift)
	}
	if x.sack {
		bits |= tsOptSACK
	}
	if x.ecn {
		bits |= tsOptECN
	}
	now := tcp.TSClock(sp.now())
	ts := now&^tsOptMask | bits
	if int32(ts-now) > 0 {
		ts -= tsOptMask + 1
	}
	return ts
}

// sendCookie answers a SYN with a cookie SYN-ACK and keeps no state.
// Without timestamps a cookie carries only the MSS, so the SYN-ACK offers
// no other option (as Linux does).
func (sp *slow) sendCookie(smac wire.MAC, k fastpath.FlowKey, seq tcp.Seq, fl wire.TCPFlags, o *wire.TCPOptions) {
	cfg := &sp.s.cfg
	x := conn{key: k, irs: seq, rmac: smac}
	x.negotiate(o, cfg)
	x.ecn = !cfg.NoECN && fl&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE|wire.TCPFlagCWR
	if !x.ts {
		x.sack, x.ws, x.ecn = false, false, false
	}
	x.iss = sp.cookieISN(&k, seq, cookieMSSIndex(x.peerMSS))
	var so wire.TCPOptions
	sp.synOptions(&x, &so, true, x.tsRecent)
	if x.ts {
		so.TSVal = sp.cookieTSval(&x)
	}
	sfl := wire.TCPFlagSYN | wire.TCPFlagACK
	if x.ecn {
		sfl |= wire.TCPFlagECE
	}
	sp.sendSeg(smac, k, x.iss, seq.Add(1), sfl, sp.synWindow(), &so, 0)
	sp.st.cookiesSent.Add(1)
}

// cookieAck opens a connection from an ACK for no connection whose ack-1
// is a valid cookie of listener l; false if it is not one (the caller
// resets). The options come from the cookie: the MSS from its index, the
// rest from the TSecr bits, none without timestamps.
func (sp *slow) cookieAck(l *listener, smac wire.MAC, k fastpath.FlowKey, frame []byte, seg wire.TCP, o *wire.TCPOptions) bool {
	if l.lastOverflow == 0 || sp.now()-l.lastOverflow > cookieValid {
		return false
	}
	seq, ack := tcp.Seq(seg.SeqNum()), tcp.Seq(seg.AckNum())
	irs, iss := seq.Add(^uint32(0)), ack.Add(^uint32(0)) // minus 1
	idx, ok := sp.checkCookie(&k, irs, iss)
	if !ok {
		sp.st.cookiesBad.Add(1)
		return false
	}
	x := &conn{key: k, state: stSynRcvd, ctx: l.ctx, irs: irs, iss: iss, rmac: smac, peerMSS: cookieMSS[idx],
		ccAlg: l.ccAlg}
	if !sp.cookieOptions(o, x) {
		sp.st.cookiesBad.Add(1)
		return false
	}
	if sp.allocFlow(x) != 0 {
		sp.st.acceptNoMem.Add(1)
		sp.rstConn(x)
		return true
	}
	sp.st.cookiesOK.Add(1)
	x.peerWnd = tcp.DecodeWindow(seg.Window(), x.sndShift)
	sp.conns[k] = x
	sp.res.conns.Add(1)
	sp.accept(x, l, frame, seg, seg.Flags(), 0) // no RTT sample: the SYN-ACK's time is not kept
	return true
}

// cookieOptions decodes the options a cookie ACK's TSecr carries into x;
// false if they are impossible (a window scale above 14).
func (sp *slow) cookieOptions(o *wire.TCPOptions, x *conn) bool {
	cfg := &sp.s.cfg
	if cfg.NoTimestamps || !o.Has(wire.OptTimestamps) {
		return true
	}
	bits := o.TSEcr & tsOptMask
	x.ts, x.tsRecent = true, o.TSVal
	x.sack = !cfg.NoSACK && bits&tsOptSACK != 0
	x.ecn = !cfg.NoECN && bits&tsOptECN != 0
	if ws := uint8(bits & tsOptWScale); ws != tsOptWScale && !cfg.NoWindowScale {
		if ws > tcp.MaxWindowShift {
			return false
		}
		x.ws, x.sndShift, x.rcvShift = true, ws, tcp.WindowShiftFor(cfg.RxBuf)
	}
	return true
}
