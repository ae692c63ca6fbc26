package interop

import (
	"testing"
	"time"

	"gotas"
)

// In generic XDP mode a Linux sender on veth keeps TSO/GSO, and its GSO
// packets (up to 64 KiB) reach gotas whole over AF_XDP multi-buffer: the
// bytes arrive intact and the NIC counts frames that came in more than
// one buffer. (Native mode on veth takes the sender's TSO away.)
func TestLinuxGSOFramesArriveWhole(t *testing.T) {
	tp := newTopo(t, func(c *gotas.Config) { c.XDPMode = "generic" })
	lc, gc := tp.linuxToGotas(t, "9100")
	before := tp.stack.Engine().NICStats()
	transfer(t, lc, gc, 7, 64<<20, time.Minute)
	after := tp.stack.Engine().NICStats()
	if mb := after.RxMultiBuffer - before.RxMultiBuffer; mb == 0 {
		t.Fatalf("no multi-buffer frame among %d received: the sender's GSO packets did not arrive whole (%+v)",
			after.RxFrames-before.RxFrames, after)
	} else {
		t.Logf("%d of %d frames arrived in several buffers; RX errors %d, drops %d", mb,
			after.RxFrames-before.RxFrames, after.RxErrors, after.RxDropped)
	}
}
