package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"

	"gotas"
	"gotas/internal/bench"
	"gotas/internal/fastpath"
)

// demoDebug holds the demo's undocumented knobs for profiling, read from
// the environment so that they stay out of the flag list:
//
//	GOTAS_DEMO_CONNS=1,64        connection counts to run
//	GOTAS_DEMO_SERVERS=gotas     which servers to drive (gotas, Linux)
//	GOTAS_DEMO_CPUPROFILE=file   CPU profile of this process (the gotas
//	                             server) during the gotas runs; one file per
//	                             run, suffixed with the connection count
//	GOTAS_DEMO_PROCS=3           GOMAXPROCS of this process after the stack starts
//	GOTAS_DEMO_THREADS=1         per-run context switches of this process's
//	                             threads (a proxy for sleeps and wakeups)
type demoDebug struct {
	w        io.Writer
	connList []int
	servers  string
	profile  string
	threads  bool
	st       *gotas.Stack
}

func newDemoDebug(w io.Writer, st *gotas.Stack) *demoDebug {
	d := &demoDebug{w: w, st: st, servers: os.Getenv("GOTAS_DEMO_SERVERS"), profile: os.Getenv("GOTAS_DEMO_CPUPROFILE"),
		threads: os.Getenv("GOTAS_DEMO_THREADS") != ""}
	if n, err := strconv.Atoi(os.Getenv("GOTAS_DEMO_PROCS")); err == nil && n > 0 {
		runtime.GOMAXPROCS(n)
	}
	for _, f := range strings.Split(os.Getenv("GOTAS_DEMO_CONNS"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			d.connList = append(d.connList, n)
		}
	}
	return d
}

func (d *demoDebug) conns(def []int) []int {
	if len(d.connList) > 0 {
		return d.connList
	}
	return def
}

func (d *demoDebug) wantServer(name string) bool {
	return d.servers == "" || strings.Contains(strings.ToLower(d.servers), strings.ToLower(name))
}

// start begins the instrumentation of one run; the returned function ends
// it and reports.
func (d *demoDebug) start(server string, conns int) func(bench.EchoResult) {
	var es0 fastpath.EngineStats
	if d.threads && d.st != nil {
		es0 = d.st.Engine().EngineStats(0)
	}
	var prof *os.File
	if d.profile != "" && server == "gotas" {
		ext := filepath.Ext(d.profile)
		name := strings.TrimSuffix(d.profile, ext) + "-" + strconv.Itoa(conns) + ext
		if f, err := os.Create(name); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				prof = f
			} else {
				f.Close()
			}
		}
	}
	var before map[string]threadSwitches
	if d.threads {
		before = readThreadSwitches()
	}
	return func(r bench.EchoResult) {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		if before == nil {
			return
		}
		after := readThreadSwitches()
		reqs := float64(r.Requests)
		if d.st != nil && server == "gotas" {
			es := d.st.Engine().EngineStats(0)
			fmt.Fprintf(d.w, "engine per request: rx segs %.2f, tx segs %.2f, pure acks %.2f\n",
				float64(es.RxSegments-es0.RxSegments)/max(reqs, 1), float64(es.TxSegments-es0.TxSegments)/max(reqs, 1),
				float64(es.TxAcks-es0.TxAcks)/max(reqs, 1))
		}
		fmt.Fprintf(d.w, "%s conns=%d: %d requests; per-thread context switches per request (voluntary/involuntary):\n", server, conns, r.Requests)
		for tid, a := range after {
			b := before[tid]
			dv, dn := a.vol-b.vol, a.invol-b.invol
			if dv+dn < 100 {
				continue
			}
			fmt.Fprintf(d.w, "  tid %s %-16s %6.2f / %6.2f\n", tid, a.name, float64(dv)/max(reqs, 1), float64(dn)/max(reqs, 1))
		}
	}
}

type threadSwitches struct {
	name       string
	vol, invol uint64
}

func readThreadSwitches() map[string]threadSwitches {
	out := map[string]threadSwitches{}
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var t threadSwitches
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				t.name = v
			case "voluntary_ctxt_switches":
				t.vol, _ = strconv.ParseUint(v, 10, 64)
			case "nonvoluntary_ctxt_switches":
				t.invol, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		out[e.Name()] = t
	}
	return out
}
