package slowpath

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gotas/internal/appif"
)

// TestDataPathDoesNotAllocate drives one established connection stage by
// stage: the app appends data and the sender's core transmits it (TX
// path), the receiver's core places it and acknowledges (RX data path),
// the receiving app consumes it, and the sender's core takes the ACKs
// (ACK path). None of it may allocate. The powertcp run covers a paced
// flow (a rate set as the slow path would) that asks for telemetry.
func TestDataPathDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	for _, name := range []string{"reno", "powertcp"} {
		t.Run(name, func(t *testing.T) { dataPathAllocs(t, name) })
	}
}

func dataPathAllocs(t *testing.T, ccName string) {
	cfgB := testConfig(ipB)
	cfgB.CC = ccName
	p := newPair(t, testConfig(ipA), cfgB, linkDelay, linkDelay)
	p.pa.listen(80)
	p.run(time.Second, func() bool { return p.pa.listened })
	p.pb.connect(netip.AddrPortFrom(ipA.Addr(), 80))
	p.run(time.Second, func() bool { return len(p.pa.order) == 1 && len(p.pb.order) == 1 })
	hb := p.pb.order[0].h
	if ccName != "reno" {
		// 100 Gbit/s: paced, but never held back by the pacer here.
		p.b.sh.Flows.Counters[hb.Index()].RateKbps.Store(100_000_000)
	}
	ctxA, ctxB := p.pa.ctx, p.pb.ctx
	evs := make([]appif.Event, 64)
	chunk := pattern[:8*1448]
	coreA, coreB := p.a.cores[0], p.b.cores[0]

	stages := []struct {
		name string
		fn   func()
	}{
		{"tx", func() {
			ctxB.Send(hb, chunk)
			coreB.Step()
		}},
		{"rx-data", func() {
			p.clock.Advance(25 * time.Microsecond) // the link delay
			coreA.Step()
		}},
		{"app", func() {
			n, _ := ctxA.Poll(evs)
			for _, ev := range evs[:n] {
				if ev.Type == appif.EvData {
					ctxA.RxDone(ev.Conn, ev.N)
				}
			}
			coreA.Step()
		}},
		{"ack", func() {
			p.clock.Advance(25 * time.Microsecond)
			coreB.Step()
			n, _ := ctxB.Poll(evs)
			_ = n
		}},
	}
	cycle := func() {
		for _, s := range stages {
			s.fn()
		}
	}
	for range 200 { // warm up: lazily grown buffers reach their size
		cycle()
	}
	// As AllocsPerRun does: one P, so that other goroutines' allocations
	// (the runtime's, the test framework's) do not land in the window.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	per := make([]uint64, len(stages))
	var ms runtime.MemStats
	const runs = 200
	for range runs {
		for i, s := range stages {
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			s.fn()
			runtime.ReadMemStats(&ms)
			per[i] += ms.Mallocs - before
		}
	}
	for i, s := range stages {
		if per[i] != 0 {
			t.Errorf("%s path: %d allocations in %d runs", s.name, per[i], runs)
		}
	}
	if a := testing.AllocsPerRun(100, cycle); a != 0 {
		t.Errorf("%v allocations per cycle", a)
	}
	if st := p.b.EngineStats(0); st.TxSegments < 1000 {
		t.Fatalf("only %d segments sent: the cycle does not exercise the data path", st.TxSegments)
	}
}
