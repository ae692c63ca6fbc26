package slowpath

import (
	"testing"
	"time"

	"gotas/internal/wire"
)

// timeWait opens a connection from sport, lets the stack close first and
// leaves the 4-tuple in TIME_WAIT on the stack. It returns the peer's
// RCV.NXT (the stack's SND.NXT) and SND.NXT.
func (r *rawPeer) timeWait(sport uint16, iss uint32, ts bool) (uint32, uint32) {
	r.t.Helper()
	r.app.onConn = func(c *appConn) { c.shutdown, c.close = true, true }
	o := synOpts(1460, 5)
	if !ts {
		o.Present &^= wire.OptTimestamps
	}
	sa := r.handshake(sport, iss, o)
	var fin *parsed
	for _, p := range tcpOut(r.t, r.take()) {
		if p.tcp.Flags()&wire.TCPFlagFIN != 0 {
			fin = &p
		}
	}
	if fin == nil {
		r.t.Fatal("stack did not close")
	}
	theirs := sa.tcp.SeqNum() + 2
	var fo *wire.TCPOptions
	if ts {
		fo = &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: 7, TSEcr: fin.opts.TSVal}
	}
	r.inject(r.frame(seg{sport: sport, dport: 80, seq: iss + 1, ack: theirs, flags: wire.TCPFlagFIN | wire.TCPFlagACK,
		win: 502, opts: fo}))
	r.take()
	if res := r.s.Resources(); res.TimeWait == 0 {
		r.t.Fatalf("no TIME_WAIT: %+v", res)
	}
	return theirs, iss + 2
}

func TestTimeWaitReopenedBySyn(t *testing.T) {
	for _, ts := range []bool{true, false} {
		r := newRaw(t, testConfig(ipA), nil)
		r.listen(80, 16)
		sndNxt, rcvNxt := r.timeWait(40000, 1000, ts)
		// TSval 6: newer than the old connection's handshake (5), older
		// than its last segment (the FIN's 7), which the core reported.
		o := synOpts(1460, 6)
		stale := rcvNxt - 1
		if !ts {
			o = nil
		}
		r.inject(r.frame(seg{sport: 40000, dport: 80, seq: stale, flags: wire.TCPFlagSYN, win: 64240, opts: o}))
		out := tcpOut(t, r.take())
		if len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagACK || out[0].tcp.AckNum() != rcvNxt || out[0].tcp.SeqNum() != sndNxt {
			t.Fatalf("ts=%v: old SYN answered with %d segments (%v), want the TIME_WAIT ACK", ts, len(out), out)
		}
		if ts && (!out[0].opts.Has(wire.OptTimestamps) || out[0].opts.TSEcr != 7) {
			t.Fatalf("TIME_WAIT ACK options %+v, want a timestamp echoing the FIN's TSval 7", out[0].opts)
		}
		// A new incarnation: a newer timestamp, or (without timestamps) a
		// sequence number above the old RCV.NXT.
		o = synOpts(1460, 100_000)
		if !ts {
			o = nil
		}
		r.inject(r.frame(seg{sport: 40000, dport: 80, seq: rcvNxt + 100, flags: wire.TCPFlagSYN, win: 64240, opts: o}))
		out = tcpOut(t, r.take())
		if len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK || out[0].tcp.AckNum() != rcvNxt+101 {
			t.Fatalf("ts=%v: new SYN answered with %v, want a SYN-ACK", ts, out)
		}
		if iss := out[0].tcp.SeqNum(); int32(iss-sndNxt) <= 0 {
			t.Fatalf("ts=%v: new ISS %d not above the old SND.NXT %d", ts, iss, sndNxt)
		}
		if res, st := r.s.Resources(), r.s.Stats(); res.TimeWait != 0 || st.TimeWaitReplaced != 1 {
			t.Fatalf("ts=%v: %+v, replaced %d", ts, res, st.TimeWaitReplaced)
		}
		// Completing the handshake gives the application the new connection.
		r.inject(r.frame(seg{sport: 40000, dport: 80, seq: rcvNxt + 101, ack: out[0].tcp.SeqNum() + 1,
			flags: wire.TCPFlagACK, win: 502}))
		if len(r.app.order) != 2 {
			t.Fatalf("ts=%v: %d connections accepted, want 2", ts, len(r.app.order))
		}
	}
}

func TestTimeWaitBounded(t *testing.T) {
	cfg := testConfig(ipA)
	cfg.MaxTimeWait = 3
	r := newRaw(t, cfg, nil)
	r.listen(80, 16)
	for i := range 5 {
		r.timeWait(uint16(40000+i), 1000, true)
	}
	if res, st := r.s.Resources(), r.s.Stats(); res.TimeWait != 3 || st.TimeWaitOverflow != 2 || len(r.s.sp.tw) != 3 {
		t.Fatalf("%+v, overflow %d", res, st.TimeWaitOverflow)
	}
	// The oldest went first.
	for i, want := range []bool{false, false, true, true, true} {
		k := r.s.sp.tw
		found := false
		for key := range k {
			found = found || key.RemotePort == uint16(40000+i)
		}
		if found != want {
			t.Fatalf("port %d in TIME_WAIT: %v, want %v", 40000+i, found, want)
		}
	}
	r.advance(2*cfg.MSL + time.Millisecond)
	if res := r.s.Resources(); res.TimeWait != 0 || res.Flows != 0 || len(r.s.sp.twq) != 0 {
		t.Fatalf("after 2*MSL: %+v, FIFO %d", res, len(r.s.sp.twq)-r.s.sp.twHead)
	}
}
