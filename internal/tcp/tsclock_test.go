package tcp

import "testing"

func TestTSClockTicksMilliseconds(t *testing.T) {
	// Two segments 300 µs apart (a reordering delay) carry TSvals at most
	// one tick apart, within a PAWS window of one tick.
	for _, ns := range []uint64{0, 999_999, 1_000_000, 123_456_789_000} {
		if d := TSClock(ns+300_000) - TSClock(ns); d > 1 {
			t.Fatalf("TSClock advanced %d ticks in 300 µs at %d", d, ns)
		}
	}
	if got := TSClock(5_000_000_000); got != 5000 {
		t.Fatalf("TSClock(5 s) = %d, want 5000", got)
	}
	if TSRTTUs(0) != 500 || TSRTTUs(3) != 3000 || TSRTTUs(1<<31) != maxRTTSample {
		t.Fatalf("TSRTTUs: %d %d %d", TSRTTUs(0), TSRTTUs(3), TSRTTUs(1<<31))
	}
}
