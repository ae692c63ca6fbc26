package slowpath

import (
	"testing"
	"time"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// RFC 3168 6.1.1.1: a SYN-ACK that goes unanswered is retransmitted
// without ECE, and the connection then does not use ECN.
func TestSynAckRetransmissionWithoutECN(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 16)
	syn := seg{sport: 40001, dport: 80, seq: 5000, flags: wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR,
		win: 64240, opts: synOpts(1460, 7)}
	r.inject(r.frame(syn))
	out := tcpOut(t, r.take())
	if len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagECE {
		t.Fatalf("ECN-setup SYN answered with %v, want an ECN-setup SYN-ACK", out)
	}
	r.advance(testConfig(ipA).SynRTO + time.Millisecond)
	out = tcpOut(t, r.take())
	if len(out) != 1 || out[0].tcp.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK {
		t.Fatalf("SYN-ACK retransmission %v, want SYN|ACK without ECE", out)
	}
	x := r.s.sp.conns[fastpath.FlowKey{LocalIP: r.s.ip, RemoteIP: rawIP, LocalPort: 80, RemotePort: 40001}]
	if x == nil || x.ecn {
		t.Fatalf("after the fallback the connection still plans ECN: %+v", x)
	}
}
