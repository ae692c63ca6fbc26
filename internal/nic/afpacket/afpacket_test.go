package afpacket_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"

	"gotas/internal/nic"
	"gotas/internal/nic/afpacket"
	"gotas/internal/nic/nictest"
	"gotas/internal/nic/virtio"
	"gotas/internal/testnet"
)

// quiet disables IPv6 in h so the kernel sends no router or multicast
// listener solicitations that would make an idle queue not idle.
func quiet(t testing.TB, h *testnet.Host) {
	t.Helper()
	err := h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// open opens ifname inside h with cfg and closes it when t ends.
func open(t testing.TB, h *testnet.Host, cfg afpacket.Config) *afpacket.Port {
	t.Helper()
	var p *afpacket.Port
	if err := h.Do(func() (err error) { p, err = afpacket.Open(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// pair opens afpacket on both ends of a fresh veth.
func pair(t testing.TB, cfgs ...afpacket.Config) (a, b *afpacket.Port, ha, hb *testnet.Host) {
	t.Helper()
	var cfg afpacket.Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	ha, hb = nictest.Veth(t)
	quiet(t, ha)
	quiet(t, hb)
	cfg.Ifname = "xa"
	a = open(t, ha, cfg)
	cfg.Ifname = "xb"
	b = open(t, hb, cfg)
	return a, b, ha, hb
}

func TestConformance(t *testing.T) {
	a, b, _, _ := pair(t)
	ia, ib := a.Info(), b.Info()
	if ia.Kind != "afpacket" || ia.Name != "xa" || ia.MTU != 1500 || ia.Ifindex == 0 ||
		ia.MAC == [6]byte{} || ia.PartialRxCsum {
		t.Fatalf("Info = %+v", ia)
	}
	t.Run("a-to-b", func(t *testing.T) {
		nictest.Conformance(t, a.Queues()[0], b.Queues()[0], ib.MAC, ia.MAC)
	})
	t.Run("b-to-a", func(t *testing.T) {
		nictest.Conformance(t, b.Queues()[0], a.Queues()[0], ia.MAC, ib.MAC)
	})
}

func TestZeroAllocs(t *testing.T) {
	a, b, _, _ := pair(t)
	nictest.ZeroAllocs(t, a.Queues()[0], b.Queues()[0], b.Info().MAC, a.Info().MAC)
}

// recvMatch waits for a frame that match accepts and returns a copy.
func recvMatch(t *testing.T, q nic.Queue, match func([]byte) bool) []byte {
	t.Helper()
	frames := make([][]byte, 64)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		n, err := q.Recv(frames)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames[:n] {
			if match(f) {
				return bytes.Clone(f)
			}
		}
		if n == 0 {
			nic.Wait(q, 50*time.Millisecond)
		}
	}
	t.Fatal("expected frame never arrived")
	return nil
}

// TestKernelPartialChecksum has the kernel on the veth peer send TCP and
// UDP, which it leaves CHECKSUM_PARTIAL on a veth, and checks that Recv
// hands over complete, valid checksums.
func TestKernelPartialChecksum(t *testing.T) {
	a, _, _, hb := pair(t)
	mac := a.Info().MAC
	if err := hb.Addr("xb", "10.9.0.2/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := hb.IP("neigh", "add", "10.9.0.1", "lladdr", net.HardwareAddr(mac[:]).String(),
		"dev", "xb", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	q := a.Queues()[0]
	for _, proto := range []byte{17, 6} {
		err := hb.Do(func() error {
			if proto == 17 {
				c, err := net.Dial("udp4", "10.9.0.1:9999")
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("partial checksum, please complete me"))
				return err
			}
			// The SYN goes out at once; nobody answers.
			c, err := net.DialTimeout("tcp4", "10.9.0.1:9999", 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		f := recvMatch(t, q, func(f []byte) bool {
			return len(f) > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == proto
		})
		ip := f[14:]
		ihl := int(ip[0]&15) * 4
		l4 := ip[ihl:binary.BigEndian.Uint16(ip[2:])]
		pseudo := virtio.Sum(ip[12:20], uint64(proto)+uint64(len(l4)))
		if s := virtio.Fold(virtio.Sum(l4, pseudo)); s != 0xffff {
			t.Errorf("protocol %d: checksum does not verify (sum %#x): %x", proto, s, f)
		}
	}
}

// TestVLANTag checks that a tagged frame arrives with its tag, which the
// receiving kernel strips into metadata before packet sockets see it.
func TestVLANTag(t *testing.T) {
	a, b, _, _ := pair(t)
	ia, ib := a.Info(), b.Info()
	plain := nictest.Frame(make([]byte, 200), ib.MAC, ia.MAC, 200, 42)
	tagged := make([]byte, 0, 204)
	tagged = append(tagged, plain[:12]...)
	tagged = append(tagged, 0x81, 0x00, 0x20, 0x07) // priority 1, VLAN 7
	tagged = append(tagged, plain[12:]...)
	if n, err := a.Queues()[0].Send([][]byte{tagged}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	got := recvMatch(t, b.Queues()[0], func(f []byte) bool {
		return len(f) > 16 && binary.BigEndian.Uint16(f[12:]) == 0x8100
	})
	if !bytes.Equal(got, tagged) {
		t.Fatalf("tagged frame arrived as\n%x\nwant\n%x", got, tagged)
	}
}

// TestFanout opens two queues and checks every frame arrives once, each
// flow on one queue.
func TestFanout(t *testing.T) {
	ha, hb := nictest.Veth(t)
	quiet(t, ha)
	quiet(t, hb)
	a := open(t, ha, afpacket.Config{Ifname: "xa"})
	b := open(t, hb, afpacket.Config{Ifname: "xb", Queues: 2})
	if len(b.Queues()) != 2 {
		t.Fatalf("%d queues, want 2", len(b.Queues()))
	}
	const flows, perFlow = 16, 8
	var out [][]byte
	for i := range flows * perFlow {
		f := nictest.Frame(make([]byte, 64), b.Info().MAC, a.Info().MAC, 64, uint32(i))
		binary.BigEndian.PutUint16(f[34:], uint16(1000+i%flows)) // TCP source port = flow
		out = append(out, f)
	}
	for off := 0; off < len(out); {
		n, err := a.Queues()[0].Send(out[off:])
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	queueOf := map[uint16]int{}
	got, perQueue := 0, [2]int{}
	frames := make([][]byte, 64)
	deadline := time.Now().Add(3 * time.Second)
	for got < len(out) && time.Now().Before(deadline) {
		for qi, q := range b.Queues() {
			n, err := q.Recv(frames)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames[:n] {
				if _, ok := nictest.FrameSeq(f); !ok {
					continue
				}
				port := binary.BigEndian.Uint16(f[34:])
				if prev, ok := queueOf[port]; ok && prev != qi {
					t.Fatalf("flow %d on queues %d and %d", port, prev, qi)
				}
				queueOf[port] = qi
				got++
				perQueue[qi]++
			}
		}
		time.Sleep(time.Millisecond)
	}
	if got != len(out) {
		t.Fatalf("received %d of %d frames", got, len(out))
	}
	t.Logf("frames per queue: %v", perQueue)
}

func TestOpenErrors(t *testing.T) {
	lab := testnet.NewT(t)
	h, err := lab.Host("a")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Do(func() error {
		_, err := afpacket.Open(afpacket.Config{Ifname: "nosuch0"})
		return err
	})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("nosuch0")) {
		t.Fatalf("Open of a missing interface: %v", err)
	}
	// A ring the kernel refuses fails cleanly, after the socket is made.
	err = h.Do(func() error {
		_, err := afpacket.Open(afpacket.Config{Ifname: "lo", RxBlockSize: 1 << 31, RxBlocks: 1})
		return err
	})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("PACKET_RX_RING")) {
		t.Fatalf("Open with a 2 GiB block: %v", err)
	}
	t.Log(err)
}

// TestQueueClosed checks operations after Close report nic.ErrClosed.
func TestQueueClosed(t *testing.T) {
	ha, _ := nictest.Veth(t)
	var p *afpacket.Port
	if err := ha.Do(func() (err error) { p, err = afpacket.Open(afpacket.Config{Ifname: "xa"}); return err }); err != nil {
		t.Fatal(err)
	}
	q := p.Queues()[0]
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := q.Recv(make([][]byte, 1)); err != nic.ErrClosed {
		t.Fatalf("Recv after Close: %v", err)
	}
	if _, err := q.Send([][]byte{make([]byte, 60)}); err != nic.ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
	_ = q.Stats()
}

// TestOutgoingIgnored checks a queue does not receive frames leaving its
// interface (PACKET_IGNORE_OUTGOING): here the host kernel's own. (Frames
// the queue sends itself bypass the qdisc and so never pass the packet
// taps at all.)
func TestOutgoingIgnored(t *testing.T) {
	a, b, ha, _ := pair(t)
	if err := ha.Addr("xa", "10.9.0.1/24"); err != nil {
		t.Fatal(err)
	}
	mac := b.Info().MAC
	if _, err := ha.IP("neigh", "add", "10.9.0.2", "lladdr", net.HardwareAddr(mac[:]).String(),
		"dev", "xa", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	isUDP := func(f []byte) bool {
		return len(f) > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17
	}
	err := ha.Do(func() error {
		c, err := net.Dial("udp4", "10.9.0.2:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("from the host kernel"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	recvMatch(t, b.Queues()[0], isUDP)
	time.Sleep(5 * time.Millisecond) // past the block retire timeout
	frames := make([][]byte, 64)
	n, err := a.Queues()[0].Recv(frames)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames[:n] {
		if isUDP(f) {
			t.Fatal("the queue received a frame leaving its own interface")
		}
	}
}
