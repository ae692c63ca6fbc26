package benchcli

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nope"},
		{"echo-server"}, {"echo-server", "--port=70000"}, {"echo-server", "--port=7", "--stack=dpdk"},
		{"echo-client", "--addr=bad"}, {"echo-client", "--addr=127.0.0.1:1", "--conns=0"},
		{"bulk", "--addr=127.0.0.1:1", "--duration=-1s"},
	} {
		var out, errb bytes.Buffer
		if code := Run(args, &out, &errb); code != 2 {
			t.Errorf("tasbench %v exited %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestEchoClientJSONOnLoopback(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	go Run([]string{"echo-server", "--bind=127.0.0.1", "--port=" + port}, &bytes.Buffer{}, &bytes.Buffer{})
	var out, errb bytes.Buffer
	for i := 0; ; i++ {
		out.Reset()
		errb.Reset()
		code := Run([]string{"echo-client", "--addr=127.0.0.1:" + port, "--conns=2", "--duration=200ms", "--warmup=0s", "--json"}, &out, &errb)
		if code == 0 {
			break
		}
		if i == 20 {
			t.Fatalf("echo-client exited %d: %s", code, errb.String())
		}
		time.Sleep(50 * time.Millisecond) // the server may not listen yet
	}
	var r map[string]float64
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"throughput_rps", "p50_us", "p99_us", "p999_us"} {
		if r[k] <= 0 {
			t.Errorf("%s = %v, want > 0 in %s", k, r[k], out.String())
		}
	}
}

func TestRouteFlag(t *testing.T) {
	var r routeFlag
	for _, bad := range []string{"10.1.0.0/16", "nope,10.0.0.1", "10.1.0.0/16,x", "fe80::/64,10.0.0.1"} {
		if err := r.Set(bad); err == nil {
			t.Errorf("--ip-route=%s accepted", bad)
		}
	}
	if err := r.Set("10.1.2.3/16,10.0.0.254"); err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || r[0].Dst.String() != "10.1.0.0/16" || r[0].Via.String() != "10.0.0.254" {
		t.Fatalf("parsed %v", r)
	}
}
