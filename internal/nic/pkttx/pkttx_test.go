package pkttx_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"gotas/internal/nic/afpacket"
	"gotas/internal/nic/nictest"
	"gotas/internal/nic/pkttx"
	"gotas/internal/wire"
)

var (
	srcIP = wire.Addr4{10, 253, 0, 1}
	dstIP = wire.Addr4{10, 253, 0, 2}
)

// rig is a pkttx socket on "xa" and an AF_PACKET port on "xb" that sees
// what crossed the veth.
type rig struct {
	tx     *pkttx.Socket
	rx     *afpacket.Port
	srcMAC wire.MAC
	dstMAC wire.MAC
}

// newRig makes the veth; with wire set, "xa" has every TX offload off, so
// the kernel itself cuts frames and completes checksums in software, as a
// peer on a real wire would see them.
func newRig(t *testing.T, wireFrames bool) *rig {
	t.Helper()
	ha, hb := nictest.Veth(t)
	if wireFrames {
		if err := ha.NoTxOffload("xa"); err != nil {
			t.Fatal(err)
		}
	}
	r := &rig{}
	var err error
	if r.srcMAC, err = ha.MAC("xa"); err != nil {
		t.Fatal(err)
	}
	if r.dstMAC, err = hb.MAC("xb"); err != nil {
		t.Fatal(err)
	}
	if err := hb.Do(func() (err error) { r.rx, err = afpacket.Open(afpacket.Config{Ifname: "xb"}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.rx.Close() })
	if err := ha.Do(func() error {
		ifi, err := net.InterfaceByName("xa")
		if err != nil {
			return err
		}
		r.tx, err = pkttx.Open(ifi.Index, 8, 1<<20)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.tx.Close() })
	return r
}

// tcpFrame builds an Ethernet/IPv4/TCP frame with timestamps and payload,
// its checksum field holding the pseudo-header sum (the SendSegments
// contract for frames with a segment size).
func (r *rig) tcpFrame(seq uint32, flags wire.TCPFlags, payload []byte) []byte {
	buf := make([]byte, pkttx.MaxFrame)
	k := wire.PutEthernet(buf, r.dstMAC, r.srcMAC, wire.EtherTypeIPv4)
	ipOff := k
	k += wire.IPv4MinHeaderLen
	var o wire.TCPOptions
	o.Present = wire.OptTimestamps
	o.TSVal, o.TSEcr = 7, 9
	hl := wire.PutTCP(buf[k:], wire.TCPFields{SrcPort: 40000, DstPort: 9, SeqNum: seq, AckNum: 5,
		Flags: flags, Window: 100}, &o)
	copy(buf[k+hl:], payload)
	segLen := hl + len(payload)
	wire.PutIPv4(buf[ipOff:], wire.IPv4Fields{TotalLen: uint16(wire.IPv4MinHeaderLen + segLen), ID: 100,
		DF: true, TTL: 64, Protocol: wire.IPProtoTCP, Src: srcIP, Dst: dstIP})
	wire.SetTCPPartialChecksum(srcIP, dstIP, buf[k:k+segLen])
	return buf[:k+segLen]
}

// receive collects the TCP frames from srcIP that arrive within a second,
// until want of them have.
func (r *rig) receive(t *testing.T, want int) [][]byte {
	t.Helper()
	q := r.rx.Queues()[0]
	frames := make([][]byte, 64)
	var got [][]byte
	deadline := time.Now().Add(time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		n, err := q.Recv(frames)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames[:n] {
			if ip, err := wire.ParseIPv4(f[wire.EthernetHeaderLen:]); err == nil && ip.Src() == srcIP {
				got = append(got, bytes.Clone(f))
			}
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

// A frame with a segment size and a longer payload leaves as segments of
// that size: each a full TCP/IPv4 packet with the frame's headers, its
// sequence number and IPv4 ID counting up, a valid checksum, and PSH and
// FIN on the last one only.
func TestSegmentsOnTheWire(t *testing.T) {
	r := newRig(t, true)
	const seg, segs = 1000, 6
	payload := make([]byte, seg*(segs-1)+300)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	frame := r.tcpFrame(1000, wire.TCPFlagACK|wire.TCPFlagPSH|wire.TCPFlagFIN, payload)
	res, err := r.tx.Send([][]byte{frame}, []uint16{seg})
	if err != nil {
		t.Fatal(err)
	}
	if res != (pkttx.Result{Consumed: 1, Sent: 1, Segmented: 1, Bytes: uint64(len(frame))}) {
		t.Fatalf("Send: %+v", res)
	}
	got := r.receive(t, segs)
	if len(got) != segs {
		t.Fatalf("%d segments arrived, want %d", len(got), segs)
	}
	var data []byte
	for i, f := range got {
		ip, err := wire.ParseIPv4(f[wire.EthernetHeaderLen:])
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		tcp, err := wire.ParseTCP(ip.Payload())
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		wantLen := seg
		wantFlags := wire.TCPFlagACK
		if i == segs-1 {
			wantLen, wantFlags = 300, wire.TCPFlagACK|wire.TCPFlagPSH|wire.TCPFlagFIN
		}
		switch {
		case !ip.ChecksumValid():
			t.Errorf("segment %d: bad IPv4 checksum", i)
		case !wire.VerifyTCPChecksum(srcIP, dstIP, ip.Payload()):
			t.Errorf("segment %d: bad TCP checksum", i)
		case ip.ID() != uint16(100+i):
			t.Errorf("segment %d: IPv4 ID %d, want %d", i, ip.ID(), 100+i)
		case !ip.DF():
			t.Errorf("segment %d: DF lost", i)
		case tcp.SeqNum() != uint32(1000+i*seg):
			t.Errorf("segment %d: seq %d, want %d", i, tcp.SeqNum(), 1000+i*seg)
		case tcp.AckNum() != 5 || tcp.Window() != 100:
			t.Errorf("segment %d: ack %d window %d, want 5 and 100", i, tcp.AckNum(), tcp.Window())
		case tcp.Flags() != wantFlags:
			t.Errorf("segment %d: flags %v, want %v", i, tcp.Flags(), wantFlags)
		case len(tcp.Payload()) != wantLen:
			t.Errorf("segment %d: %d payload bytes, want %d", i, len(tcp.Payload()), wantLen)
		case len(tcp) != wire.TCPMinHeaderLen+12+wantLen:
			t.Errorf("segment %d: TCP header of %d bytes, want the frame's %d", i, len(tcp)-wantLen, wire.TCPMinHeaderLen+12)
		}
		data = append(data, tcp.Payload()...)
	}
	if !bytes.Equal(data, payload) {
		t.Error("the segments' payloads are not the frame's")
	}
}

// A frame with a segment size no shorter than its payload leaves as one
// packet whose checksum the kernel completed.
func TestChecksumCompleted(t *testing.T) {
	r := newRig(t, true)
	frame := r.tcpFrame(1, wire.TCPFlagACK, []byte("hello"))
	if res, err := r.tx.Send([][]byte{frame}, []uint16{1000}); err != nil || res.Sent != 1 || res.Segmented != 0 {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	got := r.receive(t, 1)
	if len(got) != 1 {
		t.Fatalf("%d frames arrived, want 1", len(got))
	}
	ip, _ := wire.ParseIPv4(got[0][wire.EthernetHeaderLen:])
	if !wire.VerifyTCPChecksum(srcIP, dstIP, ip.Payload()) {
		t.Error("checksum not completed")
	}
}

// Malformed frames are consumed unsent and counted, without holding up
// the good frames around them, which leave in order.
func TestMalformedFramesCounted(t *testing.T) {
	r := newRig(t, false)
	good := r.tcpFrame(1, wire.TCPFlagACK, []byte("first"))
	good2 := r.tcpFrame(2, wire.TCPFlagACK, []byte("second"))
	notIP := bytes.Clone(good)
	notIP[12], notIP[13] = 0x86, 0xdd
	badLen := bytes.Clone(good)
	badLen[wire.EthernetHeaderLen+3]++ // IPv4 total length no longer the frame's
	shortTCP := bytes.Clone(good)
	shortTCP[wire.EthernetHeaderLen+wire.IPv4MinHeaderLen+12] = 0xf0 // data offset 60 > frame
	badIHL := bytes.Clone(good)
	badIHL[wire.EthernetHeaderLen] = 0x44 // a 16-byte IPv4 header
	frames := [][]byte{nil, good, notIP, badLen, shortTCP, badIHL, make([]byte, pkttx.MaxFrame+1), good2}
	segs := []uint16{1000, 1000, 1000, 1000, 1000, 1000, 0, 1000}
	res, err := r.tx.Send(frames, segs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Consumed != len(frames) || res.Sent != 2 || res.Bad != 6 {
		t.Fatalf("Send: %+v, want all %d consumed, 2 sent, 6 bad", res, len(frames))
	}
	got := r.receive(t, 2)
	if len(got) != 2 {
		t.Fatalf("%d frames arrived, want 2", len(got))
	}
	for i, want := range []uint32{1, 2} {
		ip, _ := wire.ParseIPv4(got[i][wire.EthernetHeaderLen:])
		if tcp, err := wire.ParseTCP(ip.Payload()); err != nil || tcp.SeqNum() != want {
			t.Errorf("frame %d: seq %d (%v), want %d", i, tcp.SeqNum(), err, want)
		}
	}
}

// Send allocates nothing: it runs once per fast-path iteration.
func TestSendDoesNotAllocate(t *testing.T) {
	r := newRig(t, false)
	frames := [][]byte{r.tcpFrame(1, wire.TCPFlagACK, make([]byte, 5000)), r.tcpFrame(2, wire.TCPFlagACK, []byte("x"))}
	segs := []uint16{1000, 1000}
	allocs := testing.AllocsPerRun(100, func() {
		if res, err := r.tx.Send(frames, segs); err != nil || res.Sent != 2 {
			t.Fatalf("Send: %+v, %v", res, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Send allocates %.1f times a call", allocs)
	}
}
