package fastpath

// Segment-level regression tests for the rules commit 0fa0672 fixed, one
// test function per RFC section (or engine rule), each driving the
// packetimpact-style harness of segment_test.go and checking the reply
// frames field by field and the flow state afterwards.
//
// The tests use only the harness API, flow fields and methods that
// existed before that commit, and read EngineStats counters by name
// (statOf), so this file also compiles against the code before the
// fixes: a counter that did not exist yet is skipped, and the behaviour
// checks decide.

import (
	"encoding/binary"

	"reflect"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/nic"
	"gotas/internal/wire"
)

// statOf reads an EngineStats counter by name; false if there is none.
func (h *segHarness) statOf(name string) (uint64, bool) {
	v := reflect.ValueOf(h.eng.Stats()).FieldByName(name)
	if !v.IsValid() {
		return 0, false
	}
	return v.Uint(), true
}

// wantStat checks a counter, if the engine has it.
func (h *segHarness) wantStat(name string, want uint64) {
	h.t.Helper()
	got, ok := h.statOf(name)
	if !ok {
		h.t.Logf("no EngineStats.%s: counter not checked", name)
		return
	}
	if got != want {
		h.t.Errorf("EngineStats.%s = %d, want %d", name, got, want)
	}
}

// noneSent fails if the engine sent anything.
func noneSent(t testing.TB, what string, out []segOut) {
	t.Helper()
	if len(out) != 0 {
		t.Fatalf("%s: engine sent %d segments, want none: %+v", what, len(out), out)
	}
}

// data is an in-order-numbered data segment at relative seq.
func dataSeg(seq uint32, p []byte) segSpec {
	return segSpec{Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Seq: seq, Window: 0xffff, Payload: p}
}

// otherFlowFrame is s as a frame of a connection the engine does not
// have (the peer's port differs).
func (h *segHarness) otherFlowFrame(s segSpec) []byte {
	fr := h.frame(&s)
	seg := fr[wire.EthernetHeaderLen+wire.IPv4MinHeaderLen+len(s.IPOpts):]
	binary.BigEndian.PutUint16(seg[0:], segPeerPort+1)
	wire.SetTCPChecksum(segPeerIP, segLocalIP, seg)
	return fr
}

// ktxFrame sends a slow-path message that carries a frame.
func (h *segHarness) ktxFrame(typ uint8, fr []byte) {
	if n, _ := h.ktx.Reserve(1); n != 1 {
		h.t.Fatal("KTX queue full")
	}
	s := h.ktx.Slot(0)
	m := CtlMsg{Type: typ, Len: uint16(copy(s[CtlHeader:], fr))}
	m.Put(s)
	h.ktx.Commit(1)
}

// fireNext moves the clock to the engine's next deadlines until an
// iteration sends something or the flow goes (a deadline beyond the timer
// wheel's span comes up early and is parked again), and returns what was
// sent.
func (h *segHarness) fireNext() []segOut {
	h.t.Helper()
	for range 10_000 {
		d, ok := h.eng.NextDeadline()
		if !ok {
			h.t.Fatal("no timer armed")
		}
		h.now = max(h.now, d) + 50_000 // one timer-wheel tick
		if out := h.poll(); len(out) > 0 || !h.alive() {
			return out
		}
	}
	h.t.Fatal("timers fire without sending anything")
	return nil
}

// wantGone checks that the KRX queue holds exactly one KrxGone for the
// flow, for reason, and that the flow is unpublished.
func (h *segHarness) wantGone(reason uint8) {
	h.t.Helper()
	ms := h.krx()
	if len(ms) != 1 || ms[0].Type != KrxGone || ms[0].Reason != reason || ms[0].ID != segFlowID ||
		ms[0].Handle != uint64(h.handle) {
		h.t.Fatalf("KRX %+v, want one KrxGone reason %d for flow %d", ms, reason, segFlowID)
	}
	if h.alive() {
		h.t.Fatal("flow alive after KrxGone")
	}
	if p := h.sh.Flows.pub[segFlowID].Load(); p != 0 {
		h.t.Fatalf("pub[%d] = %#x after the flow left, want 0", segFlowID, p)
	}
}

// noFramePunted fails if the KRX queue holds a punted frame.
func (h *segHarness) noFramePunted(what string) {
	h.t.Helper()
	for _, m := range h.krx() {
		if m.Type == KrxFrame {
			h.t.Fatalf("%s: frame punted to the slow path (reason %d)", what, m.Reason)
		}
	}
}

// TestRFC9293MSSClamp: the peer's MSS is raised to minSndMSS (Linux
// tcp_min_snd_mss) and lowered so a segment with its options fits
// nic.MaxFrame; a 10 KB write then goes out in segments of that size.
func TestRFC9293MSSClamp(t *testing.T) {
	most := uint16(nic.MaxFrame - 14 - 40)
	for _, tc := range []struct {
		name string
		mss  uint16
		ts   bool
		want uint16
	}{
		{"mss-1-ts", 1, true, 48},
		{"mss-1", 1, false, 48},
		{"mss-65535-ts", 65535, true, most - 12},
		{"mss-65535", 65535, false, most},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{MSS: tc.mss, TS: tc.ts})
			if h.mss() != tc.want {
				t.Fatalf("flow mss %d, want %d", h.mss(), tc.want)
			}
			data := segPayload(10240, 1)
			out := h.appWrite(data) // parse fails any frame above nic.MaxFrame
			if len(out) == 0 {
				t.Fatal("a 10 KB write sent nothing")
			}
			off := 0
			for i, s := range out {
				want := min(int(tc.want), len(data)-off)
				h.wantSeg("data segment", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(off), 0, want)
				if string(s.Payload) != string(data[off:off+want]) {
					t.Fatalf("segment %d payload differs", i)
				}
				off += want
			}
			if want := min(len(data), 10*int(tc.want)); off != want { // the initial cwnd is 10 MSS
				t.Errorf("%d bytes sent, want %d", off, want)
			}
		})
	}
}

// TestRFC6093UrgentInline: URG data at rcv_nxt is delivered inline, not
// punted.
func TestRFC6093UrgentInline(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 1000})
	data := segPayload(100, 4)
	s := dataSeg(0, data)
	s.Flags |= wire.TCPFlagURG
	s.Urgent = 10
	a := onlyOne(t, "URG data", h.send(s))
	h.wantSeg("ACK of URG data", a, wire.TCPFlagACK, 0, 100, 0)
	if h.rcvNxt() != h.o.IRS.Add(101) || h.rx.Head.Load() != 100 {
		t.Fatalf("rcv_nxt %d RX head %d, want %d and 100", h.rcvNxt(), h.rx.Head.Load(), h.o.IRS.Add(101))
	}
	if got, _ := h.appRead(); string(got) != string(data) {
		t.Fatal("URG payload not delivered as is")
	}
	h.noFramePunted("URG data")
	h.wantStat("RxUrgent", 1)
}

// TestRFC791IPOptionsInline: a segment whose IPv4 header carries options
// is processed by the core; the reply has none.
func TestRFC791IPOptionsInline(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 1000})
	data := segPayload(200, 8)
	s := dataSeg(0, data)
	s.IPOpts = []byte{0x94, 0x04, 0, 0}                // router alert (RFC 2113)
	a := onlyOne(t, "data with IP options", h.send(s)) // parse rejects IP options on replies
	h.wantSeg("ACK", a, wire.TCPFlagACK, 0, 200, 0)
	if h.rcvNxt() != h.o.IRS.Add(201) || h.rx.Head.Load() != 200 {
		t.Fatalf("rcv_nxt %d RX head %d", h.rcvNxt(), h.rx.Head.Load())
	}
	if got, _ := h.appRead(); string(got) != string(data) {
		t.Fatal("payload after IP options differs")
	}
	h.noFramePunted("IP options")
	h.wantStat("RxIPOptions", 1)
}

// TestInjectedFrameNotRepunted: a frame the slow path injects (KtxInject)
// that the core cannot take is dropped and counted, never punted back.
func TestInjectedFrameNotRepunted(t *testing.T) {
	h := newSegHarness(t, segOpts{})
	h.ktxFrame(KtxInject, h.otherFlowFrame(dataSeg(0, segPayload(10, 0))))
	noneSent(t, "injected frame of no flow", h.poll())
	if ms := h.krx(); len(ms) != 0 {
		t.Fatalf("injected frame came back: KRX %+v", ms)
	}
	h.wantStat("InjectDropped", 1)
	if st := h.stats(); st.Punted[PuntNoFlow] != 0 {
		t.Errorf("Punted[PuntNoFlow] = %d, want 0", st.Punted[PuntNoFlow])
	}
	// The same frame received from the wire is the slow path's.
	noneSent(t, "frame of no flow", h.sendFrame(h.otherFlowFrame(dataSeg(0, segPayload(10, 0)))))
	if ms := h.krx(); len(ms) != 1 || ms[0].Type != KrxFrame || ms[0].Reason != PuntNoFlow {
		t.Fatalf("KRX %+v, want the received frame punted (PuntNoFlow)", ms)
	}
}

// TestRFC9293SegmentAcceptability: RFC 9293 3.10.7.4, first check.
func TestRFC9293SegmentAcceptability(t *testing.T) {
	t.Run("beyond-window-rate-limited", func(t *testing.T) {
		h := newSegHarness(t, segOpts{IRS: 5})
		s := dataSeg(h.o.AdvWindow+1000, segPayload(100, 1))
		h.wantSeg("beyond the window", onlyOne(t, "beyond the window", h.send(s)), wire.TCPFlagACK, 0, 0, 0)
		h.advance(100 * time.Millisecond)
		noneSent(t, "second unacceptable segment within 500 ms", h.send(s))
		h.wantStat("AcksRateLimited", 1)
		h.wantStat("RxOutOfWindow", 2)
		h.advance(450 * time.Millisecond)
		h.wantSeg("after 500 ms", onlyOne(t, "after 500 ms", h.send(s)), wire.TCPFlagACK, 0, 0, 0)
		if h.rcvNxt() != h.o.IRS.Add(1) || h.rx.Head.Load() != 0 || len(h.events()) != 0 {
			t.Fatalf("rcv_nxt %d RX head %d: unacceptable data taken", h.rcvNxt(), h.rx.Head.Load())
		}
	})
	t.Run("out-of-window-ack-keeps-send-window", func(t *testing.T) {
		h := newSegHarness(t, segOpts{MSS: 1000})
		s := segSpec{Flags: wire.TCPFlagACK, Seq: 3 * h.o.AdvWindow, Window: 0}
		h.wantSeg("out-of-window ACK", onlyOne(t, "out-of-window ACK", h.send(s)), wire.TCPFlagACK, 0, 0, 0)
		if h.sndWnd() != 65535 {
			t.Fatalf("snd_wnd %d after an unacceptable ACK with window 0, want 65535", h.sndWnd())
		}
		out := h.appWrite(segPayload(1000, 2))
		h.wantSeg("data after it", onlyOne(t, "data after it", out), wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 1000)
	})
	t.Run("old-data-dup-ack-every-time", func(t *testing.T) {
		h := newSegHarness(t, segOpts{IRS: 1 << 31})
		h.wantSeg("data", onlyOne(t, "data", h.send(dataSeg(0, segPayload(300, 3)))), wire.TCPFlagACK, 0, 300, 0)
		for range 3 {
			a := onlyOne(t, "old data", h.send(dataSeg(0, segPayload(100, 3))))
			h.wantSeg("duplicate ACK", a, wire.TCPFlagACK, 0, 300, 0)
			h.advance(time.Millisecond)
		}
		if st := h.stats(); st.RxDupData != 3 {
			t.Errorf("RxDupData %d, want 3", st.RxDupData)
		}
		h.wantStat("AcksRateLimited", 0)
		if h.rcvNxt() != h.o.IRS.Add(301) || h.rx.Head.Load() != 300 {
			t.Fatalf("rcv_nxt %d RX head %d", h.rcvNxt(), h.rx.Head.Load())
		}
	})
	t.Run("zero-window-probe", func(t *testing.T) {
		h := newSegHarness(t, segOpts{RxSize: 4096, AdvWindow: 4096, MSS: 1460})
		for off := uint32(0); off < 4096; off += 1460 {
			h.send(dataSeg(off, segPayload(int(min(1460, 4096-off)), 5)))
		}
		if h.rcvNxt() != h.o.IRS.Add(4097) {
			t.Fatalf("rcv_nxt %d after filling the ring", h.rcvNxt())
		}
		h.events()
		for i := range 3 {
			a := onlyOne(t, "zero-window probe", h.send(dataSeg(4096, []byte{0xee})))
			h.wantSeg("probe ACK", a, wire.TCPFlagACK, 0, 4096, 0)
			if a.Window != 0 {
				t.Errorf("probe %d answered with window %d, want 0", i, a.Window)
			}
		}
		if h.rcvNxt() != h.o.IRS.Add(4097) || h.rx.Head.Load() != 4096 || len(h.events()) != 0 {
			t.Fatalf("rcv_nxt %d RX head %d: probe byte written", h.rcvNxt(), h.rx.Head.Load())
		}
	})
}

// TestRFC5961AckRange: RFC 5961 5.2, the ACK must lie in
// [SND.UNA - MAX.SND.WND, SND.NXT]; outside it the segment is dropped
// (its data too) and answered with a challenge ACK.
func TestRFC5961AckRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		ack  uint32 // relative to ISS+1
	}{
		{"ack-above-snd-max", 1},
		{"ack-below-max-snd-wnd", 1<<32 - (65535 + 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{ISS: 1 << 20, IRS: 9})
			s := dataSeg(0, segPayload(100, 6))
			s.Ack = tc.ack
			a := onlyOne(t, "bad ACK", h.send(s))
			h.wantSeg("challenge ACK", a, wire.TCPFlagACK, 0, 0, 0)
			if h.rcvNxt() != h.o.IRS.Add(1) || h.rx.Head.Load() != 0 || len(h.events()) != 0 {
				t.Fatalf("rcv_nxt %d RX head %d: data of a bad-ACK segment taken", h.rcvNxt(), h.rx.Head.Load())
			}
			if h.sndUna() != h.o.ISS.Add(1) || h.sndWnd() != 65535 || !h.alive() {
				t.Fatalf("snd_una %d snd_wnd %d alive %v", h.sndUna(), h.sndWnd(), h.alive())
			}
			h.wantStat("RxBadAck", 1)
		})
	}
	t.Run("old-ack-in-range-data-taken", func(t *testing.T) {
		h := newSegHarness(t, segOpts{MSS: 1000})
		h.appWrite(segPayload(1000, 1))
		h.send(h.peerAck())
		if h.sndUna() != h.o.ISS.Add(1001) {
			t.Fatalf("snd_una %d", h.sndUna())
		}
		s := dataSeg(0, segPayload(100, 7))
		s.Ack = 500
		a := onlyOne(t, "data with an old ACK", h.send(s))
		h.wantSeg("ACK", a, wire.TCPFlagACK, 1000, 100, 0)
		if h.rcvNxt() != h.o.IRS.Add(101) || h.sndUna() != h.o.ISS.Add(1001) {
			t.Fatalf("rcv_nxt %d snd_una %d", h.rcvNxt(), h.sndUna())
		}
	})
}

// TestRFC5961RSTAndSYN: RFC 5961 3.2 (a RST in the window but not at
// rcv_nxt) and 4 (a SYN on an established flow) get a challenge ACK.
func TestRFC5961RSTAndSYN(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    segSpec
	}{
		{"rst-in-window", segSpec{Flags: wire.TCPFlagRST, Seq: 1000}},
		{"rst-ack-in-window", segSpec{Flags: wire.TCPFlagRST | wire.TCPFlagACK, Seq: 1}},
		{"syn", segSpec{Flags: wire.TCPFlagSYN, Seq: 0}},
		{"syn-ack", segSpec{Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Seq: 1<<32 - 1, Window: 0xffff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{ISS: 77, IRS: 0xfffffff0})
			a := onlyOne(t, tc.name, h.send(tc.s))
			h.wantSeg("challenge ACK", a, wire.TCPFlagACK, 0, 0, 0)
			if !h.alive() || len(h.krx()) != 0 || h.rcvNxt() != h.o.IRS.Add(1) {
				t.Fatalf("alive %v rcv_nxt %d", h.alive(), h.rcvNxt())
			}
			if st := h.stats(); st.ChallengeAcks != 1 {
				t.Errorf("ChallengeAcks %d, want 1", st.ChallengeAcks)
			}
		})
	}
}

// TestRFC5961ChallengeAckRateLimit: RFC 5961 7. As implemented: one
// challenge (or other invalid-segment) ACK per flow per 500 ms, and an
// engine-wide budget of 1000 challenges per second of the clock, which
// every challenge draws on, withheld ones included.
func TestRFC5961ChallengeAckRateLimit(t *testing.T) {
	const budget = 1000 // challengeAcksPerSecond (a literal: the old code had no such constant)
	h := newSegHarness(t, segOpts{})
	rst := segSpec{Flags: wire.TCPFlagRST, Seq: 1000}
	withheld := uint64(0)
	h.wantSeg("first", onlyOne(t, "first challenge", h.send(rst)), wire.TCPFlagACK, 0, 0, 0)
	h.advance(100 * time.Millisecond)
	noneSent(t, "second challenge within 500 ms", h.send(rst))
	withheld++
	h.wantStat("AcksRateLimited", withheld)
	// Per flow: another 500 ms later it is answered again.
	h.advance(500 * time.Millisecond)
	h.wantSeg("after 500 ms", onlyOne(t, "challenge after 500 ms", h.send(rst)), wire.TCPFlagACK, 0, 0, 0)

	// Engine-wide: one flow can draw at most two challenges a second,
	// so the budget is spent here as 1000 other flows would spend it.
	h.now = 3_000_000_000
	h.advance(0)
	h.eng.chSecond, h.eng.chBudget = h.now/1e9, 0
	noneSent(t, "challenge beyond the engine's budget", h.send(rst))
	withheld++
	h.wantStat("AcksRateLimited", withheld)
	h.now = 4_000_000_000
	h.wantSeg("next second", onlyOne(t, "challenge in the next second", h.send(rst)), wire.TCPFlagACK, 0, 0, 0)
	if h.eng.chBudget != budget-1 {
		t.Fatalf("budget %d after one challenge in a new second, want %d", h.eng.chBudget, budget-1)
	}
	if !h.alive() || h.rcvNxt() != h.o.IRS.Add(1) {
		t.Fatal("in-window RSTs affected the flow")
	}
}

// TestRFC7323TSRecent: RFC 7323 4.3, only an acceptable segment updates
// TS.Recent; a blind segment with a huge TSval must not make PAWS drop
// the flow's real segments afterwards.
func TestRFC7323TSRecent(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  uint32
	}{
		{"below-window", 0},
		{"beyond-window", 70000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{IRS: 100, TS: true, TSRecent: 900})
			h.wantSeg("data", onlyOne(t, "data", h.send(dataSeg(0, segPayload(100, 1)))), wire.TCPFlagACK, 0, 100, 0)
			if h.tsRecent() != 1000 {
				t.Fatalf("ts_recent %d, want 1000", h.tsRecent())
			}
			h.peerTS = 1000 + 1<<30
			a := onlyOne(t, "unacceptable segment", h.send(dataSeg(tc.seq, segPayload(50, 2))))
			h.wantSeg("its ACK", a, wire.TCPFlagACK, 0, 100, 0)
			if h.tsRecent() != 1000 || a.Opts.TSEcr != 1000 {
				t.Fatalf("ts_recent %d, TSecr %d after an unacceptable segment, want 1000", h.tsRecent(), a.Opts.TSEcr)
			}
			h.peerTS = 1001
			h.advance(time.Millisecond)
			a = onlyOne(t, "next valid segment", h.send(dataSeg(100, segPayload(100, 3))))
			h.wantSeg("its ACK", a, wire.TCPFlagACK, 0, 200, 0)
			if h.tsRecent() != 1001 || a.Opts.TSEcr != 1001 || h.rcvNxt() != h.o.IRS.Add(201) {
				t.Fatalf("ts_recent %d TSecr %d rcv_nxt %d", h.tsRecent(), a.Opts.TSEcr, h.rcvNxt())
			}
		})
	}
}

// TestRFC7323PAWS: RFC 7323 5.3, an older TSval is dropped and answered
// with an ACK, at most one per 500 ms.
func TestRFC7323PAWS(t *testing.T) {
	h := newSegHarness(t, segOpts{TS: true, TSRecent: 900})
	h.send(dataSeg(0, segPayload(100, 1)))
	h.peerTS = 990
	old := dataSeg(100, segPayload(100, 2))
	a := onlyOne(t, "old TSval", h.send(old))
	h.wantSeg("PAWS ACK", a, wire.TCPFlagACK, 0, 100, 0)
	if a.Opts.TSEcr != 1000 {
		t.Errorf("TSecr %d, want 1000", a.Opts.TSEcr)
	}
	h.advance(10 * time.Millisecond)
	noneSent(t, "second PAWS drop within 500 ms", h.send(old))
	if st := h.stats(); st.PAWSDrops != 2 {
		t.Errorf("PAWSDrops %d, want 2", st.PAWSDrops)
	}
	h.wantStat("AcksRateLimited", 1)
	if h.rcvNxt() != h.o.IRS.Add(101) || h.tsRecent() != 1000 || h.rx.Head.Load() != 100 {
		t.Fatalf("rcv_nxt %d ts_recent %d RX head %d", h.rcvNxt(), h.tsRecent(), h.rx.Head.Load())
	}
}

// TestRFC7323NoTimestampDropped: RFC 7323 3.2, on a timestamped flow a
// non-RST segment without TSopt is dropped silently; a RST without it is
// still processed.
func TestRFC7323NoTimestampDropped(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 3, TS: true, TSRecent: 900})
	s := dataSeg(0, segPayload(100, 1))
	s.NoTS = true
	noneSent(t, "data without TSopt", h.send(s))
	noneSent(t, "ACK without TSopt", h.send(segSpec{Flags: wire.TCPFlagACK, NoTS: true, Window: 0}))
	if h.rcvNxt() != h.o.IRS.Add(1) || h.rx.Head.Load() != 0 || h.sndWnd() != 65535 || len(h.events()) != 0 {
		t.Fatalf("rcv_nxt %d RX head %d snd_wnd %d: a segment without TSopt was taken", h.rcvNxt(), h.rx.Head.Load(), h.sndWnd())
	}
	h.wantStat("RxNoTimestamp", 2)
	noneSent(t, "RST without TSopt", h.send(segSpec{Flags: wire.TCPFlagRST, NoTS: true}))
	h.wantGone(GoneReset)
}

// TestRFC9293DataAfterFin: RFC 9293 3.10.7.4, eighth check: after the
// peer's FIN, segment text is ignored.
func TestRFC9293DataAfterFin(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 50})
	s := dataSeg(0, segPayload(10, 1))
	s.Flags |= wire.TCPFlagFIN
	h.wantSeg("FIN", onlyOne(t, "data+FIN", h.send(s)), wire.TCPFlagACK, 0, 11, 0)
	if evs := h.events(); len(evs) != 1 || evs[0].Flags&appif.EvRxFin == 0 || evs[0].RxBump != 10 {
		t.Fatalf("events %+v, want RxBump 10 with EvRxFin", evs)
	}
	a := onlyOne(t, "data after FIN", h.send(dataSeg(11, segPayload(50, 2))))
	h.wantSeg("ACK", a, wire.TCPFlagACK, 0, 11, 0)
	if h.rcvNxt() != h.o.IRS.Add(12) || h.rx.Head.Load() != 10 || len(h.events()) != 0 {
		t.Fatalf("rcv_nxt %d RX head %d: data after the FIN taken", h.rcvNxt(), h.rx.Head.Load())
	}
	h.wantStat("RxAfterFin", 1)
}

// TestRFC9293OutOfOrderFin: a FIN that arrives ahead of a hole is kept and
// accepted when the hole fills, without a retransmission.
func TestRFC9293OutOfOrderFin(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 0xffffffa0})
	d := segPayload(200, 9)
	s := dataSeg(100, d[100:])
	s.Flags |= wire.TCPFlagFIN
	h.wantSeg("out-of-order data+FIN", onlyOne(t, "OOO FIN", h.send(s)), wire.TCPFlagACK, 0, 0, 0)
	if h.rcvNxt() != h.o.IRS.Add(1) {
		t.Fatalf("rcv_nxt %d moved on out-of-order data", h.rcvNxt())
	}
	a := onlyOne(t, "the hole", h.send(dataSeg(0, d[:100])))
	h.wantSeg("ACK of everything and the FIN", a, wire.TCPFlagACK, 0, 201, 0)
	if h.rcvNxt() != h.o.IRS.Add(202) || h.rx.Head.Load() != 200 {
		t.Fatalf("rcv_nxt %d RX head %d, want rel 201 and 200", h.rel(h.rcvNxt()), h.rx.Head.Load())
	}
	var bump uint32
	var fl uint8
	for _, ev := range h.events() {
		bump += ev.RxBump
		fl |= ev.Flags
	}
	if bump != 200 || fl&appif.EvRxFin == 0 {
		t.Fatalf("events RxBump %d flags %#x, want 200 and EvRxFin", bump, fl)
	}
	if got, _ := h.appRead(); string(got) != string(d) {
		t.Fatal("app read differs")
	}
}

// TestRFC9293ZeroWindowProbeInFlight: RFC 9293 3.8.6.1, with data in
// flight and the peer's window closed, each timeout sends a 1-byte probe
// at snd_una; a peer that answers keeps the flow alive indefinitely, one
// that does not is aborted after MaxRetries probes.
func TestRFC9293ZeroWindowProbeInFlight(t *testing.T) {
	h := newSegHarness(t, segOpts{MSS: 1000, MaxRetries: 5})
	data := segPayload(3000, 1)
	if out := h.appWrite(data); len(out) != 3 {
		t.Fatalf("sent %d segments, want 3", len(out))
	}
	h.advance(10 * time.Millisecond)
	zero := segSpec{Flags: wire.TCPFlagACK, Ack: 1000, Window: 0}
	h.send(zero)
	if h.sndUna() != h.o.ISS.Add(1001) || h.sndWnd() != 0 {
		t.Fatalf("snd_una %d snd_wnd %d", h.sndUna(), h.sndWnd())
	}
	for i := range 20 {
		p := onlyOne(t, "probe", h.fireNext())
		h.wantSeg("probe", p, wire.TCPFlagACK|wire.TCPFlagPSH, 1000, 0, 1)
		if p.Payload[0] != data[1000] {
			t.Fatalf("probe %d carries %#x, want the byte at snd_una", i, p.Payload[0])
		}
		if !h.alive() {
			t.Fatalf("flow gone after %d answered probes", i+1)
		}
		h.send(zero)
	}
	if ms := h.krx(); len(ms) != 0 {
		t.Fatalf("KRX %+v while the peer answers the probes", ms)
	}
	if st := h.stats(); st.Probes != 20 {
		t.Errorf("Probes %d, want 20", st.Probes)
	}
	// The peer goes silent.
	probes := 0
	for range 10 {
		out := h.fireNext()
		if !h.alive() {
			noneSent(t, "the abort", out)
			break
		}
		p := onlyOne(t, "unanswered probe", out)
		h.wantSeg("probe", p, wire.TCPFlagACK|wire.TCPFlagPSH, 1000, 0, 1)
		probes++
	}
	if probes != 5 {
		t.Errorf("%d unanswered probes before the abort, want MaxRetries 5", probes)
	}
	h.wantGone(GoneTimeout)
}

// TestRFC3168NoECTOnRetransmission: RFC 3168 6.1.5, new data is ECT(0), a
// retransmission is not ECN-capable.
func TestRFC3168NoECTOnRetransmission(t *testing.T) {
	h := newSegHarness(t, segOpts{MSS: 1000, ECN: true})
	data := segPayload(1000, 1)
	s := onlyOne(t, "new data", h.appWrite(data))
	h.wantSeg("new data", s, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 1000)
	if s.TOS != 2 { // ECT(0)
		t.Fatalf("new data TOS %#x, want ECT(0)", s.TOS)
	}
	r := onlyOne(t, "RTO", h.fireNext())
	h.wantSeg("retransmission", r, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 1000)
	if r.TOS != 0 {
		t.Fatalf("retransmission TOS %#x, want 0 (not ECT)", r.TOS)
	}
	if string(r.Payload) != string(data) {
		t.Fatal("retransmitted payload differs")
	}
	if st := h.stats(); st.RTOs != 1 || st.TxRetransmits != 1 {
		t.Errorf("RTOs %d TxRetransmits %d", st.RTOs, st.TxRetransmits)
	}
}

// TestRFC6298KarnTLP: RFC 6298 3 (Karn): a tail loss probe that re-sends
// the timed segment ends its measurement; the ACK gives no RTT sample.
func TestRFC6298KarnTLP(t *testing.T) {
	h := newSegHarness(t, segOpts{MSS: 1000, SACK: true, RTTSample: 10_000})
	srtt := h.c().rto.SRTT()
	onlyOne(t, "data", h.appWrite(segPayload(1000, 1)))
	p := onlyOne(t, "loss probe", h.fireNext())
	h.wantSeg("loss probe", p, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, 1000)
	if st := h.stats(); st.LossProbes != 1 || st.TxRetransmits != 1 {
		t.Fatalf("LossProbes %d TxRetransmits %d", st.LossProbes, st.TxRetransmits)
	}
	h.advance(5 * time.Millisecond)
	noneSent(t, "ACK", h.send(h.peerAck()))
	if h.sndUna() != h.o.ISS.Add(1001) {
		t.Fatalf("snd_una %d", h.sndUna())
	}
	if got := h.c().rto.SRTT(); got != srtt {
		t.Errorf("SRTT %d µs after the probe's ACK, want %d (no sample: Karn)", got, srtt)
	}
	if got := h.sh.Flows.Counters[segFlowID].SRTT.Load(); got != srtt {
		t.Errorf("Counters.SRTT %d, want %d", got, srtt)
	}
}

// TestHostileAppRingPositions: ring positions the app makes impossible
// abort the flow (GoneCorrupt) without a panic, and nothing is sent for
// it afterwards.
func TestHostileAppRingPositions(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(h *segHarness) []segOut
	}{
		{"tx-head-behind-sent-data", func(h *segHarness) []segOut {
			h.appWrite(segPayload(1000, 1))
			h.txHead = 500
			h.tx.Head.Store(500)
			return h.post(appif.Cmd{Conn: h.handle, TxBump: 1})
		}},
		{"tx-head-after-close", func(h *segHarness) []segOut {
			h.appWrite(segPayload(100, 1))
			h.appClose()
			h.ringPut(segPayload(50, 2))
			return h.post(appif.Cmd{Conn: h.handle, TxBump: 50})
		}},
		{"tx-head-beyond-ring", func(h *segHarness) []segOut {
			h.tx.Head.Store(h.o.TxSize + 1)
			return h.post(appif.Cmd{Conn: h.handle, TxBump: 1})
		}},
		{"rx-tail-beyond-head", func(h *segHarness) []segOut {
			h.send(dataSeg(0, segPayload(100, 1)))
			h.rx.Tail.Store(5000)
			return h.post(appif.Cmd{Conn: h.handle, RxBump: 1})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{MSS: 1000})
			h.krx()
			noneSent(t, tc.name, tc.do(h))
			h.wantGone(GoneCorrupt)
			h.wantStat("CorruptRings", 1)
			noneSent(t, "timers after GoneCorrupt", h.advance(10*time.Second))
			noneSent(t, "timers after GoneCorrupt", h.advance(100*time.Second))
			noneSent(t, "a segment after GoneCorrupt", h.send(dataSeg(100, segPayload(10, 3))))
			noneSent(t, "a command after GoneCorrupt", h.post(appif.Cmd{Conn: h.handle, TxBump: 1}))
		})
	}
}

// pmtuSend delivers a KtxPMTU quoting ISS+1+rel.
func pmtuSend(h *segHarness, rel uint32, mtu uint16, handle uint64) []segOut {
	h.ktxSend(CtlMsg{Type: KtxPMTU, ID: segFlowID, Handle: handle, SndUna: uint32(h.o.ISS.Add(1 + rel)), MTU: mtu})
	return h.poll()
}

// pmtuLowered: MTU 1000 quoting a sequence number in flight lowers the
// MSS to what fits 1000 bytes of IP packet (less the timestamp option on
// a timestamped flow), and the flight goes again at that size.
func pmtuLowered(t *testing.T, ts bool) {
	h := newSegHarness(t, segOpts{ISS: 0xfffff000, TS: ts})
	data := segPayload(3000, 1)
	if out := h.appWrite(data); len(out) != 3 {
		t.Fatalf("sent %d segments, want 3", len(out))
	}
	const mtu = 1000
	want := mtu - 40
	if ts {
		want -= 12
	}
	out := pmtuSend(h, 100, mtu, uint64(h.handle))
	if int(h.mss()) != want {
		t.Errorf("mss %d, want %d", h.mss(), want)
	}
	if n := (3000 + want - 1) / want; len(out) != n {
		t.Fatalf("re-sent %d segments, want %d of <= %d bytes", len(out), n, want)
	}
	for i, s := range out {
		if ip := s.Len - wire.EthernetHeaderLen; ip > mtu {
			t.Errorf("re-sent segment %d is a %d-byte IP packet, over the MTU %d", i, ip, mtu)
		}
		n := min(want, 3000-want*i)
		h.wantSeg("re-sent", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(want*i), 0, n)
		if string(s.Payload) != string(data[want*i:want*i+n]) {
			t.Fatalf("segment %d payload differs", i)
		}
	}
	h.wantStat("PMTUUpdates", 1)
	noneSent(t, "a larger MTU", pmtuSend(h, 0, 1200, uint64(h.handle)))
	if int(h.mss()) != want {
		t.Fatalf("mss %d after a larger MTU", h.mss())
	}
	h.wantStat("PMTUIgnored", 1)
}

// TestRFC1191PMTUTimestamps is pmtuLowered on a timestamped flow: the
// new MSS leaves room for the timestamp option, so packets fit the MTU.
func TestRFC1191PMTUTimestamps(t *testing.T) {
	pmtuLowered(t, true)
}

// TestRFC1191PMTU: a validated "fragmentation needed" (KtxPMTU) lowers the
// MSS and re-sends what is in flight at the new size; one quoting a
// sequence number outside [snd_una, snd_max), or not lowering the MSS, is
// ignored (RFC 5927 5.1).
func TestRFC1191PMTU(t *testing.T) {
	data := segPayload(3000, 1)
	t.Run("lowered", func(t *testing.T) { pmtuLowered(t, false) })
	for _, tc := range []struct {
		name string
		rel  uint32
		mtu  uint16
		bad  bool
	}{
		{"seq-at-snd-max", 3000, 1000, false},
		{"seq-below-snd-una", 1<<32 - 1, 1000, false},
		{"seq-far", 1 << 30, 1000, false},
		{"mtu-not-lower", 100, 1500, false},
		{"stale-handle", 100, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSegHarness(t, segOpts{TS: true})
			h.appWrite(data)
			handle := uint64(h.handle)
			if tc.bad {
				handle = uint64(appif.MakeHandle(segFlowID, segFlowGen+1))
			}
			noneSent(t, tc.name, pmtuSend(h, tc.rel, tc.mtu, handle))
			if h.mss() != 1448 || h.sndNxt() != h.o.ISS.Add(3001) {
				t.Fatalf("mss %d snd_nxt %d: ignored PMTU message acted on", h.mss(), h.sndNxt())
			}
			h.wantStat("PMTUIgnored", 1)
		})
	}
}

// TestRFC2018SACKOnData: while we hold out-of-order data, data segments
// carry SACK blocks too, and payload plus options stay within the MSS.
func TestRFC2018SACKOnData(t *testing.T) {
	h := newSegHarness(t, segOpts{SACK: true, TS: true, IRS: 400})
	h.send(dataSeg(1000, segPayload(100, 1)))
	a := onlyOne(t, "second OOO segment", h.send(dataSeg(2000, segPayload(100, 2))))
	if a.Opts.NumSACK != 2 {
		t.Fatalf("ACK with %d SACK blocks, want 2", a.Opts.NumSACK)
	}
	want := map[wire.SACKBlock]bool{
		{Start: uint32(h.o.IRS.Add(1001)), End: uint32(h.o.IRS.Add(1101))}: true,
		{Start: uint32(h.o.IRS.Add(2001)), End: uint32(h.o.IRS.Add(2101))}: true,
	}
	data := segPayload(5000, 3)
	out := h.appWrite(data)
	if len(out) == 0 {
		t.Fatal("nothing sent")
	}
	off := 0
	mss := int(h.mss())
	for i, s := range out {
		k := len(s.Opts.SACKBlocks())
		if !s.Opts.Has(wire.OptSACK) || k != 2 {
			t.Fatalf("data segment %d carries %d SACK blocks, want 2", i, k)
		}
		for _, b := range s.Opts.SACKBlocks() {
			if !want[b] {
				t.Fatalf("data segment %d SACK block %+v not held", i, b)
			}
		}
		if len(s.Payload)+4+8*k > mss {
			t.Fatalf("data segment %d: %d payload bytes + %d of SACK over mss %d", i, len(s.Payload), 4+8*k, mss)
		}
		n := min(mss-4-8*k, len(data)-off)
		h.wantSeg("data", s, wire.TCPFlagACK|wire.TCPFlagPSH, uint32(off), 0, n)
		if string(s.Payload) != string(data[off:off+n]) {
			t.Fatalf("segment %d payload differs", i)
		}
		off += n
	}
	if off != len(data) {
		t.Fatalf("sent %d bytes, want %d", off, len(data))
	}
}

// TestFlowTableReclaim: removing every flow and reclaiming their hashes
// leaves no tombstones, so a lookup miss stops at its home slot.
func TestFlowTableReclaim(t *testing.T) {
	const n = 40
	tbl := NewFlowTable(n)
	keys := make([]FlowKey, n)
	tbl.KeyOf = func(id uint32) *FlowKey { return &keys[id] }
	for i := range keys {
		keys[i] = FlowKey{LocalIP: segLocalIP, RemoteIP: wire.Addr4{10, 1, byte(i >> 8), byte(i)},
			LocalPort: 80, RemotePort: uint16(1000 + i)}
		if !tbl.Insert(keys[i].Hash(), uint32(i)) {
			t.Fatal("table full")
		}
	}
	for i := range keys {
		if !tbl.Remove(keys[i].Hash(), uint32(i)) {
			t.Fatalf("key %d not found for removal", i)
		}
	}
	reclaim := reflect.ValueOf(tbl).MethodByName("Reclaim")
	if !reclaim.IsValid() {
		t.Fatal("no FlowTable.Reclaim: tombstones can never be cleared")
	}
	for i := range keys {
		reclaim.Call([]reflect.Value{reflect.ValueOf(keys[i].Hash())})
	}
	for p := range tbl.slots {
		if v := tbl.slots[p].Load(); v != 0 {
			t.Fatalf("slot %d = %#x after removing and reclaiming every key, want 0", p, v)
		}
	}
	// A miss from any home slot probes one slot: an empty one.
	miss := FlowKey{LocalIP: segLocalIP, RemoteIP: segPeerIP, LocalPort: 1, RemotePort: 2}
	if _, ok := tbl.Lookup(miss.Hash(), &miss); ok {
		t.Fatal("lookup hit in an empty table")
	}
	// Through Flows: a flow the engine removed is reclaimed by the slow path.
	h := newSegHarness(t, segOpts{})
	h.send(segSpec{Flags: wire.TCPFlagRST})
	h.wantGone(GoneReset)
	if m := reflect.ValueOf(h.sh.Flows).MethodByName("Reclaim"); m.IsValid() {
		m.Call([]reflect.Value{reflect.ValueOf(h.key)})
	} else {
		t.Fatal("no Flows.Reclaim")
	}
	for p := range h.sh.Flows.Table.slots {
		if v := h.sh.Flows.Table.slots[p].Load(); v != 0 {
			t.Fatalf("flow table slot %d = %#x after Reclaim, want 0", p, v)
		}
	}
}

// TestOOOTracksRcvNxt: the out-of-order set's rcv_nxt follows the flow's
// after in-order data even when the set is empty; left at the install
// value, after 2 GiB it would take new segments for old ones.
func TestOOOTracksRcvNxt(t *testing.T) {
	h := newSegHarness(t, segOpts{IRS: 0x7fffff00, MSS: 1000})
	for i := range 5 {
		h.send(dataSeg(uint32(1000*i), segPayload(1000, byte(i))))
		if got := h.c().ooo.RcvNxt(); got != h.rcvNxt() {
			t.Fatalf("after %d in-order segments OOO rcv_nxt %d, flow rcv_nxt %d", i+1, got, h.rcvNxt())
		}
	}
	// And out-of-order data then lands at the right ring offset.
	h.send(dataSeg(6000, segPayload(1000, 6)))
	a := onlyOne(t, "hole filled", h.send(dataSeg(5000, segPayload(1000, 5))))
	h.wantSeg("ACK", a, wire.TCPFlagACK, 0, 7000, 0)
	if h.c().ooo.RcvNxt() != h.rcvNxt() || h.rx.Head.Load() != 7000 {
		t.Fatalf("OOO rcv_nxt %d rcv_nxt %d RX head %d", h.c().ooo.RcvNxt(), h.rcvNxt(), h.rx.Head.Load())
	}
}

// TestNextDeadlinePendingReports: a report waiting for room in the KRX
// queue makes NextDeadline come within reportPendingSleepNs, so the core
// does not sleep on it.
func TestNextDeadlinePendingReports(t *testing.T) {
	h := newSegHarness(t, segOpts{})
	for i := 0; h.stats().PuntDropped == 0; i++ {
		if i > 4*segCtlSlots {
			t.Fatal("KRX queue never filled")
		}
		h.sendFrame(h.otherFlowFrame(dataSeg(0, segPayload(10, 0))))
	}
	noneSent(t, "exact RST", h.send(segSpec{Flags: wire.TCPFlagRST}))
	if h.alive() {
		t.Fatal("flow alive after an exact RST")
	}
	d, ok := h.eng.NextDeadline()
	if !ok || d < h.now || d-h.now > 1_000_000 {
		t.Fatalf("NextDeadline %d, %v with a report pending at %d, want within 1 ms", d, ok, h.now)
	}
	for _, m := range h.krx() {
		if m.Type != KrxFrame {
			t.Fatalf("KRX %+v before room was made", m)
		}
	}
	h.poll()
	h.wantGone(GoneReset)
	if d, ok := h.eng.NextDeadline(); ok {
		t.Fatalf("NextDeadline %d with nothing pending", d)
	}
}

// TestRFC9293WindowProbeAnswered: a pure ACK one below rcv_nxt is how
// Linux probes a zero window (and keeps a connection alive); it must be
// answered with our current window, or a sender whose window we closed
// waits in persist for ever (the lossy interop transfer stalled so).
func TestRFC9293WindowProbeAnswered(t *testing.T) {
	h := newSegHarness(t, segOpts{})
	h.send(dataSeg(0, segPayload(100, 1)))
	probe := segSpec{Flags: wire.TCPFlagACK, Seq: 99}
	for i := range 3 {
		out := onlyOne(t, "answer to a window probe", h.send(probe))
		h.wantSeg("probe answer", out, wire.TCPFlagACK, 0, 100, 0)
		if out.Window == 0 {
			t.Fatalf("probe %d answered with a zero window", i)
		}
	}
}

// TestRFC896Nagle: Nagle is off by default (as Go's net.TCPConn); a
// command carrying appif.CmdNagle turns it on for the flow, and then a
// runt waits while data is in flight, until the flight is acknowledged.
func TestRFC896Nagle(t *testing.T) {
	for _, nagle := range []bool{false, true} {
		h := newSegHarness(t, segOpts{})
		var fl uint8
		if nagle {
			fl = appif.CmdNagle
		}
		write := func(n int) []segOut {
			h.ringPut(make([]byte, n))
			return h.post(appif.Cmd{Conn: h.handle, TxBump: uint32(n), Flags: fl})
		}
		onlyOne(t, "first runt", write(10))
		out := write(10)
		if got, want := len(out), map[bool]int{false: 1, true: 0}[nagle]; got != want {
			t.Fatalf("nagle %v: second runt with data in flight sent %d segments, want %d", nagle, got, want)
		}
		if nagle {
			ack := h.peerAck()
			ack.Ack = 10
			h.wantSeg("held runt after the ACK", onlyOne(t, "held runt", h.send(ack)), wire.TCPFlagACK|wire.TCPFlagPSH, 10, 0, 10)
		}
	}
}
