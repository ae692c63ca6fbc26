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

// gotas sends bulk data in frames of up to 64 KB that the kernel cuts or
// the veth hands to Linux whole (segmentation offload, --xdp-tx=gso):
// Linux receives every byte intact, and the NIC counts the frames it
// handed on to be cut. With --xdp-tx=ring no frame is.
func TestGotasSendsLargeFramesToLinux(t *testing.T) {
	for _, tc := range []struct {
		tx    string
		large bool
	}{{"gso", true}, {"ring", false}} {
		t.Run(tc.tx, func(t *testing.T) {
			tp := newTopo(t, func(c *gotas.Config) { c.XDPTx = tc.tx })
			lc, gc := tp.linuxToGotas(t, "9100")
			before := tp.stack.Engine().NICStats()
			transfer(t, gc, lc, 9, 64<<20, time.Minute)
			after := tp.stack.Engine().NICStats()
			seg := after.TxSegmented - before.TxSegmented
			if tc.large != (seg > 0) {
				t.Fatalf("%d of %d frames sent to be cut; want some: %v", seg, after.TxFrames-before.TxFrames, tc.large)
			}
			t.Logf("%d of %d frames sent to be cut; TX errors %d, drops %d", seg,
				after.TxFrames-before.TxFrames, after.TxErrors, after.TxDropped)
		})
	}
}
