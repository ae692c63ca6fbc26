package afxdp

import (
	"golang.org/x/sys/unix"
)

// Multi-buffer receive (XDP_USE_SG, Linux 6.6+). A frame larger than one
// chunk arrives as several RX descriptors, every one but the last with
// XDP_PKT_CONTD set (Documentation/networking/af_xdp.rst, "Multi-Buffer
// Support"). The kernel publishes all of a packet's descriptors with one
// producer update, but a caller's batch may end inside one, so a packet
// whose last descriptor is not visible yet is left on the ring for the
// next Recv.
//
// On veth in generic mode such frames are the Linux peer's GSO packets,
// up to 64 KiB. Recv copies their pieces into one of a few per-queue
// buffers and hands each on as one frame, as GRO would: the stack then
// sees one TCP segment, and acknowledges it as one.

const (
	// maxUnit is the largest frame a multi-buffer queue hands on: the
	// largest IPv4 packet (its 16-bit total length, RFC 791) with an
	// Ethernet header and one VLAN tag (IEEE 802.1Q).
	maxUnit = 65535 + 14 + 4

	// unitBufs is how many reassembled frames one Recv batch can return;
	// a batch stops early when they are used up. Eight 64 KiB units are
	// 512 KiB per queue, twice the default receive window.
	unitBufs = 8
)

// descOK reports whether an RX descriptor lies inside one RX chunk, after
// the headroom the kernel keeps in front of every copied packet. The
// kernel writes the descriptors, but a wrong one must cost a counted drop,
// not a slice out of range.
func (q *Queue) descOK(d *unix.XDPDesc) bool {
	chunk := d.Addr & chunkMask
	return chunk < uint64(q.umem.rxFrames)*frameSize && d.Addr+uint64(d.Len) <= chunk+frameSize
}

// recvSG is Recv for a socket bound with XDP_USE_SG; avail descriptors
// are on the RX ring. It returns how many frames it stored.
func (q *Queue) recvSG(frames [][]byte, avail uint32) int {
	mem := q.umem.mem
	var i uint32 // descriptors consumed
	var bytes, bad uint64
	n, units := 0, 0
	for n < len(frames) && i < avail {
		d := q.rx.at(q.rx.local + i)
		if d.Options&unix.XDP_PKT_CONTD == 0 { // a frame in one chunk
			q.hold(d)
			i++
			if !q.descOK(d) {
				bad++
				continue
			}
			end := d.Addr + uint64(d.Len)
			frames[n] = mem[d.Addr:end:end]
			n++
			bytes += uint64(d.Len)
			continue
		}
		last := i
		for last < avail && q.rx.at(q.rx.local+last).Options&unix.XDP_PKT_CONTD != 0 {
			last++
		}
		if last == avail { // its last piece is not on the ring yet
			if i == 0 && avail == q.rx.size {
				// A full ring without a packet's end cannot drain:
				// drop it all rather than stall.
				for ; i < avail; i++ {
					q.hold(q.rx.at(q.rx.local + i))
				}
				bad++
			}
			break
		}
		if units == unitBufs {
			break
		}
		f, ok := q.gather(i, last)
		i = last + 1
		if !ok {
			bad++
			continue
		}
		frames[n] = f
		n++
		units++
		bytes += uint64(len(f))
	}
	q.rx.release(i)
	q.counters.RxFrames.Add(uint64(n))
	q.counters.RxBytes.Add(bytes)
	if units > 0 {
		q.counters.RxMultiBuffer.Add(uint64(units))
	}
	if bad > 0 {
		q.counters.RxErrors.Add(bad)
	}
	return n
}

// gather copies the pieces in descriptors first..last (relative to the
// RX ring's consumer) into the next unit buffer, holding their chunks for
// the fill ring. It reports false, dropping the frame, if a piece lies
// outside its chunk or the whole exceeds maxUnit.
func (q *Queue) gather(first, last uint32) ([]byte, bool) {
	buf := q.units[q.nunits][:0]
	ok := true
	for k := first; k <= last; k++ {
		d := q.rx.at(q.rx.local + k)
		q.hold(d)
		if !ok || !q.descOK(d) || len(buf)+int(d.Len) > maxUnit {
			ok = false
			continue
		}
		buf = append(buf, q.umem.mem[d.Addr:d.Addr+uint64(d.Len)]...)
	}
	if !ok {
		return nil, false
	}
	q.nunits++
	return buf, true
}

// hold keeps d's chunk for the fill ring, refilled on the next Recv. A
// chunk outside the RX region (a bad descriptor) is not given back: the
// kernel would refuse it.
func (q *Queue) hold(d *unix.XDPDesc) {
	chunk := d.Addr & chunkMask
	if chunk < uint64(q.umem.rxFrames)*frameSize {
		q.held[q.nheld] = chunk
		q.nheld++
	}
}
