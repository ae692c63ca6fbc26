package tap_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"gotas/internal/nic/afpacket"
	"gotas/internal/nic/nictest"
	"gotas/internal/nic/tap"
	"gotas/internal/testnet"
)

// peerMAC stands for the stack behind the TAP descriptor; the netdev has
// its own MAC.
var peerMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}

// host makes one namespace with IPv6 off, so the kernel sends no router or
// listener solicitations that would make an idle queue not idle.
func host(t testing.TB) *testnet.Host {
	t.Helper()
	h, err := testnet.NewT(t).Host("a")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// setup creates TAP tp0 in a fresh namespace and opens afpacket on its
// netdev: frames the TAP queue sends arrive on the afpacket queue and the
// other way round.
func setup(t testing.TB) (tp *tap.Port, ap *afpacket.Port) {
	t.Helper()
	h := host(t)
	err := h.Do(func() (err error) {
		if tp, err = tap.Open(tap.Config{Name: "tp0", Create: true}); err != nil {
			return err
		}
		ap, err = afpacket.Open(afpacket.Config{Ifname: "tp0"})
		return err
	})
	if tp != nil {
		t.Cleanup(func() { tp.Close() })
	}
	if ap != nil {
		t.Cleanup(func() { ap.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return tp, ap
}

func TestConformance(t *testing.T) {
	tp, ap := setup(t)
	info := tp.Info()
	if info.Kind != "tap" || info.Name != "tp0" || info.MTU != 1500 || info.Ifindex == 0 ||
		info.MAC == [6]byte{} || info.PartialRxCsum {
		t.Fatalf("Info = %+v", info)
	}
	tq, aq := tp.Queues()[0], ap.Queues()[0]
	t.Run("tap-to-netdev", func(t *testing.T) {
		nictest.Conformance(t, tq, aq, info.MAC, peerMAC)
	})
	t.Run("netdev-to-tap", func(t *testing.T) {
		nictest.Conformance(t, aq, tq, peerMAC, info.MAC)
	})
}

func TestZeroAllocs(t *testing.T) {
	tp, ap := setup(t)
	tq, aq := tp.Queues()[0], ap.Queues()[0]
	mac := tp.Info().MAC
	t.Run("tap-to-netdev", func(t *testing.T) { nictest.ZeroAllocs(t, tq, aq, mac, peerMAC) })
	t.Run("netdev-to-tap", func(t *testing.T) { nictest.ZeroAllocs(t, aq, tq, peerMAC, mac) })
}

func TestBadNames(t *testing.T) {
	h := host(t)
	for _, c := range []struct {
		cfg  tap.Config
		want string
	}{
		{tap.Config{Name: strings.Repeat("x", 16), Create: true}, "too long"},
		{tap.Config{Name: "bad/name", Create: true}, "invalid name"},
		{tap.Config{Name: "nosuch0"}, "nosuch0"},
		{tap.Config{}, "needs an interface name"},
	} {
		err := h.Do(func() error {
			p, err := tap.Open(c.cfg)
			if err == nil {
				p.Close()
			}
			return err
		})
		t.Logf("%+v: %v", c.cfg, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v; want an error saying %q", c.cfg, err, c.want)
		}
	}
}

// exists reports whether ifname exists in h.
func exists(t *testing.T, h *testnet.Host, ifname string) bool {
	t.Helper()
	var found bool
	if err := h.Do(func() error {
		_, err := net.InterfaceByName(ifname)
		found = err == nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

func TestCloseDeletesCreated(t *testing.T) {
	h := host(t)
	var p *tap.Port
	if err := h.Do(func() (err error) { p, err = tap.Open(tap.Config{Name: "tp1", Create: true}); return }); err != nil {
		t.Fatal(err)
	}
	if !exists(t, h, "tp1") {
		t.Fatal("tp1 does not exist after Open")
	}
	out, err := h.IP("link", "show", "tp1")
	if err != nil || !strings.Contains(out, ",UP") {
		t.Fatalf("tp1 is not up: %s %v", out, err)
	}
	// A second Create of the same name must fail, not attach.
	err = h.Do(func() error {
		q, err := tap.Open(tap.Config{Name: "tp1", Create: true})
		if err == nil {
			q.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("creating tp1 twice: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(t, h, "tp1") {
		t.Fatal("tp1 still exists after Close")
	}
}

func TestAttachPersistent(t *testing.T) {
	h := host(t)
	if _, err := h.IP("tuntap", "add", "dev", "tpp", "mode", "tap"); err != nil {
		t.Fatal(err)
	}
	var p *tap.Port
	if err := h.Do(func() (err error) { p, err = tap.Open(tap.Config{Name: "tpp"}); return }); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, h, "tpp") {
		t.Fatal("Close deleted a persistent device it did not create")
	}
}

// TestKernelDropsCounted floods the TAP from the kernel's own stack while
// nobody reads it, and checks the frames the kernel drops for the full
// device queue show up in RxDropped.
func TestKernelDropsCounted(t *testing.T) {
	h := host(t)
	var tp *tap.Port
	if err := h.Do(func() (err error) { tp, err = tap.Open(tap.Config{Name: "tp0", Create: true}); return }); err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if err := h.Addr("tp0", "10.8.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.IP("neigh", "add", "10.8.0.2", "lladdr", net.HardwareAddr(peerMAC[:]).String(),
		"dev", "tp0", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	const flood = 3000
	err := h.Do(func() error {
		c, err := net.Dial("udp4", "10.8.0.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		for range flood {
			c.Write(make([]byte, 100)) // ENOBUFS once the queue is full is fine
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	q := tp.Queues()[0]
	frames := make([][]byte, 64)
	got := 0
	for {
		n, err := q.Recv(frames)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got += n
	}
	st := q.Stats()
	out, _ := h.IP("-s", "link", "show", "tp0")
	t.Logf("read %d frames; stats %+v\n%s", got, st, out)
	if st.RxDropped == 0 {
		t.Fatalf("the kernel dropped frames for a full queue but RxDropped is 0")
	}
}
