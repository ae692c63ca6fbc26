package benchcli

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotas/internal/benchmatrix"
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
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"throughput_rps", "p50_us", "p99_us", "p999_us"} {
		if v, _ := r[k].(float64); v <= 0 {
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

// childEnv makes this test binary act as tasbench when tasbench matrix
// runs it as its servers and clients (TestMain).
const childEnv = "TASBENCH_TEST_CHILD=1"

func TestMain(m *testing.M) {
	if os.Getenv("TASBENCH_TEST_CHILD") == "1" {
		os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A tiny matrix (three pairings, one RPC, two HTTP and one bulk cell,
// 200 ms each) in real namespaces: the output has every cell, each moved
// data or says why it was skipped, the reference's ratio is 1, and the
// table and chart render every cell.
func TestMatrixTiny(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: tasbench matrix needs root for namespaces and AF_XDP")
	}
	cells := "rpc-1,gohttp-1,bulk-up"
	if _, err := exec.LookPath("wrk"); err == nil {
		cells += ",http-1"
	} else {
		t.Log("wrk is not installed (scripts/setup.sh installs it): no HTTP cell")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TASBENCH_TEST_CHILD", "") // only the children act as tasbench
	svg := filepath.Join(t.TempDir(), "m.svg")
	var out, errb bytes.Buffer
	args := []string{"matrix", "--quick", "--duration=200ms", "--cells=" + cells,
		"--pairs=linux-linux,linux-gotas,gotas-gotas", "--json", "--svg=" + svg, "--bin=" + exe}
	if code := runWithEnv(childEnv, args, &out, &errb); code != 0 {
		t.Fatalf("tasbench matrix exited %d: %s\n%s", code, errb.String(), out.String())
	}
	var rep benchmatrix.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	checkMatrixCells(t, &rep, strings.Split(cells, ","))
	var table bytes.Buffer
	if err := benchmatrix.WriteTable(&table, &rep); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(table.String(), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == "->" { // workload client -> server ...
			rows++
		}
	}
	if rows != len(rep.Cells) {
		t.Errorf("table has %d rows, want %d:\n%s", rows, len(rep.Cells), table.String())
	}
	checkSVG(t, svg, &rep)
}

// runWithEnv runs tasbench with env added to the environment of the
// processes it starts.
func runWithEnv(env string, args []string, stdout, stderr *bytes.Buffer) int {
	k, v, _ := strings.Cut(env, "=")
	os.Setenv(k, v)
	defer os.Setenv(k, "")
	return Run(args, stdout, stderr)
}

func checkMatrixCells(t *testing.T, rep *benchmatrix.Report, workloads []string) {
	t.Helper()
	if want := 3 * len(workloads); len(rep.Cells) != want {
		t.Fatalf("%d cells, want %d: %+v", len(rep.Cells), want, rep.Cells)
	}
	for _, c := range rep.Cells {
		if c.Skipped != "" {
			if c.Workload != "http-1" || !strings.HasPrefix(c.Pair, "gotas-") {
				t.Errorf("%s %s skipped: %s", c.Pair, c.Workload, c.Skipped)
			}
			continue
		}
		if !c.Moved() || c.Units <= 0 || c.Server.CPU < 0 || c.Client.Voluntary+c.Client.Involuntary == 0 {
			t.Errorf("%s %s moved nothing or measured nothing: %+v", c.Pair, c.Workload, c)
		}
		if c.Unit == "req/s" && !(c.P50Us > 0 && c.P50Us <= c.P99Us && c.P99Us <= c.P999Us) {
			t.Errorf("%s %s: percentiles out of order: %+v", c.Pair, c.Workload, c)
		}
		if c.Pair == "linux-linux" && c.Ratio != 1 {
			t.Errorf("reference %s has ratio %v, want 1", c.Workload, c.Ratio)
		}
		if c.Ratio <= 0 {
			t.Errorf("%s %s has no ratio", c.Pair, c.Workload)
		}
	}
}

func checkSVG(t *testing.T, path string, rep *benchmatrix.Report) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	bars := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "height" && a.Value != "10" { // the legend's swatches are 10 high
					bars++
				}
			}
		}
	}
	moved := 0
	for _, c := range rep.Cells {
		if c.Moved() {
			moved++
		}
	}
	if bars != moved {
		t.Errorf("SVG has %d bars, want one per cell that ran (%d)", bars, moved)
	}
}
