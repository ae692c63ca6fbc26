package shm

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkQueueThroughput streams b.N 64-byte messages from a producer
// goroutine to the benchmark goroutine through a 1024-slot queue, writing
// and reading one word per message, publishing once per batch.
func BenchmarkQueueThroughput(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("slot=64/batch=%d", batch), func(b *testing.B) {
			_, p, c := testQueue(b, 64, 1024, nil)
			b.SetBytes(64)
			b.ReportAllocs()
			var wg sync.WaitGroup
			b.ResetTimer()
			wg.Go(func() {
				for seq := 0; seq < b.N; {
					n, _ := p.Reserve(min(batch, b.N-seq))
					for i := range n {
						binary.LittleEndian.PutUint64(p.Slot(i), uint64(seq+i))
					}
					p.Commit(n)
					seq += n
					if n == 0 {
						runtime.Gosched()
					}
				}
			})
			for seq := 0; seq < b.N; {
				n, err := c.Peek(batch)
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					if binary.LittleEndian.Uint64(c.Slot(i)) != uint64(seq+i) {
						b.Fatal("out of order")
					}
				}
				c.Release(n)
				seq += n
				if n == 0 {
					runtime.Gosched()
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mmsgs/s")
		})
	}
}

// BenchmarkByteRing copies 64 KiB chunks through a 1 MiB ring from a writer
// goroutine to the benchmark goroutine (one copy in, one copy out).
func BenchmarkByteRing(b *testing.B) {
	const chunk = 64 << 10
	_, w, rd := testRing(b, 1<<20)
	src, dst := make([]byte, chunk), make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	total := b.N * chunk
	var wg sync.WaitGroup
	b.ResetTimer()
	wg.Go(func() {
		for sent := 0; sent < total; {
			n, _ := w.Write(src[:min(chunk, total-sent)])
			sent += n
			if n == 0 {
				runtime.Gosched()
			}
		}
	})
	for got := 0; got < total; {
		n, err := rd.Read(dst)
		if err != nil {
			b.Fatal(err)
		}
		got += n
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkDoorbellRTT is an eventfd ping-pong between two goroutines that
// block in Wait: one op is one round trip (two rings, two wakeups).
func BenchmarkDoorbellRTT(b *testing.B) {
	ping, pong := newBell(b), newBell(b)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range b.N {
			ping.Wait(-1)
			pong.Ring()
		}
	})
	b.ResetTimer()
	for range b.N {
		ping.Ring()
		pong.Wait(-1)
	}
	wg.Wait()
}

// BenchmarkQueuePingPong bounces one message between two goroutines through
// two queues; one op is one round trip. "spin" busy-polls; "block" parks
// in Consumer.Wait as soon as the queue is empty (worst case of the
// spin-then-block protocol: every message needs a doorbell).
func BenchmarkQueuePingPong(b *testing.B) {
	for _, block := range []bool{false, true} {
		name := "spin"
		if block {
			name = "block"
		}
		b.Run(name, func(b *testing.B) {
			bell1, bell2 := newBell(b), newBell(b)
			_, p1, c1 := testQueue(b, 64, 64, bell1)
			_, p2, c2 := testQueue(b, 64, 64, bell2)
			msg := make([]byte, 64)
			recv := func(c *Consumer, buf []byte) {
				for {
					if ok, _ := c.Pop(buf); ok {
						return
					}
					if block {
						c.Wait(time.Second)
					} else {
						runtime.Gosched()
					}
				}
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				buf := make([]byte, 64)
				for range b.N {
					recv(c1, buf)
					p2.Push(buf)
				}
			})
			b.ResetTimer()
			for range b.N {
				p1.Push(msg)
				recv(c2, msg)
			}
			wg.Wait()
		})
	}
}

// BenchmarkQueueSingleGoroutine produces and consumes batches of 32 in one
// goroutine: the per-message CPU cost of the API without cache-line
// transfers between cores. One op is one message.
func BenchmarkQueueSingleGoroutine(b *testing.B) {
	_, p, c := testQueue(b, 64, 1024, nil)
	for i := 0; i < b.N; i += 32 {
		n, _ := p.Reserve(32)
		for j := range n {
			binary.LittleEndian.PutUint64(p.Slot(j), uint64(j))
		}
		p.Commit(n)
		n, _ = c.Peek(32)
		for j := range n {
			_ = binary.LittleEndian.Uint64(c.Slot(j))
		}
		c.Release(n)
	}
}
