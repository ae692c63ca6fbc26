package afxdp

import (
	"testing"

	"gotas/nic/nictest"
)

// The benchmarks run AF_XDP on both ends of a veth between two
// namespaces, once per attach mode. On veth the sender's sendto runs the
// receiver's XDP program and the copy into its UMEM too (in the sender's
// softirq), so the sending side bounds every number here.

func benchModes(b *testing.B, fn func(b *testing.B, a, z *Port)) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			a, z := pair(b, mode)
			fn(b, a, z)
		})
	}
}

func benchRecv(b *testing.B, size int) {
	benchModes(b, func(b *testing.B, a, z *Port) {
		nictest.BenchRecv(b, a.Queues()[0], z.Queues()[0], z.Info().MAC, a.Info().MAC, size)
		reportDrops(b, z)
	})
}

func benchSend(b *testing.B, size int) {
	benchModes(b, func(b *testing.B, a, z *Port) {
		nictest.BenchSend(b, a.Queues()[0], z.Queues()[0], z.Info().MAC, a.Info().MAC, size)
		reportDrops(b, z)
	})
}

// reportDrops shows where undelivered frames went: the receiver's fill
// ring ran dry or its RX ring was full.
func reportDrops(b *testing.B, p *Port) {
	x, err := p.Sockets()[0].XDPStats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(x.Rx_fill_ring_empty_descs), "fill-empty")
	b.ReportMetric(float64(x.Rx_ring_full), "rx-full")
}

func BenchmarkRecv64(b *testing.B)   { benchRecv(b, 64) }
func BenchmarkRecv1500(b *testing.B) { benchRecv(b, 1500) }
func BenchmarkSend64(b *testing.B)   { benchSend(b, 64) }
func BenchmarkSend1500(b *testing.B) { benchSend(b, 1500) }
