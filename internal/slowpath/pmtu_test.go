package slowpath

import (
	"encoding/binary"
	"testing"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// fragNeeded builds an ICMP "fragmentation needed" from a router that
// quotes a TCP segment src:sport -> dst:dport with sequence number seq.
func (r *rawPeer) fragNeeded(mtu uint16, src, dst wire.Addr4, sport, dport uint16, seq uint32, badSum bool) []byte {
	b := make([]byte, 14+20+8+20+8)
	n := wire.PutEthernet(b, r.smac, peerMAC, wire.EtherTypeIPv4)
	n += wire.PutIPv4(b[n:], wire.IPv4Fields{TotalLen: 20 + 8 + 28, TTL: 64, Protocol: wire.IPProtoICMP,
		Src: wire.Addr4{10, 0, 0, 254}, Dst: r.s.ip})
	m := b[n:]
	m[0], m[1] = wire.ICMPv4DestUnreach, icmpFragNeeded
	binary.BigEndian.PutUint16(m[6:], mtu)
	wire.PutIPv4(m[8:], wire.IPv4Fields{TotalLen: 1500, DF: true, TTL: 63, Protocol: wire.IPProtoTCP, Src: src, Dst: dst})
	q := m[28:]
	binary.BigEndian.PutUint16(q[0:], sport)
	binary.BigEndian.PutUint16(q[2:], dport)
	binary.BigEndian.PutUint32(q[4:], seq)
	c := wire.Checksum(m)
	if badSum {
		c++
	}
	binary.BigEndian.PutUint16(m[2:], c)
	return b
}

func (r *rawPeer) pmtuMsgs() []fastpath.CtlMsg {
	var out []fastpath.CtlMsg
	for _, m := range r.ktx {
		if m.Type == fastpath.KtxPMTU {
			out = append(out, m)
		}
	}
	r.ktx = nil
	return out
}

func TestPMTUFragNeeded(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 16)
	sa := r.handshake(40000, 1000, synOpts(1460, 5))
	h := r.app.order[0].h
	seq := sa.tcp.SeqNum() + 1
	me := r.s.ip
	bad := []struct {
		name  string
		frame []byte
	}{
		{"wrong local port", r.fragNeeded(1400, me, rawIP, 81, 40000, seq, false)},
		{"wrong remote port", r.fragNeeded(1400, me, rawIP, 80, 40001, seq, false)},
		{"no such conn", r.fragNeeded(1400, me, wire.Addr4{10, 0, 0, 3}, 80, 40000, seq, false)},
		{"not our source", r.fragNeeded(1400, wire.Addr4{10, 0, 0, 5}, rawIP, 80, 40000, seq, false)},
		{"MTU below 68", r.fragNeeded(60, me, rawIP, 80, 40000, seq, false)},
		{"MTU 0", r.fragNeeded(0, me, rawIP, 80, 40000, seq, false)},
		{"no reduction", r.fragNeeded(1500, me, rawIP, 80, 40000, seq, false)},
		{"bad checksum", r.fragNeeded(1400, me, rawIP, 80, 40000, seq, true)},
		{"truncated", r.fragNeeded(1400, me, rawIP, 80, 40000, seq, false)[:14+20+8+20+4]},
	}
	r.ktx = nil
	for i, c := range bad {
		r.inject(c.frame)
		if m := r.pmtuMsgs(); len(m) != 0 {
			t.Errorf("%s: sent %+v", c.name, m)
		}
		if got := r.s.Stats().PMTUIgnored; got != uint64(i+1) && c.name != "truncated" {
			t.Errorf("%s: PMTUIgnored %d, want %d", c.name, got, i+1)
		}
	}
	for _, c := range []struct{ mtu, want uint16 }{{1400, 1400}, {300, pmtuFloor}} {
		r.inject(r.fragNeeded(c.mtu, me, rawIP, 80, 40000, seq+7, false))
		m := r.pmtuMsgs()
		want := fastpath.CtlMsg{Type: fastpath.KtxPMTU, ID: h.Index(), Handle: uint64(h), SndUna: seq + 7, MTU: c.want}
		if len(m) != 1 || m[0] != want {
			t.Fatalf("MTU %d: sent %+v, want %+v", c.mtu, m, want)
		}
	}
	if st := r.s.Stats(); st.PMTUAccepted != 2 {
		t.Fatalf("PMTUAccepted %d", st.PMTUAccepted)
	}
}
