package tcp

import "testing"

func TestRTOEstimator(t *testing.T) {
	type step struct {
		sample  uint32 // 0xffffffff: Backoff instead
		rto     uint32
		srtt    uint32
		rttvar  uint32
		backoff int
	}
	const backoff = 0xffffffff
	tests := []struct {
		name        string
		min, max, g uint32
		steps       []step
	}{
		{"RFC 6298 WAN example, defaults", DefaultRTOMin, DefaultRTOMax, DefaultClockGranularity, []step{
			// First: SRTT=R, RTTVAR=R/2, RTO=R+4*R/2.
			{100_000, 300_000, 100_000, 50_000, 0},
			// RTTVAR = 3/4*50000 + 1/4*|100000-200000| = 62500
			// SRTT = 7/8*100000 + 1/8*200000 = 112500; RTO = 112500+250000
			{200_000, 362_500, 112_500, 62_500, 0},
			// |SRTT-R| = 0: RTTVAR = 46875; RTO = 112500+187500
			{112_500, 300_000, 112_500, 46_875, 0},
			{backoff, 600_000, 112_500, 46_875, 1},
			{backoff, 1_200_000, 112_500, 46_875, 2},
			{backoff, 2_400_000, 112_500, 46_875, 3},
			{backoff, 4_800_000, 112_500, 46_875, 4},
			{backoff, 9_600_000, 112_500, 46_875, 5},
			{backoff, 19_200_000, 112_500, 46_875, 6},
			{backoff, 38_400_000, 112_500, 46_875, 7},
			{backoff, 60_000_000, 112_500, 46_875, 8}, // capped at Max
			{backoff, 60_000_000, 112_500, 46_875, 9},
			// A new sample cancels the backoff: RTTVAR = 3/4*46875 +
			// 1/4*12500 = 38281.25, SRTT = 7/8*112500+1/8*100000 = 110937.5
			// RTO = ceil(110937.5 + 153125) = 264063
			{100_000, 264_063, 110_937, 38_281, 0},
		}},
		{"datacenter, Min 0, G 1us", 0, DefaultRTOMax, 1, []step{
			{20, 60, 20, 10, 0},
			// RTTVAR = 3/4*10 + 1/4*10 = 10; SRTT = 7/8*20+30/8 = 21.25
			// RTO = ceil(21.25 + 40) = 62
			{30, 62, 21, 10, 0},
			{backoff, 124, 21, 10, 1},
			{backoff, 248, 21, 10, 2},
		}},
		{"granularity dominates", 0, DefaultRTOMax, 1000, []step{
			{20, 1020, 20, 10, 0},
			{30, 1022, 21, 10, 0}, // ceil(21.25 + 1000)
		}},
		{"min clamp", DefaultRTOMin, DefaultRTOMax, DefaultClockGranularity, []step{
			{20, DefaultRTOMin, 20, 10, 0},
			{backoff, 2 * DefaultRTOMin, 20, 10, 1}, // backoff doubles the clamped value
		}},
		{"max clamp", DefaultRTOMin, DefaultRTOMax, DefaultClockGranularity, []step{
			{50_000_000, DefaultRTOMax, 50_000_000, 25_000_000, 0},
		}},
		{"zero sample", 0, DefaultRTOMax, 7, []step{
			{0, 7, 0, 0, 0},
		}},
		{"huge sample clamped", 0, 0xffffffff, 1, []step{
			{0xfffffffe, 3 << 28, 1 << 28, 1 << 27, 0},
		}},
	}
	for _, tt := range tests {
		e := NewRTOEstimator()
		e.Min, e.Max, e.Granularity = tt.min, tt.max, tt.g
		if e.Timeout() != DefaultRTOInitial || e.HasSample() {
			t.Fatalf("%s: initial RTO %d", tt.name, e.Timeout())
		}
		for i, st := range tt.steps {
			if st.sample == backoff {
				if got := e.Backoff(); got != st.rto {
					t.Errorf("%s step %d: Backoff() = %d, want %d", tt.name, i, got, st.rto)
				}
			} else {
				e.Sample(st.sample)
			}
			if e.Timeout() != st.rto || e.SRTT() != st.srtt || e.RTTVar() != st.rttvar || e.Backoffs() != st.backoff {
				t.Errorf("%s step %d: rto %d srtt %d rttvar %d backoffs %d, want %d %d %d %d", tt.name, i,
					e.Timeout(), e.SRTT(), e.RTTVar(), e.Backoffs(), st.rto, st.srtt, st.rttvar, st.backoff)
			}
		}
		e.Reset()
		if e.Timeout() != max(min(DefaultRTOInitial, tt.max), tt.min) || e.HasSample() || e.Backoffs() != 0 {
			t.Errorf("%s: after Reset rto %d", tt.name, e.Timeout())
		}
	}
}

// TestRTOBackoffBeforeSample: SYN retransmissions back off the initial RTO.
func TestRTOBackoffBeforeSample(t *testing.T) {
	e := NewRTOEstimator()
	for i, want := range []uint32{2_000_000, 4_000_000, 8_000_000, 16_000_000, 32_000_000, 60_000_000} {
		if got := e.Backoff(); got != want {
			t.Fatalf("backoff %d = %d, want %d", i, got, want)
		}
	}
}

// TestRTOConverges: a constant RTT drives RTTVAR towards 0 and the RTO
// towards SRTT + G.
func TestRTOConverges(t *testing.T) {
	e := NewRTOEstimator()
	e.Min, e.Granularity = 0, 10
	for i := 0; i < 200; i++ {
		e.Sample(50)
	}
	// 3/4 truncation drives rttvar8 to exactly 0: RTO = SRTT + G.
	if e.SRTT() != 50 || e.RTTVar() != 0 || e.rttvar8 != 0 || e.Timeout() != 60 {
		t.Fatalf("srtt %d rttvar %d rto %d", e.SRTT(), e.RTTVar(), e.Timeout())
	}
}

func TestRTONoAllocs(t *testing.T) {
	e := NewRTOEstimator()
	i := uint32(0)
	if a := testing.AllocsPerRun(1000, func() { e.Sample(100 + i%50); e.Backoff(); i++ }); a != 0 {
		t.Fatalf("allocs %v", a)
	}
}
