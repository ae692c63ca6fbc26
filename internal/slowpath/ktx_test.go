package slowpath

import (
	"testing"

	"gotas/internal/fastpath"
	"gotas/internal/wire"
)

// TestKtxRemoveNotDropped: with the core's KTX queue full, closing a
// connection must still reach the core (it used to be dropped, leaking the
// flow, its rings and its port forever); frames are dropped and counted.
func TestKtxRemoveNotDropped(t *testing.T) {
	r := newRaw(t, testConfig(ipA), nil)
	r.listen(80, 16)
	r.handshake(40000, 1000, synOpts(1460, 5))
	if len(r.app.order) != 1 || r.s.Resources().Flows != 1 {
		t.Fatalf("not established: %+v", r.s.Resources())
	}
	frame := r.frame(seg{sport: 1, dport: 2, flags: wire.TCPFlagACK})
	for range ctlSlots {
		r.s.sp.send(frame)
	}
	r.s.sp.send(frame) // no room: dropped
	if d := r.s.Stats().KtxDropped; d != 1 {
		t.Fatalf("KtxDropped %d, want 1", d)
	}
	c := r.app.order[0]
	if err := r.app.ctx.Close(c.h); err != nil {
		t.Fatal(err)
	}
	c.closed = true
	r.s.sp.poll() // the slow path alone: the queue is still full
	removes := 0
	for _, m := range r.ktx {
		if m.Type == fastpath.KtxRemove {
			removes++
		}
	}
	if removes != 1 {
		t.Fatalf("%d KtxRemove messages, want 1", removes)
	}
	r.settle()
	if res := r.s.Resources(); res.Flows != 0 || res.Conns != 0 {
		t.Fatalf("after close with a full KTX queue: %+v", res)
	}
}
