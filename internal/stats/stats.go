// Package stats collects the service's state for operators: applications,
// flows, cores and drops, as one JSON document (served on --metrics-addr,
// read by tasctl stats) and as Prometheus text.
package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gotas/internal/ctlsock"
	"gotas/internal/fastpath"
	"gotas/internal/nic"
	"gotas/internal/slowpath"
)

// Source is what a report is collected from.
type Source struct {
	Stack  *slowpath.Stack
	Server *ctlsock.Server // nil: no control socket (embedded)
}

// Report is the JSON document.
type Report struct {
	Time      time.Time               `json:"time"`
	Addr      string                  `json:"addr"`
	Apps      []App                   `json:"apps"`
	Flows     []Flow                  `json:"flows"`
	Listeners []slowpath.ListenerInfo `json:"listeners"`
	TimeWait  int                     `json:"time_wait"`
	Cores     []Core                  `json:"cores"`
	NIC       nic.Stats               `json:"nic"`
	Slow      slowpath.StackStats     `json:"slow_path"`
	Refused   uint64                  `json:"registrations_refused"`
}

// App is one registered application.
type App struct {
	ID        uint32 `json:"id"`
	Pid       int32  `json:"pid"`
	Uid       uint32 `json:"uid"`
	Flows     int    `json:"flows"`
	Listeners int    `json:"listeners"`
	Contexts  int    `json:"contexts"`
	MaxFlows  int    `json:"max_flows"`
	Dying     bool   `json:"dying,omitempty"`
}

// Flow is one connection.
type Flow struct {
	Local       string `json:"local"`
	Remote      string `json:"remote"`
	State       string `json:"state"`
	Pid         int32  `json:"pid"`
	RxFill      uint32 `json:"rx_fill"`
	TxFill      uint32 `json:"tx_fill"`
	RxBuf       uint32 `json:"rx_buf"`
	TxBuf       uint32 `json:"tx_buf"`
	SRTTus      uint32 `json:"srtt_us"`
	RateKbps    uint32 `json:"rate_kbps"`
	AckedBytes  uint64 `json:"acked_bytes"`
	ECNBytes    uint64 `json:"ecn_bytes"`
	Retransmits uint64 `json:"retransmits"`
	FastRetx    uint64 `json:"fast_retransmits"`
	RTOs        uint64 `json:"rtos"`
}

// Core is one fast-path core's loop and engine counters.
type Core struct {
	Loop   fastpath.Stats       `json:"loop"`
	Engine fastpath.EngineStats `json:"engine"`
}

// Collect builds a report.
func Collect(src Source) (Report, error) {
	st := src.Stack
	snap, err := st.Snapshot(2 * time.Second)
	if err != nil {
		return Report{}, err
	}
	r := Report{Time: time.Now().UTC(), Addr: st.Addr().String(), Listeners: snap.Listeners,
		TimeWait: snap.TimeWait, NIC: st.NICStats(), Slow: st.Stats(), Apps: []App{}, Flows: []Flow{}}
	for i := range st.Cores() {
		r.Cores = append(r.Cores, Core{Loop: st.CoreStats(i), Engine: st.EngineStats(i)})
	}
	reg := map[int32]ctlsock.AppInfo{}
	if src.Server != nil {
		r.Refused = src.Server.Refused()
		for _, a := range src.Server.Apps() {
			reg[a.Pid] = a
		}
	}
	for _, a := range snap.Apps {
		ra := reg[a.Pid]
		r.Apps = append(r.Apps, App{ID: ra.ID, Pid: a.Pid, Uid: ra.Uid, Flows: a.Flows, Listeners: a.Listeners,
			Contexts: a.Contexts, MaxFlows: a.MaxFlows, Dying: a.Dying})
	}
	sort.Slice(r.Apps, func(i, j int) bool { return r.Apps[i].Pid < r.Apps[j].Pid })
	for _, f := range snap.Flows {
		r.Flows = append(r.Flows, Flow{Local: f.Local.String(), Remote: f.Remote.String(), State: f.State, Pid: f.Pid,
			RxFill: f.RxFill, TxFill: f.TxFill, RxBuf: f.RxBuf, TxBuf: f.TxBuf, SRTTus: f.SRTTus, RateKbps: f.RateKbps,
			AckedBytes: f.AckedBytes, ECNBytes: f.ECNBytes, Retransmits: f.Retransmits, FastRetx: f.FastRetx, RTOs: f.RTOs})
	}
	sort.Slice(r.Flows, func(i, j int) bool { return r.Flows[i].Local+r.Flows[i].Remote < r.Flows[j].Local+r.Flows[j].Remote })
	return r, nil
}

// HTTPServer serves reports.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	path string // unix socket to remove, if any
}

// Serve serves /stats (JSON) and /metrics (Prometheus text) on addr:
// HOST:PORT, or unix:PATH.
func Serve(addr string, src Source) (*HTTPServer, error) {
	network, where := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, where = "unix", p
		if c, err := net.Dial("unix", p); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another service is serving there", p)
		}
		os.Remove(p) // stale, from a service that was killed
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen(network, where)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		r, err := Collect(src)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		r, err := Collect(src)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeProm(w, &r)
	})
	h := &HTTPServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	if network == "unix" {
		h.path = where
	}
	go h.srv.Serve(ln)
	return h, nil
}

// Addr is where the server listens.
func (h *HTTPServer) Addr() net.Addr { return h.ln.Addr() }

// Close stops serving.
func (h *HTTPServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if h.path != "" {
		os.Remove(h.path)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func writeProm(w http.ResponseWriter, r *Report) {
	p := func(name string, v any, labels string) { fmt.Fprintf(w, "gotas_%s%s %v\n", name, labels, v) }
	p("apps", len(r.Apps), "")
	p("flows", len(r.Flows), "")
	p("time_wait", r.TimeWait, "")
	p("nic_rx_frames_total", r.NIC.RxFrames, "")
	p("nic_tx_frames_total", r.NIC.TxFrames, "")
	p("nic_rx_dropped_total", r.NIC.RxDropped, "")
	p("nic_tx_dropped_total", r.NIC.TxDropped, "")
	p("established_total", r.Slow.Established, "")
	p("resets_sent_total", r.Slow.RstsSent, "")
	p("apps_freed_total", r.Slow.AppsFreed, "")
	p("registrations_refused_total", r.Refused, "")
	for i, c := range r.Cores {
		l := fmt.Sprintf("{core=\"%d\"}", i)
		p("rx_segments_total", c.Engine.RxSegments, l)
		p("tx_segments_total", c.Engine.TxSegments, l)
		p("retransmits_total", c.Engine.TxRetransmits, l)
		p("rx_out_of_window_total", c.Engine.RxOutOfWindow, l)
		p("contexts_detached_total", c.Engine.ContextsDetached, l)
	}
	for _, a := range r.Apps {
		p("app_flows", a.Flows, fmt.Sprintf("{pid=\"%d\"}", a.Pid))
	}
}

// DefaultAddr is where tas serves reports unless told otherwise.
const DefaultAddr = "unix:/run/gotas/metrics.sock"

// Fetch reads a report from a service serving on addr (HOST:PORT or
// unix:PATH).
func Fetch(addr string) (Report, error) {
	network, where := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, where = "unix", p
	}
	hc := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, where)
		}}}
	resp, err := hc.Get("http://tas/stats")
	if err != nil {
		return Report{}, fmt.Errorf("is tas running with --metrics-addr=%s? %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Report{}, fmt.Errorf("tas at %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(b)))
	}
	var r Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("tas at %s: %w", addr, err)
	}
	return r, nil
}
