package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/stat; 100 on every Linux ABI
// gotas targets.
const clockTicks = 100

// cpuBusy returns the machine's total non-idle CPU time so far, from the
// "cpu" line of /proc/stat, or 0 if it cannot be read.
func cpuBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, _ := strconv.ParseUint(f, 10, 64)
		busy += v
	}
	return time.Duration(busy) * time.Second / clockTicks
}
