// Package afxdp is the AF_XDP back-end: one XDP socket per device queue,
// each with its own UMEM, fed by an XDP program that steers only the
// service addresses' traffic and passes everything else to Linux.
//
// Sockets run in copy mode (virtual devices such as veth have no
// zero-copy), with XDP_USE_NEED_WAKEUP. Open must run in the network
// namespace of the interface (with the calling goroutine's thread locked
// there, as testnet.Host.Do does); the queues work from any goroutine
// afterwards.
package afxdp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"gotas/internal/nic"
)

// Mode selects how the XDP program attaches.
type Mode int

const (
	// ModeAuto tries native (driver) mode and falls back to generic; on
	// veth with multi-buffer sockets it tries generic first (see attach).
	ModeAuto Mode = iota
	// ModeNative attaches in the driver (XDP_FLAGS_DRV_MODE) or fails.
	ModeNative
	// ModeGeneric attaches on the skb path (XDP_FLAGS_SKB_MODE), which any
	// device supports, at the cost of an skb per frame. On veth, generic
	// XDP sees every frame as rx_queue_index 0 (measured), so only queue
	// 0's socket receives there.
	ModeGeneric
)

func (m Mode) String() string {
	switch m {
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return "auto"
}

// Config says what to open.
type Config struct {
	Ifname string

	// ServiceIP and ServiceIPs are the IPv4 addresses whose traffic the
	// sockets get; a zero ServiceIP is ignored.
	ServiceIP  [4]byte
	ServiceIPs [][4]byte
	// StealARPICMP steers ARP for the service addresses and ICMP echo
	// requests to them as well (SteerARPICMP). Set it when Linux does not
	// own the addresses on this interface.
	StealARPICMP bool

	Mode Mode
	// ZeroCopy tries a zero-copy bind first and falls back to copy mode
	// where the driver refuses it.
	ZeroCopy bool
	// MultiBuffer loads a frags-aware program and binds with XDP_USE_SG,
	// so frames larger than a chunk arrive (reassembled by Recv, up to
	// maxUnit) instead of being dropped: the Linux peer's GSO packets in
	// generic mode on veth, jumbo frames elsewhere. Where the kernel
	// refuses either, the port opens without it (Info.Mode tells).
	MultiBuffer bool

	// Tx says how the queues transmit: on the XSK's TX ring only (the
	// zero value), or with a packet socket beside it for frames the
	// kernel cuts into segments (TxSegments, segtx.go).
	Tx TxPath

	// Queues is how many device queues to open, from queue 0; 0 opens all
	// RX queues of the device.
	Queues int

	// RxFrames and TxFrames are the UMEM chunks per queue for each
	// direction, rounded up to a power of two; they are also the ring
	// sizes. Defaults: 4096 and 2048 (12 MiB of UMEM per queue). On veth
	// the sender's softirq fills the RX ring at over 1 Mpps, so 4096 RX
	// chunks ride out a few milliseconds in which the receiving goroutine
	// is descheduled; 2048 lost frames under load in measurements.
	RxFrames, TxFrames int
}

// Port is an opened interface. It implements nic.Port.
type Port struct {
	info   nic.Info
	queues []*Queue
	nq     []nic.Queue
	steer  *steering
	link   link.Link
	closed bool
}

// Open opens cfg.Ifname: loads the steering program, binds one socket per
// queue and attaches the program.
func Open(cfg Config) (p *Port, err error) {
	ifi, err := net.InterfaceByName(cfg.Ifname)
	if err != nil {
		return nil, fmt.Errorf("afxdp: %w", err)
	}
	p = &Port{info: nic.Info{Name: ifi.Name, Kind: "afxdp", MTU: ifi.MTU, Ifindex: ifi.Index}}
	copy(p.info.MAC[:], ifi.HardwareAddr)
	driver, devQueues := deviceInfo(ifi)
	// veth hands frames over as the sender's skb, whose TCP/UDP checksum
	// may be only the pseudo-header sum (CHECKSUM_PARTIAL).
	p.info.PartialRxCsum = driver == "veth"

	n := cfg.Queues
	if n == 0 {
		n = devQueues
	}
	if n > devQueues {
		return nil, fmt.Errorf("afxdp: %s has %d RX queues, %d asked for", cfg.Ifname, devQueues, n)
	}
	raiseMemlock()

	defer func() {
		if err != nil {
			p.Close()
			p = nil
		}
	}()
	if p.steer, err = newSteering(devQueues, cfg.MultiBuffer); err != nil && cfg.MultiBuffer {
		cfg.MultiBuffer = false // a kernel without BPF_F_XDP_HAS_FRAGS
		p.steer, err = newSteering(devQueues, false)
	}
	if err != nil {
		return p, err
	}
	flags := SteerTCP
	if cfg.StealARPICMP {
		flags |= SteerARPICMP
	}
	ips := cfg.ServiceIPs
	if cfg.ServiceIP != ([4]byte{}) {
		ips = append([][4]byte{cfg.ServiceIP}, ips...)
	}
	for _, ip := range ips {
		if err = p.steer.addService(ip, flags); err != nil {
			return p, fmt.Errorf("afxdp: add service %v: %w", net.IP(ip[:]), err)
		}
	}

	qc := queueConfig{
		ifindex:     ifi.Index,
		rxFrames:    pow2(cfg.RxFrames, 4096),
		txFrames:    pow2(cfg.TxFrames, 2048),
		zeroCopy:    cfg.ZeroCopy,
		multiBuffer: cfg.MultiBuffer,
	}
	for i := range n {
		qc.queue = i
		q, err := newQueue(qc)
		if err != nil {
			return p, err
		}
		q.openSegmentTx(ifi.Index, cfg.Tx, driver != "veth")
		p.queues = append(p.queues, q)
		p.nq = append(p.nq, q)
		if err = p.steer.setSocket(i, q.fd); err != nil {
			return p, fmt.Errorf("afxdp: XSKMAP update: %w", err)
		}
	}

	// Attach last, so that no steered frame finds its queue without a
	// socket (those would be passed to Linux).
	if err = p.attach(ifi.Index, cfg.Mode, driver == "veth"); err != nil {
		return p, fmt.Errorf("afxdp: attach XDP to %s: %w", cfg.Ifname, err)
	}
	return p, nil
}

// attach attaches the steering program in mode, trying native then
// generic for ModeAuto, and records the mode in Info. A bpf_link
// detaches when closed or when the process dies.
//
// On veth with multi-buffer sockets ModeAuto tries generic first: there
// the Linux peer keeps GSO and its 64 KiB packets arrive whole (native
// mode takes TSO from the peer), and an attached generic program costs
// Linux's own TCP on the interface far less (docs/PERF.md, "Attach
// mode": Linux -> gotas bulk 2.8-3.3x faster at a third of the server CPU
// per byte, Linux -> Linux bulk beside it 0.97x of a plain veth against
// 0.34x native). Without multi-buffer, generic mode would drop every GSO
// packet, so native stays first.
func (p *Port) attach(ifindex int, mode Mode, veth bool) error {
	modes := []Mode{ModeNative, ModeGeneric}
	switch {
	case mode != ModeAuto:
		modes = []Mode{mode}
	case veth && p.queues[0].sg:
		modes = []Mode{ModeGeneric, ModeNative}
	}
	var errs []error
	for _, m := range modes {
		f := link.XDPDriverMode
		if m == ModeGeneric {
			f = link.XDPGenericMode
		}
		var err error
		p.link, err = link.AttachXDP(link.XDPOptions{Program: p.steer.prog, Interface: ifindex, Flags: f})
		if err == nil {
			p.info.Mode = m.String()
			if p.queues[0].sg {
				p.info.Mode += "+sg"
			}
			if p.queues[0].seg != nil {
				p.info.Mode += "+gso"
			}
			return nil
		}
		errs = append(errs, fmt.Errorf("%v mode: %w", m, err))
	}
	return errors.Join(errs...)
}

// Queues implements nic.Port.
func (p *Port) Queues() []nic.Queue { return p.nq }

// Sockets returns the queues with their AF_XDP specifics (XDPStats).
func (p *Port) Sockets() []*Queue { return p.queues }

// Info implements nic.Port.
func (p *Port) Info() nic.Info { return p.info }

// ZeroCopy reports whether the sockets run in zero-copy mode.
func (p *Port) ZeroCopy() bool { return len(p.queues) > 0 && p.queues[0].zc }

// AddService steers traffic to ip by flags (SteerTCP, SteerARPICMP),
// replacing its previous flags.
func (p *Port) AddService(ip [4]byte, flags uint32) error {
	return p.steer.addService(ip, flags)
}

// RemoveService stops steering traffic to ip.
func (p *Port) RemoveService(ip [4]byte) error {
	return p.steer.services.Delete(ip)
}

// Close detaches the program first, so Linux gets the traffic back at
// once, then closes the sockets and maps.
func (p *Port) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
	}
	for _, q := range p.queues {
		errs = append(errs, q.Close())
	}
	if p.steer != nil {
		p.steer.Close()
	}
	return errors.Join(errs...)
}

func pow2(n, def int) uint32 {
	if n <= 0 {
		n = def
	}
	v := uint32(1)
	for int(v) < n {
		v <<= 1
	}
	return v
}

// deviceInfo returns the driver name and the number of RX queues. It asks
// ethtool first (ETHTOOL_GCHANNELS), since /sys/class/net shows the
// namespace that mounted /sys, not necessarily the caller's.
func deviceInfo(ifi *net.Interface) (driver string, queues int) {
	queues = 1
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", queues
	}
	defer unix.Close(fd)
	if d, err := unix.IoctlGetEthtoolDrvinfo(fd, ifi.Name); err == nil {
		driver = unix.ByteSliceToString(d.Driver[:])
	}
	if n := ethtoolRxChannels(fd, ifi.Name); n > 0 {
		return driver, n
	}
	if n := sysfsRxQueues(ifi); n > 0 {
		return driver, n
	}
	return driver, queues
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	Cmd                                       uint32
	MaxRx, MaxTx, MaxOther, MaxCombined       uint32
	RxCount, TxCount, OtherCount, CombinedCnt uint32
}

const ethtoolGChannels = 0x3c

func ethtoolRxChannels(fd int, name string) int {
	ch := ethtoolChannels{Cmd: ethtoolGChannels}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&ch)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0
	}
	return int(ch.RxCount + ch.CombinedCnt)
}

// sysfsRxQueues counts /sys/class/net/IF/queues/rx-*, if that directory
// describes this very interface (same ifindex).
func sysfsRxQueues(ifi *net.Interface) int {
	dir := filepath.Join("/sys/class/net", ifi.Name)
	b, err := os.ReadFile(filepath.Join(dir, "ifindex"))
	if err != nil || len(b) == 0 {
		return 0
	}
	if idx, err := strconv.Atoi(string(b[:len(b)-1])); err != nil || idx != ifi.Index {
		return 0
	}
	m, _ := filepath.Glob(filepath.Join(dir, "queues", "rx-*"))
	return len(m)
}
