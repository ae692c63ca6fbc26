package slowpath

import (
	"fmt"
	"testing"
	"time"

	"gotas/internal/fastpath"
	"gotas/internal/tcp"
)

// TestTransferAcrossSequenceWrap moves 8 MiB each way on connections whose
// ISNs are forced next to 2^31 and 2^32, so that every sequence comparison
// in both engines (send window, ACK acceptance, SACK blocks, the OOO
// store, FIN) runs across the wrap, and checks the bytes and that the
// sequence space really was crossed.
func TestTransferAcrossSequenceWrap(t *testing.T) {
	const n = 8 << 20
	const mib = 1 << 20
	cases := []struct {
		name       string
		issA, issB uint32 // A listens (passive), B connects
		lossy      bool
		noSACK     bool
	}{
		{"near2^32", 1<<32 - mib, 1<<32 - 3*mib + 12345, false, false},
		{"near2^31", 1<<31 - mib, 1<<31 - mib/2 + 7, false, false},
		{"mixed", 1<<32 - mib, 1<<31 - mib, false, false},
		{"2^32-1", 1<<32 - 1, 1<<32 - 1, false, false},
		{"2^31-1", 1<<31 - 1, 1<<32 - 2, false, false},
		{"lossy/near2^32", 1<<32 - mib, 1<<32 - 2*mib, true, false},
		{"lossy/mixed", 1<<31 - mib, 1<<32 - mib, true, false},
		{"lossy/nosack/2^32-1", 1<<32 - 1, 1<<31 - 1, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := testConfig(ipA), testConfig(ipB)
			ab, ba := linkDelay, linkDelay
			limit := 30 * time.Second
			if tc.lossy {
				ca.SynRetries, cb.SynRetries = 8, 8
				ca.NoSACK, cb.NoSACK = tc.noSACK, tc.noSACK
				ab, ba = lossyLink(11), lossyLink(12)
				limit = 120 * time.Second
			}
			p := newPair(t, ca, cb, ab, ba)
			var calls [2]int
			p.a.sp.isnOverride = func(fastpath.FlowKey) tcp.Seq { calls[0]++; return tcp.Seq(tc.issA) }
			p.b.sp.isnOverride = func(fastpath.FlowKey) tcp.Seq { calls[1]++; return tcp.Seq(tc.issB) }
			before := [2]fastpath.EngineStats{p.a.EngineStats(0), p.b.EngineStats(0)}
			ca2, cb2 := transfer(t, p, n, n, limit)
			if calls[0] != 1 || calls[1] != 1 {
				t.Fatalf("isnOverride called %v times, want once per side", calls)
			}
			// The ISS each side used, as the peer saw it: the first data
			// byte is ISS+1, so the stream occupies [ISS+1, ISS+1+n] with
			// the FIN at ISS+1+n.
			for _, d := range []struct {
				dir string
				iss uint32
			}{{"A->B", tc.issA}, {"B->A", tc.issB}} {
				end := uint64(d.iss) + 1 + n // the FIN's sequence number, unwrapped
				crosses32 := end >= 1<<32
				crosses31 := uint64(d.iss) < 1<<31 && end >= 1<<31 || end >= 1<<32+1<<31
				if !crosses32 && !crosses31 {
					t.Fatalf("%s: ISS %#x + %d bytes crosses neither 2^31 nor 2^32", d.dir, d.iss, n)
				}
				t.Logf("%s: ISS %#x, FIN at %#x (crosses 2^31 %v, 2^32 %v)", d.dir, d.iss, uint32(end), crosses31, crosses32)
			}
			if ca2.recvd != n || cb2.recvd != n {
				t.Fatalf("moved %d/%d bytes", ca2.recvd, cb2.recvd)
			}
			ea, eb := p.a.EngineStats(0), p.b.EngineStats(0)
			if tc.lossy {
				if ea.TxRetransmits+eb.TxRetransmits == before[0].TxRetransmits+before[1].TxRetransmits ||
					ea.RxOOO+eb.RxOOO == before[0].RxOOO+before[1].RxOOO {
					t.Fatalf("no loss recovery exercised across the wrap: A %+v B %+v", ea, eb)
				}
			}
			t.Log(fmt.Sprintf("A %+v\nB %+v", ea, eb))
		})
	}
}
