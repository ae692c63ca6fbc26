// Package sim runs congestion-control scenarios on the real stack in
// virtual time: every host is a complete slowpath.Stack (fast path, slow
// path, the congestion controller of internal/cc) on a memnic port, and a
// switch forwards frames between the ports. Each switch egress is the
// memnic link toward its host (internal/impair): a rate, a propagation
// delay, a bounded FIFO and ECN marking above a threshold K, so the queue
// the controllers fight over is a real one and a run is a deterministic
// function of its Config (seeds included). Nothing here models TCP.
package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gotas/internal/cc"
	"gotas/internal/impair"
	"gotas/internal/nic/memnic"
	"gotas/internal/slowpath"
)

// ErrConfig is returned for a scenario that cannot run.
var ErrConfig = errors.New("sim: bad config")

// Flow is one transfer from a sender host to the receiver.
type Flow struct {
	Sender int           // sender host index
	Start  time.Duration // virtual time the connect is issued
	Size   int64         // bytes; 0 = send until the run ends
	// Stop, when set, stops an unbounded flow (Size 0) at that time: it
	// shuts down and frees its share (the bandwidth-step scenario).
	Stop time.Duration
}

// Config is one scenario.
type Config struct {
	Seed          int64
	Senders       int           // sender hosts; the receiver is one more
	HostBps       uint64        // every host's link rate
	BottleneckBps uint64        // the switch port toward the receiver (default HostBps)
	Delay         time.Duration // one-way propagation delay of each link
	K             int           // ECN threshold at the bottleneck, bytes (0: no marking)
	Buffer        int           // bottleneck buffer, bytes (0: 4 MB)
	CC            string        // algorithm of every host
	CCParams      cc.Params     // LinkBps defaults to HostBps
	Flows         []Flow
	Duration      time.Duration // virtual time to run (flows with a size may end it early)
	Sample        time.Duration // sampling period of queue and rates (default 100 µs)
	// Stack tunes every host (timers); Prefix, Clock and CC are set here.
	Stack slowpath.Config
	// NoINT makes the switch a plain one: it adds no telemetry, as a path
	// or peer that strips the option (PowerTCP then falls back).
	NoINT bool
	// Progress, when set, is called with the virtual time simulated so
	// far, once per sample period.
	Progress func(time.Duration)
	// NoSeries skips the per-flow rate series (and Rates, Jain): a
	// workload of thousands of flows needs only completion times.
	NoSeries bool
}

// defaultBuffer is the bottleneck buffer: a shallow-buffered switch's
// per-port share is a few MB at most.
const defaultBuffer = 4 << 20

// host is one end system and its switch port.
type host struct {
	st       *slowpath.Stack
	port, sw *memnic.Port // host side, switch side
	mac      [6]byte
	ip       netip.Addr
	app      *app
}

// Net is a star of hosts around one output-queued switch.
type Net struct {
	cfg   Config
	clock *memnic.ManualClock
	start time.Time
	hosts []*host // senders, then the receiver
	bufs  [][]byte
	flows []flowState
	// scratch holds a frame the switch stamped; enqBytes counts the
	// bytes forwarded to the bottleneck (int.go).
	scratch  [1600]byte
	enqBytes uint64

	warmup            time.Duration
	deliveredAtWarmup uint64 // bottleneck wire bytes when the window began
}

func (c *Config) defaults() error {
	if c.Senders < 1 || c.Senders > 250 || c.HostBps == 0 || c.Duration <= 0 {
		return fmt.Errorf("senders %d (1..250), host rate %d, duration %v: %w", c.Senders, c.HostBps, c.Duration, ErrConfig)
	}
	for _, f := range c.Flows {
		if f.Sender < 0 || f.Sender >= c.Senders || f.Size < 0 {
			return fmt.Errorf("flow %+v: %w", f, ErrConfig)
		}
	}
	if c.BottleneckBps == 0 {
		c.BottleneckBps = c.HostBps
	}
	if c.Buffer == 0 {
		c.Buffer = defaultBuffer
	}
	if c.Sample == 0 {
		c.Sample = 100 * time.Microsecond
	}
	if c.CCParams.LinkBps == 0 {
		c.CCParams.LinkBps = c.HostBps
	}
	return nil
}

// macOf is host i's MAC address (locally administered).
func macOf(i int, sw bool) [6]byte {
	m := [6]byte{0x02, 0, 0, byte(i >> 8), byte(i), 1}
	if sw {
		m[5] = 2
	}
	return m
}

// New builds the network; Close releases it.
func New(cfg Config) (*Net, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Net{cfg: cfg, start: time.Unix(1_000_000, 0), bufs: make([][]byte, 64)}
	n.clock = memnic.NewManualClock(n.start)
	for i := range cfg.Senders + 1 {
		if err := n.addHost(i); err != nil {
			n.Close()
			return nil, err
		}
	}
	recv := n.hosts[cfg.Senders]
	for _, h := range n.hosts[:cfg.Senders] {
		h.st.AddNeighbor(recv.ip, recv.mac)
		recv.st.AddNeighbor(h.ip, h.mac)
	}
	return n, nil
}

// addHost makes host i: its port pair, its stack and its application.
func (n *Net) addHost(i int) error {
	cfg := &n.cfg
	up := impair.Config{Seed: cfg.Seed*1000 + int64(2*i), RateBps: cfg.HostBps, Delay: cfg.Delay}
	down := impair.Config{Seed: cfg.Seed*1000 + int64(2*i+1), RateBps: cfg.HostBps, Delay: cfg.Delay}
	if i == cfg.Senders { // the bottleneck: the receiver's switch port
		down.RateBps = cfg.BottleneckBps
		down.QueueLimit = impair.Limit{Bytes: cfg.Buffer}
		if cfg.K > 0 {
			down.ECNThreshold = impair.Limit{Bytes: cfg.K}
		}
	}
	h := &host{mac: macOf(i, false), ip: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)})}
	h.port, h.sw = memnic.Pair(up, down, memnic.WithClock(n.clock), memnic.WithMACs(h.mac, macOf(i, true)))
	sc := cfg.Stack
	sc.Prefix = netip.PrefixFrom(h.ip, 16)
	sc.Clock = n.now
	sc.CC, sc.CCParams = cfg.CC, cfg.CCParams
	if sc.MaxFlows == 0 {
		sc.MaxFlows = 8 + cfg.flowsOf(i) // ids are reused only after TIME_WAIT
	}
	st, err := slowpath.NewStack(h.port, sc)
	if err != nil {
		h.port.Close()
		h.sw.Close()
		return err
	}
	h.st = st
	n.hosts = append(n.hosts, h)
	h.app, err = newApp(n, h)
	return err
}

// now is the stacks' clock: ns since an arbitrary origin.
func (n *Net) now() uint64 { return uint64(n.clock.Now().Sub(n.start)) + 1_000_000_000 }

// elapsed is the virtual time since the run began.
func (n *Net) elapsed() time.Duration { return n.clock.Now().Sub(n.start) }

// Close stops the stacks and closes the ports.
func (n *Net) Close() {
	for _, h := range n.hosts {
		h.st.Stop()
		h.port.Close()
		h.sw.Close()
	}
}

// forward moves every frame the switch ports received to the port of the
// host its destination MAC names (broadcasts to all others); frames for
// unknown MACs are dropped.
func (n *Net) forward() bool {
	worked := false
	for i, h := range n.hosts {
		k, _ := h.sw.Queue().Recv(n.bufs)
		for _, f := range n.bufs[:k] {
			n.deliver(i, f)
		}
		worked = worked || k > 0
	}
	return worked
}

func (n *Net) deliver(from int, f []byte) {
	if len(f) < 6 {
		return
	}
	if f[0]&1 != 0 { // broadcast or multicast: flood
		for j, h := range n.hosts {
			if j != from {
				h.sw.Queue().Send([][]byte{f})
			}
		}
		return
	}
	j := int(f[3])<<8 | int(f[4])
	if j >= len(n.hosts) || n.hosts[j].mac != [6]byte(f[:6]) {
		return
	}
	q := n.hosts[j].sw.Queue()
	if j == n.cfg.Senders { // the bottleneck port
		_, backlog := q.TxBacklog()
		f = n.stamp(f, backlog)
		n.enqBytes += uint64(len(f))
	}
	one := [1][]byte{f}
	q.Send(one[:])
}

// Frame sizes for the base RTT: a full data frame (1500-byte MTU plus the
// Ethernet header) and a pure ACK with timestamps.
const (
	dataFrame = 1514
	ackFrame  = 66
	// payloadPerFrame is a full frame's payload: 1500 less IPv4, TCP and
	// timestamps. Telemetry flows carry 28 bytes less (cc.INTReserve),
	// which their slowdown then includes.
	payloadPerFrame = 1448
)

// BaseRTT is the RTT of an empty network: four propagation delays, a data
// frame serialized on two links and an ACK on two.
func (c *Config) BaseRTT() time.Duration {
	ser := func(bytes int, bps uint64) time.Duration {
		return time.Duration(uint64(bytes) * 8 * 1e9 / bps)
	}
	b := c.BottleneckBps
	if b == 0 {
		b = c.HostBps
	}
	return 4*c.Delay + ser(dataFrame, c.HostBps) + ser(dataFrame, b) + 2*ser(ackFrame, c.HostBps)
}

// flowsOf is how many flows host i takes part in.
func (c *Config) flowsOf(i int) int {
	if i == c.Senders {
		return len(c.Flows)
	}
	n := 0
	for _, f := range c.Flows {
		if f.Sender == i {
			n++
		}
	}
	return n
}

// IdealFCT is the least time a flow of size bytes can take here alone,
// from its connect to its last byte: the handshake (SYN and SYN-ACK, each
// two links of propagation and serialization), the first data frame's
// trip, and the rest of its frames serialized at the bottleneck behind it.
func (c *Config) IdealFCT(size int64) time.Duration {
	ser := func(bytes int64, bps uint64) time.Duration {
		return time.Duration(uint64(bytes) * 8 * 1e9 / bps)
	}
	b := c.BottleneckBps
	if b == 0 {
		b = c.HostBps
	}
	oneWay := func(bytes int64) time.Duration { return 2*c.Delay + ser(bytes, c.HostBps) + ser(bytes, b) }
	const headers = dataFrame - payloadPerFrame
	t := 2*oneWay(ackFrame) + oneWay(min(size, payloadPerFrame)+headers)
	if rest := size - payloadPerFrame; rest > 0 {
		frames := (rest + payloadPerFrame - 1) / payloadPerFrame
		t += ser(rest+frames*headers, b)
	}
	return t
}
