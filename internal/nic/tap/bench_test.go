package tap_test

import (
	"testing"

	"gotas/internal/nic/nictest"
)

// Benchmarks pair the TAP queue with afpacket on the TAP's own netdev:
// Recv measures the TAP descriptor reading what afpacket sends into the
// netdev, Send the TAP descriptor writing what afpacket then receives.

func benchRecv(b *testing.B, size int) {
	tp, ap := setup(b)
	nictest.BenchRecv(b, ap.Queues()[0], tp.Queues()[0], peerMAC, tp.Info().MAC, size)
}

func benchSend(b *testing.B, size int) {
	tp, ap := setup(b)
	nictest.BenchSend(b, tp.Queues()[0], ap.Queues()[0], tp.Info().MAC, peerMAC, size)
}

func BenchmarkRecv64(b *testing.B)   { benchRecv(b, 64) }
func BenchmarkRecv1500(b *testing.B) { benchRecv(b, 1500) }
func BenchmarkSend64(b *testing.B)   { benchSend(b, 64) }
func BenchmarkSend1500(b *testing.B) { benchSend(b, 1500) }
