// Package afpacket is the AF_PACKET back-end: a TPACKET_V3 receive ring
// and a TPACKET_V3 transmit ring, both mmap'd, on a raw packet socket bound
// to one interface. It needs no driver support, so it works on any netdev
// (veth, TAP, physical NICs), at a few hundred thousand frames per second
// per queue.
//
// The socket runs with PACKET_VNET_HDR: every frame in either ring carries
// a virtio_net_hdr in front. On receive it says where a partial checksum
// (CHECKSUM_PARTIAL, common on veth) starts, so Recv completes it and the
// stack always sees valid checksums; on transmit it lifts the kernel's
// "longer than MTU+14 and not VLAN-tagged" check, so untagged frames up to
// nic.MaxFrame go out, as on the other back-ends.
//
// Transmit uses the TX ring rather than sendmmsg(2): one sendto(2) sends a
// whole batch with no per-frame msghdr/iovec import, and the kernel hangs
// the ring pages on the sk_buff instead of copying the frame again. In
// paired runs on a veth (shared 2-vCPU VM, so noisy) sender CPU per frame
// was even with sendmmsg for 64-byte frames and 10-30% lower in five of
// six runs for 1500-byte ones; both allocate nothing.
//
// Limits: a frame larger than nic.MaxFrame (a GSO/GRO super-frame, when the
// peer is a kernel stack with TSO on; turn it off there) is dropped and
// counted in RxDropped. Frames reach Recv a block at a time, so at low
// rates they wait up to RetireTimeout.
package afpacket

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gotas/internal/nic"
	"gotas/internal/nic/virtio"
)

// Config says which interface to open and how to size the rings.
type Config struct {
	Ifname string

	// Queues is the number of queues (default 1). With more than one, each
	// has its own socket and rings, joined in a PACKET_FANOUT_HASH group so
	// that all frames of a flow land on the same queue.
	Queues int

	// RxBlockSize and RxBlocks size each receive ring: RxBlocks blocks of
	// RxBlockSize bytes, a multiple of the page size. The kernel hands a
	// block over when it is full or RetireTimeout after opening it, so at
	// moderate rates each block holds about RetireTimeout of traffic and
	// the ring rides out a consumer stall of about RxBlocks*RetireTimeout:
	// many small blocks beat few big ones. Defaults 64 KiB x 128 (8 MiB:
	// 400 small or 40 full-size frames a block).
	RxBlockSize, RxBlocks int

	// RetireTimeout is how long the kernel keeps filling a block before
	// handing it over part-full, which bounds the added latency at low rates
	// (default, and minimum, 1 ms).
	RetireTimeout time.Duration

	// TxFrames is the number of slots in each transmit ring (default 512).
	TxFrames int
}

const (
	txFrameSize = 2048 // a TX slot: tpacket3_hdr, virtio_net_hdr, frame
	txBlockSize = 1 << 16
	txDataOff   = 48 // TPACKET_ALIGN(sizeof(tpacket3_hdr)): where TX data starts
	vnetLen     = virtio.NetHdrLen

	// Offsets in struct tpacket_block_desc (version, offset_to_priv, then
	// tpacket_hdr_v1).
	blkStatus   = 8
	blkNumPkts  = 12
	blkFirstPkt = 16
)

// Port is an opened interface.
type Port struct {
	info   nic.Info
	queues []nic.Queue
}

// Queue is one socket with its pair of rings. It implements nic.Queue.
type Queue struct {
	fd     int
	mem    []byte // the mmap: RX blocks, then TX slots
	closed atomic.Bool
	c      nic.Counters

	// Receive ring.
	rx        []byte
	blockSize int
	blocks    int
	cur       int // block Recv reads from
	held      bool
	left      int // frames of block cur not yet returned
	off       int // offset in block cur of the next frame
	release   int // finished blocks before cur to hand back on the next Recv

	// Transmit ring.
	tx        []byte
	txSlots   int
	txHead    int  // next slot to fill
	txLast    int  // last slot filled
	txPending bool // the kernel left frames unsent; kick again
}

// Open opens cfg.Ifname. It needs CAP_NET_RAW (and CAP_NET_ADMIN for the
// larger send buffer), in the network namespace of the calling thread.
func Open(cfg Config) (*Port, error) {
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.RxBlockSize <= 0 {
		cfg.RxBlockSize = 64 << 10
	}
	if cfg.RxBlocks <= 0 {
		cfg.RxBlocks = 128
	}
	if cfg.RetireTimeout < time.Millisecond {
		cfg.RetireTimeout = time.Millisecond
	}
	if cfg.TxFrames <= 0 {
		cfg.TxFrames = 512
	}
	if cfg.RxBlockSize%unix.Getpagesize() != 0 {
		return nil, fmt.Errorf("afpacket: RxBlockSize %d is not a multiple of the page size", cfg.RxBlockSize)
	}
	ifi, err := net.InterfaceByName(cfg.Ifname)
	if err != nil {
		return nil, fmt.Errorf("afpacket: interface %q: %w", cfg.Ifname, err)
	}
	p := &Port{info: nic.Info{
		Name: ifi.Name, Kind: "afpacket", MTU: ifi.MTU, Ifindex: ifi.Index,
		Mode: "tpacket-v3",
	}}
	copy(p.info.MAC[:], ifi.HardwareAddr)
	fanoutID := -1
	for range cfg.Queues {
		q, err := openQueue(cfg, ifi.Index, &fanoutID)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("afpacket: %s: %w", cfg.Ifname, err)
		}
		p.queues = append(p.queues, q)
	}
	return p, nil
}

func openQueue(cfg Config, ifindex int, fanoutID *int) (_ *Queue, err error) {
	// Protocol 0: receive nothing until bind, so no frame from another
	// interface slips into the ring first.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	q := &Queue{fd: fd}
	defer func() {
		if err != nil {
			q.Close()
		}
	}()
	opts := []struct {
		name     string
		opt, val int
	}{
		{"PACKET_VERSION", unix.PACKET_VERSION, unix.TPACKET_V3},
		{"PACKET_VNET_HDR", unix.PACKET_VNET_HDR, 1},
		// A TX slot the kernel rejects is skipped rather than stalling
		// the ring (Send already refuses malformed frames).
		{"PACKET_LOSS", unix.PACKET_LOSS, 1},
		{"PACKET_QDISC_BYPASS", unix.PACKET_QDISC_BYPASS, 1},
		{"PACKET_IGNORE_OUTGOING", unix.PACKET_IGNORE_OUTGOING, 1},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, o.val); err != nil {
			return nil, fmt.Errorf("%s: %w", o.name, err)
		}
	}
	// Every frame in flight from the TX ring counts against the send
	// buffer; make it hold the whole ring so a kick never stops short for
	// lack of it (a TAP keeps up to txqueuelen unread frames in flight).
	// Without CAP_NET_ADMIN the sysctl-capped SO_SNDBUF must do.
	sndbuf := cfg.TxFrames * 4096
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
	}

	q.blockSize, q.blocks = cfg.RxBlockSize, cfg.RxBlocks
	rxReq := unix.TpacketReq3{
		Block_size:     uint32(q.blockSize),
		Block_nr:       uint32(q.blocks),
		Frame_size:     txFrameSize, // V3 RX frames are variable; this only has to divide the block
		Frame_nr:       uint32(q.blockSize / txFrameSize * q.blocks),
		Retire_blk_tov: uint32((cfg.RetireTimeout + time.Millisecond - 1) / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &rxReq); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	perBlock := txBlockSize / txFrameSize
	txBlocks := (cfg.TxFrames + perBlock - 1) / perBlock
	q.txSlots = txBlocks * perBlock
	txReq := unix.TpacketReq3{
		Block_size: txBlockSize, Block_nr: uint32(txBlocks),
		Frame_size: txFrameSize, Frame_nr: uint32(q.txSlots),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &txReq); err != nil {
		return nil, fmt.Errorf("PACKET_TX_RING: %w", err)
	}
	rxLen := q.blockSize * q.blocks
	q.mem, err = unix.Mmap(fd, 0, rxLen+q.txSlots*txFrameSize,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap rings: %w", err)
	}
	q.rx, q.tx = q.mem[:rxLen], q.mem[rxLen:]

	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if cfg.Queues > 1 {
		if err := joinFanout(fd, fanoutID); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// joinFanout puts fd in the fanout group *id, or makes a new group with a
// free id (PACKET_FANOUT_FLAG_UNIQUEID) and stores it in *id.
func joinFanout(fd int, id *int) error {
	if *id < 0 {
		arg := unix.PACKET_FANOUT_HASH | unix.PACKET_FANOUT_FLAG_UNIQUEID
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg<<16); err != nil {
			return fmt.Errorf("PACKET_FANOUT: %w", err)
		}
		v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
		if err != nil {
			return fmt.Errorf("PACKET_FANOUT id: %w", err)
		}
		*id = v & 0xffff
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, unix.PACKET_FANOUT_HASH<<16|*id); err != nil {
		return fmt.Errorf("PACKET_FANOUT join: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Queues returns the port's queues.
func (p *Port) Queues() []nic.Queue { return p.queues }

// Info describes the port. Checksums are completed in Recv, so
// PartialRxCsum is false.
func (p *Port) Info() nic.Info { return p.info }

// Close closes every queue.
func (p *Port) Close() error {
	var errs []error
	for _, q := range p.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

func u32(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

func (q *Queue) block(i int) []byte { return q.rx[i*q.blockSize : (i+1)*q.blockSize] }

// Recv returns frames from the receive ring. Views stay valid until the next
// Recv, which is when blocks they came from go back to the kernel.
func (q *Queue) Recv(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	for ; q.release > 0; q.release-- {
		i := (q.cur - q.release + q.blocks) % q.blocks
		atomic.StoreUint32(u32(q.block(i), blkStatus), unix.TP_STATUS_KERNEL)
	}
	if q.txPending {
		q.kick()
	}
	n, nbytes := 0, 0
	var dropped, errs uint64
	for n < len(frames) {
		b := q.block(q.cur)
		if !q.held {
			// The load orders the reads of the block after the kernel's
			// hand-over, as the store above orders ours before returning it.
			if atomic.LoadUint32(u32(b, blkStatus))&unix.TP_STATUS_USER == 0 {
				break
			}
			q.held = true
			q.left = int(*u32(b, blkNumPkts))
			q.off = int(*u32(b, blkFirstPkt))
		}
		if q.left == 0 {
			q.held = false
			q.release++
			q.cur = (q.cur + 1) % q.blocks
			continue
		}
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&b[q.off]))
		start := q.off + int(h.Mac)
		f := b[start : start+int(h.Snaplen)]
		q.off += int(h.Next_offset)
		q.left--

		vlan := h.Status&unix.TP_STATUS_VLAN_VALID != 0
		if wire := len(f) + 4*b2i(vlan); h.Snaplen != h.Len || wire > nic.MaxFrame {
			dropped++ // oversize, e.g. a GSO super-frame from a kernel peer
			continue
		}
		// The checksum offsets count from the untagged frame.
		vh := virtio.NetHeader(b[start-vnetLen : start])
		if !vh.CompleteCsum(f) {
			errs++
			continue
		}
		if vlan {
			// The kernel strips a VLAN tag before packet sockets see the
			// frame; put it back so the stack sees the wire frame. The
			// consumed virtio header leaves room in front.
			tpid := uint16(0x8100)
			if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = h.Hv1.Vlan_tpid
			}
			start -= 4
			copy(b[start:], b[start+4:start+16])
			b[start+12], b[start+13] = byte(tpid>>8), byte(tpid)
			b[start+14], b[start+15] = byte(h.Hv1.Vlan_tci>>8), byte(h.Hv1.Vlan_tci)
			f = b[start : start+len(f)+4]
		}
		frames[n] = f
		n++
		nbytes += len(f)
	}
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
	return n, nil
}

// Send copies frames into free TX slots and has the kernel send them with
// one sendto(2). A slot is free again once the kernel has freed the sk_buff
// built from it, which on a veth or TAP is when the peer has taken the frame.
func (q *Queue) Send(frames [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, nic.ErrClosed
	}
	i, sent, nbytes := 0, 0, 0
	var bad uint64
	for ; i < len(frames); i++ {
		f := frames[i]
		if len(f) == 0 || len(f) > nic.MaxFrame {
			bad++
			continue
		}
		slot := q.tx[q.txHead*txFrameSize : (q.txHead+1)*txFrameSize]
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&slot[0]))
		if atomic.LoadUint32(&h.Status) != unix.TP_STATUS_AVAILABLE {
			break // ring full: the rest are the caller's
		}
		h.Next_offset = 0 // the kernel refuses variable-size TX slots
		h.Len = uint32(vnetLen + len(f))
		h.Snaplen = h.Len
		clear(slot[txDataOff : txDataOff+vnetLen]) // no offloads
		copy(slot[txDataOff+vnetLen:], f)
		atomic.StoreUint32(&h.Status, unix.TP_STATUS_SEND_REQUEST)
		q.txLast = q.txHead
		if q.txHead++; q.txHead == q.txSlots {
			q.txHead = 0
		}
		sent++
		nbytes += len(f)
	}
	var err error
	if sent > 0 || q.txPending {
		err = q.kick()
	}
	if sent > 0 {
		q.c.TxFrames.Add(uint64(sent))
		q.c.TxBytes.Add(uint64(nbytes))
	}
	if bad > 0 {
		q.c.TxErrors.Add(bad)
	}
	return i, err
}

// kick asks the kernel to send every SEND_REQUEST slot. With MSG_DONTWAIT
// it returns once they are handed to the device, without waiting for
// completion. If the kernel stops early (send buffer full, device queue
// full: it then puts the slot back to SEND_REQUEST), the next Send or Recv
// kicks again.
func (q *Queue) kick() error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	last := (*unix.Tpacket3Hdr)(unsafe.Pointer(&q.tx[q.txLast*txFrameSize]))
	q.txPending = atomic.LoadUint32(&last.Status) == unix.TP_STATUS_SEND_REQUEST
	switch e {
	case 0, unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
		return nil
	}
	// The queued frames stay in the ring and go out on a later kick if the
	// condition clears (a link that comes back up).
	return fmt.Errorf("afpacket: send: %w", e)
}

// PollFD is the socket: it polls readable once a block is handed over.
func (q *Queue) PollFD() int { return q.fd }

// Stats returns the counters, with the kernel's ring drops folded into
// RxDropped. PACKET_STATISTICS clears on read, so each read is added.
func (q *Queue) Stats() nic.Stats {
	if !q.closed.Load() {
		q.foldDrops()
	}
	return q.c.Snapshot()
}

func (q *Queue) foldDrops() {
	if st, err := unix.GetsockoptTpacketStatsV3(q.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		q.c.RxDropped.Add(uint64(st.Drops))
	}
}

// Close unmaps the rings and closes the socket.
func (q *Queue) Close() error {
	if q.closed.Load() {
		return nil
	}
	q.foldDrops() // keep the last drops
	q.closed.Store(true)
	var err error
	if q.mem != nil {
		err = unix.Munmap(q.mem)
		q.mem, q.rx, q.tx = nil, nil, nil
	}
	return errors.Join(err, unix.Close(q.fd))
}
