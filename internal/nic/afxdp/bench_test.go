package afxdp

import (
	"testing"

	"gotas/internal/nic/nictest"
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

// BenchmarkRecvDrain measures Recv alone, without the sender in the loop:
// with the timer stopped the peer fills the RX ring with 64-byte frames,
// then Recv drains them in batches of 64. ns/op is our cost per frame.
func BenchmarkRecvDrain(b *testing.B) {
	a, z := pair(b, ModeNative)
	tx, rx := a.Sockets()[0], z.Sockets()[0]
	const burst = 2048 // fits the 4096-chunk RX ring
	out := make([][]byte, 64)
	for i := range out {
		out[i] = nictest.Frame(make([]byte, 64), z.Info().MAC, a.Info().MAC, 64, uint32(i))
	}
	in := make([][]byte, 64)
	b.ResetTimer()
	for got := 0; got < b.N; {
		b.StopTimer()
		for sent := 0; sent < burst; {
			n, err := tx.Send(out[:min(len(out), burst-sent)])
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		for rx.rx.producer.Load()-rx.rx.local < burst {
		}
		b.StartTimer()
		for left := burst; left > 0; {
			n, _ := rx.Recv(in)
			left -= n
			got += n
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
