// Package tap is the TAP back-end: a /dev/net/tun device in TAP mode with
// a virtio_net_hdr on every frame (IFF_VNET_HDR). The kernel side of the
// device is an ordinary netdev, so the stack can talk to the host's own
// stack, a bridge or a VM through it.
//
// Offloads are off (TUNSETOFFLOAD 0): the kernel hands over only complete,
// MTU-sized frames and expects the same. A frame that still arrives with
// NEEDS_CSUM has its checksum completed in Recv, so PartialRxCsum is false.
package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotas/internal/nic"
	"gotas/internal/nic/virtio"
)

// Config names the device and says whether to make it.
type Config struct {
	// Name is the interface name, at most 15 bytes. With Create it may be
	// empty, or a pattern such as "tap%d", and the kernel picks.
	Name string

	// Create makes a new device, failing if Name exists; Close deletes it.
	// Otherwise Open attaches to an existing persistent TAP device (one
	// made by `ip tuntap add mode tap`) and Close leaves it.
	Create bool

	// Batch is the number of receive buffers, the most frames one Recv
	// returns (default 64).
	Batch int
}

const hdrLen = virtio.NetHdrMrgLen // with num_buffers, as vhost-user uses

// Port is an opened TAP device with one queue.
type Port struct {
	info nic.Info
	q    *Queue
}

// Queue is the device's file descriptor. It implements nic.Queue.
type Queue struct {
	fd     int
	closed atomic.Bool
	c      nic.Counters

	bufs [][]byte // receive buffers: header, then up to bufLen-hdrLen of frame

	hdr [hdrLen]byte  // the zero header every sent frame gets
	iov [2]unix.Iovec // header, frame: one writev(2) per frame, no copy

	link linkDrops
}

// Open creates or attaches to the device in the network namespace of the
// calling thread, and sets its link up.
func Open(cfg Config) (_ *Port, err error) {
	if len(cfg.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap: interface name %q is too long: at most %d bytes", cfg.Name, unix.IFNAMSIZ-1)
	}
	if cfg.Name == "" && !cfg.Create {
		return nil, errors.New("tap: attaching needs an interface name")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	q := &Queue{fd: fd, link: linkDrops{fd: -1}}
	defer func() {
		if err != nil {
			q.Close() // a device we made goes with its last descriptor
		}
	}()

	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("tap: interface name %q: %w", cfg.Name, err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if cfg.Create {
		flags |= unix.IFF_TUN_EXCL // fail rather than attach to a device someone else owns
	} else if _, err := net.InterfaceByName(cfg.Name); err != nil {
		// TUNSETIFF would create it; attaching must not.
		return nil, fmt.Errorf("tap: attach to %q: %w", cfg.Name, err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		switch {
		case cfg.Create && err == unix.EBUSY:
			return nil, fmt.Errorf("tap: create %q: the interface already exists", cfg.Name)
		case err == unix.EINVAL:
			return nil, fmt.Errorf("tap: TUNSETIFF %q: %w (an invalid name, or an existing device that is not a single-queue TAP)", cfg.Name, err)
		}
		return nil, fmt.Errorf("tap: TUNSETIFF %q: %w", cfg.Name, err)
	}
	name := ifr.Name()
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, hdrLen); err != nil {
		return nil, fmt.Errorf("tap: %s: TUNSETVNETHDRSZ: %w", name, err)
	}
	// Little-endian header fields whatever the host, as in virtio 1.0.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil {
		return nil, fmt.Errorf("tap: %s: TUNSETVNETLE: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
		return nil, fmt.Errorf("tap: %s: TUNSETOFFLOAD: %w", name, err)
	}
	if err := linkUp(name); err != nil {
		return nil, fmt.Errorf("tap: %s: set link up: %w", name, err)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("tap: %s: %w", name, err)
	}
	if err := q.link.open(ifi.Index); err != nil {
		return nil, fmt.Errorf("tap: %s: %w", name, err)
	}
	p := &Port{q: q, info: nic.Info{Name: name, Kind: "tap", MTU: ifi.MTU, Ifindex: ifi.Index, Mode: "vnet-hdr"}}
	copy(p.info.MAC[:], ifi.HardwareAddr)

	// Room for the largest frame the MTU allows and one byte more, so a
	// read that fills a buffer is known to be truncated.
	bufLen := hdrLen + max(nic.MaxFrame, ifi.MTU+18) + 1
	mem := make([]byte, cfg.Batch*bufLen)
	for i := range cfg.Batch {
		q.bufs = append(q.bufs, mem[i*bufLen:(i+1)*bufLen:(i+1)*bufLen])
	}
	q.iov[0].Base = &q.hdr[0]
	q.iov[0].SetLen(hdrLen)
	return p, nil
}

// linkUp sets IFF_UP on name with SIOCSIFFLAGS.
func linkUp(name string) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

// Queues returns the single queue.
func (p *Port) Queues() []nic.Queue { return []nic.Queue{p.q} }

// Info describes the device.
func (p *Port) Info() nic.Info { return p.info }

// Close closes the descriptor. A device Open created is not persistent, so
// the kernel deletes it as the last descriptor closes.
func (p *Port) Close() error { return p.q.Close() }

// Recv reads frames until the device has no more or every buffer is used.
// Views stay valid until the next Recv, which reuses the buffers.
func (q *Queue) Recv(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	n, nbytes := 0, 0
	var dropped, errs uint64
	for n < len(frames) && n < len(q.bufs) {
		buf := q.bufs[n]
		r, _, e := unix.Syscall(unix.SYS_READ, uintptr(q.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			break
		}
		if e != 0 {
			q.count(n, nbytes, dropped, errs)
			return n, fmt.Errorf("tap: read: %w", e)
		}
		if int(r) < hdrLen {
			errs++
			continue
		}
		f := buf[hdrLen:r]
		if int(r) == len(buf) || len(f) > nic.MaxFrame {
			dropped++ // larger than the stack takes (an MTU above 1500)
			continue
		}
		if !virtio.NetHeader(buf[:hdrLen]).CompleteCsum(f) {
			errs++
			continue
		}
		frames[n] = f
		n++
		nbytes += len(f)
	}
	q.count(n, nbytes, dropped, errs)
	return n, nil
}

func (q *Queue) count(n, nbytes int, dropped, errs uint64) {
	if n > 0 {
		q.c.RxFrames.Add(uint64(n))
		q.c.RxBytes.Add(uint64(nbytes))
	}
	if dropped > 0 {
		q.c.RxDropped.Add(dropped)
	}
	if errs > 0 {
		q.c.RxErrors.Add(errs)
	}
}

// Send writes each frame with writev(2), behind the zero header (no
// offloads, checksum complete). A TAP write either takes the whole frame
// or fails; the kernel only pushes back when memory is short.
func (q *Queue) Send(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	i, sent, nbytes := 0, 0, 0
	var bad, dropped uint64
	for i < len(frames) {
		f := frames[i]
		if len(f) == 0 || len(f) > nic.MaxFrame {
			bad++
			i++
			continue
		}
		q.iov[1].Base = &f[0]
		q.iov[1].SetLen(len(f))
		_, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(q.fd), uintptr(unsafe.Pointer(&q.iov[0])), 2)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN || e == unix.ENOBUFS || e == unix.ENOMEM {
			break // the caller retries the rest
		}
		if e != 0 {
			dropped++ // e.g. EIO while the link is down: lost, as on a wire
		} else {
			sent++
			nbytes += len(f)
		}
		i++
	}
	q.iov[1].Base = nil // do not keep the caller's buffer reachable
	if sent > 0 {
		q.c.TxFrames.Add(uint64(sent))
		q.c.TxBytes.Add(uint64(nbytes))
	}
	if bad > 0 {
		q.c.TxErrors.Add(bad)
	}
	if dropped > 0 {
		q.c.TxDropped.Add(dropped)
	}
	return i, nil
}

// PollFD is the device descriptor: readable when a frame waits.
func (q *Queue) PollFD() int { return q.fd }

// Stats returns the counters. RxDropped includes the frames the kernel
// dropped because the device queue (txqueuelen frames, 1000 by default)
// was full.
func (q *Queue) Stats() nic.Stats {
	s := q.c.Snapshot()
	s.RxDropped += q.link.read(!q.closed.Load())
	return s
}

// Close closes the descriptor.
func (q *Queue) Close() error {
	if q.closed.Load() {
		return nil
	}
	q.link.read(true) // keep the last count
	q.closed.Store(true)
	q.link.close()
	return unix.Close(q.fd)
}

// linkDrops follows the netdev's tx_dropped counter, which counts frames
// the kernel sent towards this descriptor and lost: the queue was full
// because Recv was not keeping up. It asks with RTM_GETLINK on a netlink
// socket opened in the device's namespace at Open.
type linkDrops struct {
	mu      sync.Mutex
	fd      int
	ifindex int
	base    uint64 // the counter at Open
	last    uint64 // drops since Open, as of the last read
	buf     []byte
}

func (l *linkDrops) open(ifindex int) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	tv := unix.Timeval{Sec: 1}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	l.fd, l.ifindex, l.buf = fd, ifindex, make([]byte, 16<<10)
	if l.base, err = l.query(); err != nil {
		unix.Close(fd)
		l.fd = -1
		return fmt.Errorf("link statistics: %w", err)
	}
	return nil
}

// read returns the drops since Open, asking the kernel if refresh is set.
func (l *linkDrops) read(refresh bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if refresh && l.fd >= 0 {
		if v, err := l.query(); err == nil && v >= l.base {
			l.last = v - l.base
		}
	}
	return l.last
}

func (l *linkDrops) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// query fetches tx_dropped from the link's IFLA_STATS64.
func (l *linkDrops) query() (uint64, error) {
	ne := binary.NativeEndian
	var req [unix.SizeofNlMsghdr + unix.SizeofIfInfomsg]byte
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.RTM_GETLINK)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[unix.SizeofNlMsghdr+4:], uint32(l.ifindex)) // ifi_index
	if err := unix.Sendto(l.fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	n, _, err := unix.Recvfrom(l.fd, l.buf, 0)
	if err != nil {
		return 0, err
	}
	b := l.buf[:n]
	if len(b) < unix.SizeofNlMsghdr {
		return 0, errors.New("short netlink reply")
	}
	if ne.Uint16(b[4:]) == unix.NLMSG_ERROR {
		if len(b) >= unix.SizeofNlMsghdr+4 {
			return 0, unix.Errno(-int32(ne.Uint32(b[unix.SizeofNlMsghdr:])))
		}
		return 0, errors.New("netlink error")
	}
	end := min(int(ne.Uint32(b[0:])), len(b))
	for off := unix.SizeofNlMsghdr + unix.SizeofIfInfomsg; off+4 <= end; {
		alen, atype := int(ne.Uint16(b[off:])), ne.Uint16(b[off+2:])
		if alen < 4 || off+alen > end {
			break
		}
		// struct rtnl_link_stats64: tx_dropped is the eighth __u64.
		if atype == unix.IFLA_STATS64 && alen >= 4+64 {
			return ne.Uint64(b[off+4+56:]), nil
		}
		off += (alen + 3) &^ 3
	}
	return 0, errors.New("no IFLA_STATS64 in the reply")
}
