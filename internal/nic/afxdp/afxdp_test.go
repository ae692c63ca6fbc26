package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"gotas/internal/nic"
	"gotas/internal/nic/nictest"
	"gotas/internal/testnet"
)

var modes = []Mode{ModeNative, ModeGeneric}

// open opens ifname inside h with the test service address and closes
// the port when the test ends.
func open(t testing.TB, h *testnet.Host, ifname string, cfg Config) *Port {
	t.Helper()
	cfg.Ifname = ifname
	if cfg.ServiceIP == ([4]byte{}) {
		cfg.ServiceIP = nictest.DstIP
	}
	var p *Port
	if err := h.Do(func() (err error) {
		p, err = Open(cfg)
		return err
	}); err != nil {
		t.Fatalf("Open %s in %s: %v", ifname, h.Name, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// pair opens AF_XDP on both ends of a fresh veth.
func pair(t testing.TB, mode Mode) (a, b *Port) {
	ha, hb := nictest.Veth(t)
	return open(t, ha, "xa", Config{Mode: mode}), open(t, hb, "xb", Config{Mode: mode})
}

// Conformance in each attach mode, with and without multi-buffer (on
// this project's kernels, 6.6+, the sockets bind with XDP_USE_SG).
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		sg   bool
	}{{ModeNative, false}, {ModeGeneric, false}, {ModeNative, true}, {ModeGeneric, true}} {
		want := tc.mode.String() + map[bool]string{true: "+sg"}[tc.sg]
		t.Run(want, func(t *testing.T) {
			ha, hb := nictest.Veth(t)
			cfg := Config{Mode: tc.mode, MultiBuffer: tc.sg}
			a, b := open(t, ha, "xa", cfg), open(t, hb, "xb", cfg)
			ia, ib := a.Info(), b.Info()
			for _, in := range []nic.Info{ia, ib} {
				if in.Kind != "afxdp" || in.Mode != want || !in.PartialRxCsum ||
					in.MTU != 1500 || in.Ifindex == 0 || in.MAC == ([6]byte{}) {
					t.Errorf("Info = %+v", in)
				}
			}
			if len(a.Queues()) != 1 || len(b.Queues()) != 1 {
				t.Fatalf("queues: %d and %d, want 1", len(a.Queues()), len(b.Queues()))
			}
			qa, qb := a.Queues()[0], b.Queues()[0]
			t.Run("a->b", func(t *testing.T) { nictest.Conformance(t, qa, qb, ib.MAC, ia.MAC) })
			t.Run("b->a", func(t *testing.T) { nictest.Conformance(t, qb, qa, ia.MAC, ib.MAC) })
			t.Run("zeroallocs", func(t *testing.T) { nictest.ZeroAllocs(t, qa, qb, ib.MAC, ia.MAC) })
			for _, p := range []*Port{a, b} {
				x, err := p.Sockets()[0].XDPStats()
				if err != nil {
					t.Fatal(err)
				}
				if x.Rx_dropped != 0 || x.Rx_ring_full != 0 || x.Tx_invalid_descs != 0 {
					t.Errorf("%s: XDP_STATISTICS %+v", p.Info().Name, x)
				}
			}
		})
	}
}

// TestKernelTrafficPasses checks that a TCP connection between the
// kernels at both ends works while both ports are open: the program
// passes what is not for the service address, and ARP for addresses
// Linux owns stays with Linux even with StealARPICMP.
func TestKernelTrafficPasses(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			ha, hb := nictest.Veth(t)
			if err := ha.Addr("xa", "10.254.0.10/24"); err != nil {
				t.Fatal(err)
			}
			if err := hb.Addr("xb", "10.254.0.11/24"); err != nil {
				t.Fatal(err)
			}
			open(t, ha, "xa", Config{Mode: mode, StealARPICMP: true})
			pb := open(t, hb, "xb", Config{Mode: mode, StealARPICMP: true})

			var ln net.Listener
			if err := hb.Do(func() (err error) {
				ln, err = net.Listen("tcp4", "10.254.0.11:0")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			msg := make([]byte, 256<<10)
			for i := range msg {
				msg[i] = byte(i * 7)
			}
			errc := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				defer c.Close()
				_, err = io.Copy(c, c) // echo
				errc <- err
			}()
			var c net.Conn
			if err := ha.Do(func() (err error) {
				c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(got) != string(msg) {
				t.Fatalf("echoed %d of %d bytes intact=%v: %v", len(got), len(msg), string(got) == string(msg), err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if s := nic.PortStats(pb); s.RxFrames != 0 {
				t.Errorf("the XSK received %d frames of kernel traffic", s.RxFrames)
			}

			// ARP for the service address goes to the socket instead:
			// a's kernel asks for 10.254.0.1 when dialling it.
			go ha.Do(func() error {
				c, err := net.DialTimeout("tcp4", "10.254.0.1:80", 300*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return nil
			})
			frames := make([][]byte, 64)
			q := pb.Queues()[0]
			deadline := time.Now().Add(3 * time.Second)
			for {
				n, _ := q.Recv(frames)
				if isARPFor(frames[:n], nictest.DstIP) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no ARP request for the service address reached the socket")
				}
				nic.Wait(q, 50*time.Millisecond)
			}
		})
	}
}

func isARPFor(frames [][]byte, ip [4]byte) bool {
	for _, f := range frames {
		if len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && [4]byte(f[38:42]) == ip {
			return true
		}
	}
	return false
}

// TestReopen opens, uses and closes a port on the same interface several
// times in a row: the kernel releases a closed XSK's queue
// asynchronously, so each bind right after a close relies on the EBUSY
// retry.
func TestReopen(t *testing.T) {
	ha, hb := nictest.Veth(t)
	pa := open(t, ha, "xa", Config{})
	for i := range 3 {
		var pb *Port
		start := time.Now()
		if err := hb.Do(func() (err error) {
			pb, err = Open(Config{Ifname: "xb", ServiceIP: nictest.DstIP})
			return err
		}); err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		t.Logf("open #%d took %v, bind got EBUSY %d times", i, time.Since(start), pb.Sockets()[0].busyBinds)
		exchange(t, pa.Queues()[0], pb.Queues()[0], pb.Info().MAC, pa.Info().MAC)
		exchange(t, pb.Queues()[0], pa.Queues()[0], pa.Info().MAC, pb.Info().MAC)
		if err := pb.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// exchange sends a few frames from tx and checks they arrive on rx.
func exchange(t *testing.T, tx, rx nic.Queue, dst, src [6]byte) {
	t.Helper()
	if got, err := tryExchange(tx, []nic.Queue{rx}, dst, src); err != nil {
		t.Fatalf("%v (received %v)", err, got)
	}
}

// tryExchange sends 8 test frames on tx and receives them on any of rxs;
// it returns how many arrived on each.
func tryExchange(tx nic.Queue, rxs []nic.Queue, dst, src [6]byte) ([]int, error) {
	const n = 8
	out := make([][]byte, n)
	for i := range out {
		out[i] = nictest.Frame(make([]byte, 100), dst, src, 100, uint32(i))
	}
	for off := 0; off < n; {
		k, err := tx.Send(out[off:])
		if err != nil {
			return nil, err
		}
		off += k
	}
	in := make([][]byte, 64)
	got, total := make([]int, len(rxs)), 0
	deadline := time.Now().Add(2 * time.Second)
	for total < n && time.Now().Before(deadline) {
		idle := true
		for i, rx := range rxs {
			k, err := rx.Recv(in)
			if err != nil {
				return got, err
			}
			for _, f := range in[:k] {
				if _, ok := nictest.FrameSeq(f); ok {
					got[i]++
					total++
				}
			}
			idle = idle && k == 0
		}
		if idle {
			time.Sleep(time.Millisecond)
		}
	}
	if total != n {
		return got, fmt.Errorf("received %d of %d frames", total, n)
	}
	return got, nil
}

// TestMultiQueue opens a veth with two queues per end: Open makes one
// socket per queue. In native mode a frame sent from queue i of one end
// arrives on queue i of the other (veth maps the sender's TX queue to the
// peer's RX queue). In generic mode veth reports rx_queue_index 0 for
// every frame (measured), so everything arrives on queue 0.
func TestMultiQueue(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			lab := testnet.NewT(t)
			ha, err := lab.Host("a")
			if err != nil {
				t.Fatal(err)
			}
			hb, err := lab.Host("b")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ha.IP("link", "add", "xa", "numrxqueues", "2", "numtxqueues", "2", "type", "veth",
				"peer", "name", "xb", "netns", hb.Name, "numrxqueues", "2", "numtxqueues", "2"); err != nil {
				t.Fatal(err)
			}
			if _, err := ha.IP("link", "set", "xa", "up"); err != nil {
				t.Fatal(err)
			}
			if _, err := hb.IP("link", "set", "xb", "up"); err != nil {
				t.Fatal(err)
			}
			a := open(t, ha, "xa", Config{Mode: mode})
			b := open(t, hb, "xb", Config{Mode: mode})
			if len(a.Queues()) != 2 || len(b.Queues()) != 2 {
				t.Fatalf("queues: %d and %d, want 2", len(a.Queues()), len(b.Queues()))
			}
			for i := range 2 {
				got, err := tryExchange(a.Queues()[i], b.Queues(), b.Info().MAC, a.Info().MAC)
				t.Logf("sent on a's queue %d: b's queues received %v", i, got)
				if err != nil {
					t.Fatalf("queue %d: %v", i, err)
				}
				want := 0
				if mode == ModeNative {
					want = i
				}
				if got[want] != 8 {
					t.Errorf("sent on queue %d, received %v; want all on queue %d", i, got, want)
				}
			}
		})
	}
}

// TestOpenErrors checks that a bad config fails cleanly.
func TestOpenErrors(t *testing.T) {
	ha, _ := nictest.Veth(t)
	for _, cfg := range []Config{
		{Ifname: "nonexistent"},
		{Ifname: "xa", Queues: 3},
	} {
		err := ha.Do(func() error {
			p, err := Open(cfg)
			if err == nil {
				p.Close()
				return errors.New("no error")
			}
			return nil
		})
		if err != nil {
			t.Errorf("Open(%+v): %v", cfg, err)
		}
	}
}

// TestZeroCopyFallback asks for zero-copy, which veth refuses, and
// expects a working copy-mode port.
func TestZeroCopyFallback(t *testing.T) {
	ha, hb := nictest.Veth(t)
	a := open(t, ha, "xa", Config{Mode: ModeNative, ZeroCopy: true})
	b := open(t, hb, "xb", Config{Mode: ModeNative})
	if a.ZeroCopy() {
		t.Log("veth accepted zero-copy")
	}
	exchange(t, a.Queues()[0], b.Queues()[0], b.Info().MAC, a.Info().MAC)
	exchange(t, b.Queues()[0], a.Queues()[0], a.Info().MAC, b.Info().MAC)
}

// TestRxDropsCounted overflows a small RX ring: the frames the kernel
// could not place (no fill chunk left) show up in Stats().RxDropped.
func TestRxDropsCounted(t *testing.T) {
	ha, hb := nictest.Veth(t)
	a := open(t, ha, "xa", Config{})
	b := open(t, hb, "xb", Config{RxFrames: 64})
	out := make([][]byte, 200)
	for i := range out {
		out[i] = nictest.Frame(make([]byte, 64), b.Info().MAC, a.Info().MAC, 64, uint32(i))
	}
	for off := 0; off < len(out); {
		n, err := a.Queues()[0].Send(out[off:])
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := b.Queues()[0].Stats()
		if s.RxDropped >= 200-64 {
			x, _ := b.Sockets()[0].XDPStats()
			t.Logf("RxDropped %d, XDP_STATISTICS %+v", s.RxDropped, x)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RxDropped = %d after overflowing a 64-frame ring with 200", s.RxDropped)
		}
		time.Sleep(10 * time.Millisecond)
	}
	frames := make([][]byte, 256)
	if n, _ := b.Queues()[0].Recv(frames); n != 64 {
		t.Errorf("received %d frames from a full 64-frame ring", n)
	}
}
