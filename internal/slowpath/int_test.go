package slowpath

import (
	"bytes"
	"testing"

	"gotas/internal/cc"
	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// The receiver side of PowerTCP's telemetry against hostile input: a
// collect option with malformed records is counted and not echoed, a
// valid one is echoed on the ACK byte for byte, and an echo the flow never
// asked for is counted and ignored; the data is delivered in every case.
func TestINTEchoValidated(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 16)
	sa := r.handshake(40000, 1000, synOpts(1460, 100))
	seq, tsval := uint32(1001), uint32(101)
	send := func(flags wire.TCPFlags, exID uint16, data []byte, payload int) []parsed {
		t.Helper()
		tsval++
		o := &wire.TCPOptions{Present: wire.OptTimestamps, TSVal: tsval, TSEcr: sa.opts.TSVal}
		o.SetExp(exID, data)
		r.inject(r.frame(seg{sport: 40000, dport: 80, seq: seq, ack: sa.tcp.SeqNum() + 1, flags: flags, win: 502,
			opts: o, payload: make([]byte, payload)}))
		seq += uint32(payload)
		return tcpOut(t, r.take())
	}
	badINT := func() uint64 { return r.s.EngineStats(0).RxBadINT }

	out := send(wire.TCPFlagACK|wire.TCPFlagPSH, cc.INTExIDCollect, make([]byte, 11), 100)
	if badINT() != 1 || len(out) == 0 || out[len(out)-1].opts.Has(wire.OptExp) {
		t.Fatalf("11-byte record: bad %d, ACK options %+v; want counted and no echo", badINT(), out)
	}
	var rec [cc.INTHopLen]byte
	cc.PutHop(rec[:], cc.MakeWireHop(3000, 123_456, 789, 1_000_000_000))
	out = send(wire.TCPFlagACK|wire.TCPFlagPSH, cc.INTExIDCollect, rec[:], 100)
	if len(out) == 0 {
		t.Fatal("no ACK for valid data")
	}
	ack := out[len(out)-1]
	if badINT() != 1 || ack.opts.ExpID != cc.INTExIDEcho || !bytes.Equal(ack.opts.Exp(), rec[:]) || ack.tcp.AckNum() != seq {
		t.Fatalf("valid record: bad %d, ACK %d (want %d) echo %x/%x; want the record echoed", badINT(),
			ack.tcp.AckNum(), seq, ack.opts.ExpID, ack.opts.Exp())
	}
	send(wire.TCPFlagACK, cc.INTExIDEcho, rec[:], 0)
	if badINT() != 2 {
		t.Fatalf("unasked echo: bad %d, want 2", badINT())
	}
	id, ok := r.s.sh.Flows.Lookup(fastpath.FlowKey{LocalIP: r.s.ip, RemoteIP: rawIP, LocalPort: 80, RemotePort: 40000})
	if !ok {
		t.Fatal("flow not found")
	}
	if _, _, ok := r.s.sh.Flows.Counters[id].ReadINT(new([cc.INTMaxHops]cc.WireHop)); ok {
		t.Fatal("an unasked echo reached the slow path")
	}
}

// A PowerTCP flow's data asks for telemetry and keeps room for the
// records, also to a peer with the smallest MSS we accept (88, 76 with
// timestamps: 48 bytes of payload are left, not a wrapped length).
func TestINTWithTinyAndNormalMSS(t *testing.T) {
	for _, c := range []struct {
		peerMSS uint16
		payload int
	}{{1, tcpMinMSS - tsOptionLen - cc.INTReserve}, {1460, 1460 - tsOptionLen - cc.INTReserve}} {
		cfg := testConfig(ipA)
		cfg.CC = "powertcp"
		r := newRaw(t, cfg, nil)
		r.app.onConn = func(x *appConn) { x.sendTotal = 5000 }
		r.listen(80, 16)
		r.handshake(40000, 1000, synOpts(c.peerMSS, 5))
		r.settle()
		largest := 0
		for _, p := range tcpOut(t, r.take()) {
			n := len(p.tcp.Payload())
			if n == 0 {
				continue
			}
			largest = max(largest, n)
			collect := p.opts.Has(wire.OptExp) && p.opts.ExpID == cc.INTExIDCollect
			if n > c.payload || !collect {
				t.Fatalf("peer MSS %d: segment of %d bytes (at most %d), collect option %v",
					c.peerMSS, n, c.payload, collect)
			}
		}
		if largest != c.payload {
			t.Fatalf("peer MSS %d: largest segment %d bytes, want %d", c.peerMSS, largest, c.payload)
		}
	}
}
