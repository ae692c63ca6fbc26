package testnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotas/internal/cc"
	"gotas/internal/impair"
	"gotas/internal/nic"
)

// Bridge joins two hosts as if on one Ethernet, through a middle namespace
// where this process forwards every frame through an impair.Link per
// direction, in real time. It is the namespace counterpart of nic/memnic:
// the same model, with real kernels or stacks at both ends.
//
//	left [ifLeft] <-veth-> [mleft] middle [mright] <-veth-> [ifRight] right
//
// A goroutine per direction reads frames from one middle veth with a raw
// AF_PACKET socket, enqueues them on the link, and writes them to the
// other veth when the link delivers them, sleeping in ppoll until the next
// frame arrives or falls due.
type Bridge struct {
	mid  *Host
	stop int // eventfd: readable once Close is called
	dirs [2]*bridgeDir
	wg   sync.WaitGroup
	once sync.Once
}

// BridgeStats are one direction's counters: the link model's, plus what
// happened at the sockets around it.
type BridgeStats struct {
	impair.Stats
	Received    uint64 // frames read from the ingress veth
	Sent        uint64 // frames written to the egress veth
	TooBig      uint64 // frames longer than nic.MaxFrame, dropped
	SendErrors  uint64 // writes the egress veth refused (full backlog)
	KernelDrops uint64 // frames the ingress socket's queue had no room for
}

type bridgeDir struct {
	mu      sync.Mutex
	link    *impair.Link
	rx, tx  int // sockets on the ingress and egress veth
	stats   BridgeStats
	lastErr error
	// intRate, when not 0, makes the direction a telemetry switch port of
	// that rate (SetINT); enq counts the bytes it queued, scratch holds a
	// stamped frame.
	intRate uint64
	enq     uint64
	scratch [nic.MaxFrame + cc.INTHopLen]byte
}

var bridges atomic.Uint32

// Bridge connects left and right through a new middle namespace named
// "<prefix>-br<n>": it makes interface ifLeft in left and ifRight in right
// (both up, without addresses) and starts forwarding, cfgLR shaping what
// left sends to right and cfgRL the way back. Lab.Close deletes the middle
// namespace; Bridge.Close only stops forwarding.
//
// ifLeft and ifRight get their TX checksum and segmentation offloads
// turned off: a veth otherwise passes partial checksums and 64 KB segments
// along, which no wire (and not the bridge, reading at most nic.MaxFrame)
// carries. Interface names must not be prefixes of ip(8) keywords ("br"
// reads as "broadcast").
//
// Arrival times come from the kernel's receive stamps, on the wall clock:
// a step of the system clock during a run disturbs the links.
func (l *Lab) Bridge(left *Host, ifLeft string, right *Host, ifRight string, cfgLR, cfgRL impair.Config) (*Bridge, error) {
	linkLR, err := impair.New(cfgLR)
	if err != nil {
		return nil, err
	}
	linkRL, err := impair.New(cfgRL)
	if err != nil {
		return nil, err
	}
	mid, err := l.Host(fmt.Sprintf("br%d", bridges.Add(1)))
	if err != nil {
		return nil, err
	}
	// Without IPv6 the middle kernel has no address of its own and never
	// speaks on the wire it is pretending to be.
	if err := mid.Do(func() error {
		for _, c := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+c+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("testnet: bridge: %w", err)
	}
	if err := l.Link(left, ifLeft, mid, "mleft"); err != nil {
		return nil, err
	}
	if err := l.Link(mid, "mright", right, ifRight); err != nil {
		return nil, err
	}
	if err := left.NoTxOffload(ifLeft); err != nil {
		return nil, err
	}
	if err := right.NoTxOffload(ifRight); err != nil {
		return nil, err
	}

	b := &Bridge{mid: mid, stop: -1}
	var sl, sr int
	err = mid.Do(func() (err error) {
		if sl, err = packetSocket("mleft"); err != nil {
			return err
		}
		if sr, err = packetSocket("mright"); err != nil {
			unix.Close(sl)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testnet: bridge: %w", err)
	}
	if b.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		unix.Close(sl)
		unix.Close(sr)
		return nil, err
	}
	b.dirs[0] = &bridgeDir{link: linkLR, rx: sl, tx: sr}
	b.dirs[1] = &bridgeDir{link: linkRL, rx: sr, tx: sl}
	for _, d := range b.dirs {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			d.run(b.stop)
		}()
	}
	return b, nil
}

// SetINT makes direction dir (0 left to right, 1 back) append a PowerTCP
// telemetry record (cc.StampINT) to every data frame that asks for one,
// as a switch port of rateBps would: the queue the frame finds, the bytes
// sent before it, the arrival time and the rate. 0 turns it off.
func (b *Bridge) SetINT(dir int, rateBps uint64) {
	d := b.dirs[dir]
	d.mu.Lock()
	d.intRate = rateBps
	d.mu.Unlock()
}

// Backlog is the bytes direction dir's queue holds now.
func (b *Bridge) Backlog(dir int) int {
	d := b.dirs[dir]
	d.mu.Lock()
	defer d.mu.Unlock()
	_, bytes := d.link.Queue(time.Now())
	return bytes
}

// stamp applies SetINT to a frame arriving at at; d.mu is held.
func (d *bridgeDir) stamp(f []byte, at time.Time) []byte {
	if d.intRate == 0 {
		return f
	}
	_, q := d.link.Queue(at)
	hop := cc.MakeWireHop(uint64(q), d.enq-min(d.enq, uint64(q)), uint64(at.UnixNano()), d.intRate)
	out, _ := cc.StampINT(d.scratch[:], f, hop)
	d.enq += uint64(len(out))
	return out
}

// Middle is the namespace the bridge forwards in.
func (b *Bridge) Middle() *Host { return b.mid }

// Stats returns the counters of the left-to-right and right-to-left
// directions.
func (b *Bridge) Stats() (lr, rl BridgeStats) {
	return b.dirs[0].snapshot(), b.dirs[1].snapshot()
}

// Close stops forwarding and closes the sockets; the links stay until
// Lab.Close. It returns the socket errors a forwarder stopped on, if any.
func (b *Bridge) Close() error {
	var err error
	b.once.Do(func() {
		_, _ = unix.Write(b.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		b.wg.Wait()
		for _, d := range b.dirs {
			d.snapshot() // collect the last kernel drops
			d.mu.Lock()
			err = errors.Join(err, d.lastErr)
			unix.Close(d.rx) // the other direction's tx
			d.rx = -1        // so snapshot cannot read a reused descriptor
			d.mu.Unlock()
		}
		unix.Close(b.stop)
	})
	return err
}

func (d *bridgeDir) snapshot() BridgeStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Reading PACKET_STATISTICS resets it, so it is summed here.
	if d.rx >= 0 {
		if st, err := unix.GetsockoptTpacketStats(d.rx, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			d.stats.KernelDrops += uint64(st.Drops)
		}
	}
	s := d.stats
	s.Stats = d.link.Stats()
	return s
}

// batch bounds the frames handled per loop iteration, so a flood in one
// step cannot hold back deliveries for long.
const batch = 64

func (d *bridgeDir) run(stop int) {
	// A real link does not pause when the machine is busy. The forwarder
	// gets its own thread at the highest nice priority so that other
	// tests sharing the CPUs delay it little; the thread dies with the
	// goroutine (it is never unlocked), so the priority goes nowhere else.
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -20)

	buf := make([]byte, nic.MaxFrame)
	oob := make([]byte, 64)
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	out := make([][]byte, batch)
	fds := []unix.PollFd{{Fd: int32(d.rx), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for {
		d.mu.Lock()
		// Wall time only, to compare with the kernel's receive stamps.
		now := time.Now().Round(0)
		got := 0
		for ; got < batch; got++ {
			msg.SetControllen(len(oob))
			// MSG_TRUNC makes recvmsg return the frame's real length.
			n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(d.rx), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_TRUNC)
			if errno == unix.EAGAIN || errno == unix.EINTR {
				break
			}
			if errno != 0 {
				d.lastErr = fmt.Errorf("testnet: bridge recvmsg: %w", errno)
				d.mu.Unlock()
				return
			}
			d.stats.Received++
			if int(n) > len(buf) {
				d.stats.TooBig++
				continue
			}
			// The link sees when the frame really arrived, not when this
			// goroutine got to it: a forwarder kept off the CPU for a while
			// then still keeps the link's rate and queue right.
			at, ok := rxStamp(oob[:msg.Controllen])
			if !ok || at.After(now) {
				at = now
			}
			d.link.Enqueue(d.stamp(buf[:n], at), at)
		}
		for {
			k := d.link.Dequeue(now, out)
			for _, f := range out[:k] {
				if _, err := unix.Write(d.tx, f); err != nil {
					d.stats.SendErrors++
				} else {
					d.stats.Sent++
				}
			}
			if k < len(out) {
				break
			}
		}
		next, pending := d.link.NextDeadline()
		d.mu.Unlock()
		if got == batch {
			continue // more may be waiting: read on before sleeping
		}
		var ts *unix.Timespec
		if pending {
			t := unix.NsecToTimespec(max(0, int64(time.Until(next))))
			ts = &t
		}
		if _, err := unix.Ppoll(fds, ts, nil); err != nil && err != unix.EINTR {
			d.lastErr = fmt.Errorf("testnet: bridge ppoll: %w", err)
			return
		}
		if fds[1].Revents != 0 {
			return
		}
	}
}

// rxStamp finds the SO_TIMESTAMPNS receive time in a control message
// buffer.
func rxStamp(oob []byte) (time.Time, bool) {
	ne := binary.NativeEndian
	for len(oob) >= unix.SizeofCmsghdr {
		// struct cmsghdr: u64 len, i32 level, i32 type, then the data.
		n := int(ne.Uint64(oob))
		if n < unix.SizeofCmsghdr || n > len(oob) {
			break
		}
		if int32(ne.Uint32(oob[8:])) == unix.SOL_SOCKET && int32(ne.Uint32(oob[12:])) == unix.SO_TIMESTAMPNS &&
			n >= unix.SizeofCmsghdr+16 {
			return time.Unix(int64(ne.Uint64(oob[16:])), int64(ne.Uint64(oob[24:]))), true
		}
		oob = oob[min(len(oob), (n+7)&^7):]
	}
	return time.Time{}, false
}

// packetSocket opens a raw socket for every frame on ifname in the calling
// thread's namespace. It ignores the frames it sends itself, gets a large
// receive buffer so a burst queues instead of being dropped, and has the
// kernel stamp each frame's arrival.
func packetSocket(ifname string) (int, error) {
	ifi, err := interfaceIndex(ifname)
	if err != nil {
		return -1, err
	}
	// Protocol 0 receives nothing until bind, so no frame from another
	// interface slips in first.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, o := range [][3]int{
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8 << 20},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
	} {
		if err = unix.SetsockoptInt(fd, o[0], o[1], o[2]); err != nil {
			break
		}
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	return fd, nil
}

func interfaceIndex(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return int(ifr.Uint32()), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// NoTxOffload turns off, on ifname in h, every TX offload that hands the
// peer something no wire carries: checksum offload (partial checksums) and
// all segmentation offloads (64 KB "frames"), as `ethtool -K` would. The
// features are looked up by name, so kernels that add new ones (such as
// tx-tcp-accecn-segmentation, which survives turning off checksums) are
// covered.
func (h *Host) NoTxOffload(ifname string) error {
	return h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ethtool := func(buf []byte) error {
			// struct ifreq with its union holding a pointer to buf.
			var ifr struct {
				name [unix.IFNAMSIZ]byte
				data unsafe.Pointer
				_    [24 - unsafe.Sizeof(uintptr(0))]byte
			}
			copy(ifr.name[:], ifname)
			ifr.data = unsafe.Pointer(&buf[0])
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
			if errno != 0 {
				return fmt.Errorf("testnet: ethtool ioctl %#x on %s: %w", binary.NativeEndian.Uint32(buf), ifname, errno)
			}
			return nil
		}
		const ssFeatures, strLen = 4, 32 // ETH_SS_FEATURES, ETH_GSTRING_LEN
		ne := binary.NativeEndian

		// struct ethtool_sset_info: cmd, reserved, sset_mask, data[1].
		info := make([]byte, 20)
		ne.PutUint32(info, unix.ETHTOOL_GSSET_INFO)
		ne.PutUint64(info[8:], 1<<ssFeatures)
		if err := ethtool(info); err != nil {
			return err
		}
		n := int(ne.Uint32(info[16:]))

		// struct ethtool_gstrings: cmd, string_set, len, data.
		names := make([]byte, 12+n*strLen)
		ne.PutUint32(names, unix.ETHTOOL_GSTRINGS)
		ne.PutUint32(names[4:], ssFeatures)
		ne.PutUint32(names[8:], uint32(n))
		if err := ethtool(names); err != nil {
			return err
		}

		// struct ethtool_sfeatures: cmd, size, then {valid, requested}
		// blocks; valid bits with requested 0 turn features off.
		blocks := (n + 31) / 32
		set := make([]byte, 8+8*blocks)
		ne.PutUint32(set, unix.ETHTOOL_SFEATURES)
		ne.PutUint32(set[4:], uint32(blocks))
		for i := range n {
			name := string(bytes.TrimRight(names[12+i*strLen:12+(i+1)*strLen], "\x00"))
			// Generic segmentation is done by the kernel before the
			// driver, so it may stay.
			if strings.HasPrefix(name, "tx-checksum") || name == "tx-gso-list" ||
				strings.HasPrefix(name, "tx-") && strings.HasSuffix(name, "segmentation") && name != "tx-generic-segmentation" {
				off := 8 + 8*(i/32)
				ne.PutUint32(set[off:], ne.Uint32(set[off:])|1<<(i%32))
			}
		}
		// A positive result only says some features were not changeable.
		return ethtool(set)
	})
}
