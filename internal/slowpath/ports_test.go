package slowpath

import (
	"testing"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// TestEphemeralPortsPerDestination: one destination can use the whole
// ephemeral range, another destination still gets ports (the same ones),
// and a listener's port is never handed out.
func TestEphemeralPortsPerDestination(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(40000, 16)
	sp := r.s.sp
	x := fastpath.FlowKey{LocalIP: r.s.ip, RemoteIP: wire.Addr4{10, 0, 0, 2}, RemotePort: 80}
	y := fastpath.FlowKey{LocalIP: r.s.ip, RemoteIP: wire.Addr4{10, 0, 0, 3}, RemotePort: 80}
	seen := map[uint16]bool{}
	const n = ephemeralHi - ephemeralLo + 1
	for i := range n - 1 { // less the listener's port
		k := x
		if !sp.getPort(&k) {
			t.Fatalf("port %d of %d for one destination: none", i, n-1)
		}
		if seen[k.LocalPort] || k.LocalPort == 40000 || k.LocalPort < ephemeralLo || k.LocalPort > ephemeralHi {
			t.Fatalf("port %d handed out (again?)", k.LocalPort)
		}
		seen[k.LocalPort] = true
	}
	if k := x; sp.getPort(&k) {
		t.Fatalf("port %d beyond the range", k.LocalPort)
	}
	k := y
	if !sp.getPort(&k) || !seen[k.LocalPort] {
		t.Fatal("another destination cannot share a port")
	}
	if got := r.s.Resources().Ports; got != n {
		t.Fatalf("%d ports held, want %d", got, n)
	}
	sp.releasePort(k)
	for p := range seen {
		sp.releasePort(fastpath.FlowKey{LocalIP: r.s.ip, RemoteIP: x.RemoteIP, LocalPort: p, RemotePort: 80})
	}
	if got := r.s.Resources().Ports; got != 1 {
		t.Fatalf("%d ports held after release, want the listener's", got)
	}
}
