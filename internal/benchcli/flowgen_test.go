package benchcli

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotas/internal/bench"
)

func TestFlowgenSim(t *testing.T) {
	dir := t.TempDir()
	cdf := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(cdf, []byte("0 0\n2000 50\n50000 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(dir, "plot.svg")
	var out, errb bytes.Buffer
	args := []string{"flowgen", "--sim", "--cdf=" + cdf, "--flows=20", "--hosts=2", "--load=0.5",
		"--cc=powertcp,dctcp-win", "--json", "--svg=" + svg}
	if rc := Run(args, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	var runs []FlowgenRun
	if err := json.Unmarshal(out.Bytes(), &runs); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(runs) != 2 || runs[0].CC != "powertcp" || runs[1].CC != "dctcp-win" {
		t.Fatalf("runs %+v", runs)
	}
	for _, r := range runs {
		n := 0
		for _, b := range r.Buckets {
			n += b.Flows
			if b.P50 < 1 || b.P99 < b.P50 {
				t.Fatalf("%s: bucket %+v: a slowdown is at least 1 and p99 >= p50", r.CC, b)
			}
		}
		if r.Finished != 20 || n != 20 {
			t.Fatalf("%s: %d finished, %d in buckets, want 20", r.CC, r.Finished, n)
		}
	}
	if errb.Len() != 0 {
		t.Fatalf("progress output without a terminal: %q", errb.String())
	}
	if b, err := os.ReadFile(svg); err != nil || strings.Count(string(b), "<polyline") != 4 {
		t.Fatalf("svg: %v, %d lines", err, strings.Count(string(b), "<polyline"))
	}
}

// A CDF that is not one is a usage error (status 2) naming the line.
func TestFlowgenRejects(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte("0 0\n100 0.5\n50 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{{[]string{"flowgen", "--sim", "--cdf=" + bad}, "bad.txt:3:"}, {[]string{"flowgen"}, "--addr"},
		{[]string{"flowgen", "--sim", "--dist=hadoop"}, "websearch"}, {[]string{"flowgen", "--sim", "--load=2"}, "--load"}} {
		var out, errb bytes.Buffer
		if rc := Run(c.args, &out, &errb); rc != 2 || !strings.Contains(errb.String(), c.msg) {
			t.Fatalf("%v: exit %d, %q; want 2 and %q", c.args, rc, errb.String(), c.msg)
		}
	}
}

// Live: the flows go over the kernel's TCP (loopback) to a bulk-server,
// each connection confirmed by the server's byte count.
func TestFlowgenLiveLinux(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go bench.BulkServer(ln)
	var out, errb bytes.Buffer
	args := []string{"flowgen", "--addr=" + ln.Addr().String(), "--dist=websearch", "--flows=30", "--load=0.5",
		"--rate=10000000000", "--rtt=50us", "--json"}
	if rc := Run(args, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	var runs []FlowgenRun
	if err := json.Unmarshal(out.Bytes(), &runs); err != nil || len(runs) != 1 || !runs[0].Live || runs[0].CC != "linux" {
		t.Fatalf("%v: %s", err, out.String())
	}
	n := 0
	for _, b := range runs[0].Buckets {
		n += b.Flows
	}
	if n != 30 {
		t.Fatalf("%d flows in the buckets, want 30", n)
	}
	if rc := Run([]string{"flowgen", "--dist=websearch"}, &out, &errb); rc != 2 {
		t.Fatalf("live run without --addr: exit %d, want 2", rc)
	}
}
