package bench

import (
	"errors"
	"os"
	"testing"
	"time"
)

// The command name in /proc/PID/stat may hold spaces and parentheses;
// utime and stime are counted after the last ')'.
func TestStatCPU(t *testing.T) {
	line := []byte("4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0\n")
	got, err := statCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 300 * time.Second / clockTicks; got != want {
		t.Fatalf("statCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"4242 no-paren S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x y"} {
		if _, err := statCPU([]byte(bad)); err == nil {
			t.Errorf("statCPU(%q) accepted", bad)
		}
	}
}

// ReadUsage of this process sees at least the switches and CPU that
// getrusage has counted for it, and a pid that does not exist is
// ErrNoProcess.
func TestReadUsageSelf(t *testing.T) {
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) { // some CPU time to count
	}
	time.Sleep(time.Millisecond) // and a voluntary switch
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Voluntary == 0 || u.CPU <= 0 {
		t.Fatalf("ReadUsage(self) = %+v", u)
	}
	if s := SelfUsage(); s.Voluntary == 0 || s.CPU < u.CPU-time.Second/clockTicks {
		t.Fatalf("SelfUsage = %+v, /proc says %+v", s, u)
	}
	if _, err := ReadUsage(1 << 30); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("ReadUsage of a missing pid: %v", err)
	}
}
