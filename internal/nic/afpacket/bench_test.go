package afpacket_test

import (
	"testing"

	"gotas/internal/nic/nictest"
)

// Benchmarks run afpacket on both ends of a veth: Recv measures the
// receiving queue (xb) and Send the sending one (xa).

func benchRecv(b *testing.B, size int) {
	pa, pb, _, _ := pair(b)
	nictest.BenchRecv(b, pa.Queues()[0], pb.Queues()[0], pb.Info().MAC, pa.Info().MAC, size)
}

func benchSend(b *testing.B, size int) {
	pa, pb, _, _ := pair(b)
	nictest.BenchSend(b, pa.Queues()[0], pb.Queues()[0], pb.Info().MAC, pa.Info().MAC, size)
}

func BenchmarkRecv64(b *testing.B)   { benchRecv(b, 64) }
func BenchmarkRecv1500(b *testing.B) { benchRecv(b, 1500) }
func BenchmarkSend64(b *testing.B)   { benchSend(b, 64) }
func BenchmarkSend1500(b *testing.B) { benchSend(b, 1500) }
