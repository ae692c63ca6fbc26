package afxdp

import (
	"encoding/binary"
	"net"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gotas/internal/nic/nictest"
)

var (
	svcIP   = [4]byte{10, 254, 0, 1}
	arpIP   = [4]byte{10, 254, 0, 3} // a service address with SteerARPICMP
	otherIP = [4]byte{10, 254, 0, 9}
)

// ipv4 returns an untagged IPv4 frame to dst carrying proto, with a 20-byte
// header and a payload whose first byte is first (the ICMP type).
func ipv4(dst [4]byte, proto byte, first byte) []byte {
	f := make([]byte, 64)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14] = 0x45
	binary.BigEndian.PutUint16(f[16:], 50)
	f[22] = 64
	f[23] = proto
	copy(f[26:], []byte{10, 254, 0, 2})
	copy(f[30:], dst[:])
	f[34] = first
	return f
}

func arp(tpa [4]byte, op uint16) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	binary.BigEndian.PutUint16(f[14:], 1)      // htype Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // ptype IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], op)
	copy(f[28:], []byte{10, 254, 0, 2}) // sender IP
	copy(f[38:], tpa[:])
	return f
}

func vlan(f []byte) []byte {
	out := make([]byte, 0, len(f)+4)
	out = append(out, f[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x05)
	return append(out, f[12:]...)
}

func programCases() []struct {
	name     string
	frame    []byte
	redirect bool
} {
	tcp := ipv4(svcIP, unix.IPPROTO_TCP, 0)
	frag := ipv4(arpIP, unix.IPPROTO_ICMP, 8)
	frag[20] = 0x20 // more fragments
	ihl6 := ipv4(arpIP, unix.IPPROTO_ICMP, 0)
	ihl6[14] = 0x46
	ihl6[38] = 8 // the type after a 24-byte header
	badIHL := ipv4(svcIP, unix.IPPROTO_TCP, 0)
	badIHL[14] = 0x44
	ipv6 := ipv4(svcIP, unix.IPPROTO_TCP, 0)
	ipv6[14] = 0x65
	badARP := arp(arpIP, 1)
	badARP[19] = 16
	return []struct {
		name     string
		frame    []byte
		redirect bool
	}{
		{"tcp to service", tcp, true},
		{"tcp to service, nictest frame", nictest.Frame(make([]byte, 60), [6]byte{}, [6]byte{}, 60, 1), true},
		{"tcp to arp/icmp service", ipv4(arpIP, unix.IPPROTO_TCP, 0), true},
		{"tcp to other address", ipv4(otherIP, unix.IPPROTO_TCP, 0), false},
		{"udp to service", ipv4(svcIP, unix.IPPROTO_UDP, 0), false},
		{"icmp echo without flag", ipv4(svcIP, unix.IPPROTO_ICMP, 8), false},
		{"icmp echo with flag", ipv4(arpIP, unix.IPPROTO_ICMP, 8), true},
		{"icmp echo, IHL 6", ihl6, true},
		{"icmp echo reply with flag", ipv4(arpIP, unix.IPPROTO_ICMP, 0), false},
		{"icmp echo fragment", frag, false},
		{"icmp echo to other", ipv4(otherIP, unix.IPPROTO_ICMP, 8), false},
		{"arp request without flag", arp(svcIP, 1), false},
		{"arp request with flag", arp(arpIP, 1), true},
		{"arp reply with flag", arp(arpIP, 2), true},
		{"arp for other", arp(otherIP, 1), false},
		{"arp with plen 16", badARP, false},
		{"vlan tcp to service", vlan(tcp), false},
		{"vlan arp with flag", vlan(arp(arpIP, 1)), false},
		{"IHL 4", badIHL, false},
		{"IP version 6", ipv6, false},
		{"truncated ethernet", tcp[:14], false},
		{"truncated IPv4", tcp[:33], false},
		{"truncated ICMP", ipv4(arpIP, unix.IPPROTO_ICMP, 8)[:34], false},
		{"truncated ARP", arp(arpIP, 1)[:41], false},
	}
}

// newTestSteering loads the program with svcIP (TCP) and arpIP
// (TCP|ARP/ICMP) as services.
func newTestSteering(t *testing.T) *steering {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: loading BPF programs needs root")
	}
	raiseMemlock()
	s, err := newSteering(1, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.addService(svcIP, SteerTCP); err != nil {
		t.Fatal(err)
	}
	if err := s.addService(arpIP, SteerTCP|SteerARPICMP); err != nil {
		t.Fatal(err)
	}
	return s
}

func runProgram(t *testing.T, s *steering, frame []byte) uint32 {
	t.Helper()
	// Test runs want at least an Ethernet header; shorter frames never
	// reach XDP anyway.
	ret, err := s.prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("prog.Run: %v", err)
	}
	return ret
}

// TestProgramNoSocket: with an empty XSKMAP, bpf_redirect_map returns the
// fallback action from its flags, so a test run reports XDP_PASS for
// steered frames too, and the frame goes to Linux.
func TestProgramNoSocket(t *testing.T) {
	s := newTestSteering(t)
	for _, c := range programCases() {
		if got := runProgram(t, s, c.frame); got != xdpPass {
			t.Errorf("%s: action %d, want XDP_PASS (%d)", c.name, got, xdpPass)
		}
	}
}

// TestProgram puts a bound socket into the XSKMAP: steered frames then
// test-run to XDP_REDIRECT (the test run does not deliver them), and
// everything else to XDP_PASS.
func TestProgram(t *testing.T) {
	s := newTestSteering(t)
	a, _ := nictest.Veth(t)
	var q *Queue
	err := a.Do(func() error {
		ifi, err := net.InterfaceByName("xa")
		if err != nil {
			return err
		}
		q, err = newQueue(queueConfig{ifindex: ifi.Index, rxFrames: 64, txFrames: 64})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := s.setSocket(0, q.fd); err != nil {
		t.Fatal(err)
	}
	for _, c := range programCases() {
		want := uint32(xdpPass)
		if c.redirect {
			want = xdpRedirect
		}
		if got := runProgram(t, s, c.frame); got != want {
			t.Errorf("%s: action %d, want %d", c.name, got, want)
		}
	}
}

// TestProgramListing keeps the generated program's shape visible in -v
// output and checks that every jump target exists.
func TestProgramListing(t *testing.T) {
	insns := program(3, 4)
	offs, err := insns.SymbolOffsets()
	if err != nil {
		t.Fatal(err)
	}
	for _, sym := range []string{"arp", "icmp", "redirect", "pass"} {
		if _, ok := offs[sym]; !ok {
			t.Errorf("label %q missing", sym)
		}
	}
	for _, ins := range insns {
		if ref := ins.Reference(); ref != "" {
			if _, ok := offs[ref]; !ok {
				t.Errorf("jump to undefined label %q", ref)
			}
		}
	}
	t.Logf("%d instructions:\n%v", len(insns), insns)
}
