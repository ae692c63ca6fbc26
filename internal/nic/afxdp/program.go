package afxdp

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Flags of a service address in the program's services map: which traffic
// to that address the program steers to the sockets.
const (
	// SteerTCP steers TCP segments to the address.
	SteerTCP uint32 = 1 << iota
	// SteerARPICMP steers ARP packets whose target protocol address is the
	// address and ICMP echo requests to it. Set it only when Linux does not
	// own the address on the interface, or both stacks would answer.
	SteerARPICMP
)

// XDP actions (enum xdp_action).
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// Byte offsets in a frame and in struct xdp_md.
const (
	ethLen        = 14
	offEtherType  = 12
	offIPVerIHL   = ethLen + 0
	offIPFrag     = ethLen + 6
	offIPProto    = ethLen + 9
	offIPDst      = ethLen + 16
	ipMinLen      = 20
	offARPPtype   = ethLen + 2
	offARPHlenPln = ethLen + 4 // hlen, plen: 6, 4 for Ethernet/IPv4
	offARPTpa     = ethLen + 24
	arpLen        = 28

	mdData          = 0
	mdDataEnd       = 4
	mdRxQueueIndex  = 16
	ipProtoICMP     = 1
	ipProtoTCP      = 6
	icmpEchoRequest = 8
)

// be16 gives the value a 16-bit load sees for bytes stored in network
// order: the program loads raw packet bytes, and BPF loads are
// little-endian here, so comparing against swapped constants saves a
// byte swap in the program.
func be16(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

// steering is the XDP program with its two maps.
type steering struct {
	prog     *ebpf.Program
	services *ebpf.Map // [4]byte IPv4 address -> uint32 Steer* flags
	xsks     *ebpf.Map // rx_queue_index -> XSK fd
}

// newSteering creates the maps and loads the program; queues is the
// device's RX queue count (the XSKMAP's size). With frags the program is
// loaded as frags-aware (BPF_F_XDP_HAS_FRAGS, Linux 5.18+), so the kernel
// runs it on multi-buffer frames instead of linearizing or dropping
// them; it reads only the headers, which are in the first buffer, so the
// same instructions serve both.
func newSteering(queues int, frags bool) (s *steering, err error) {
	s = &steering{}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	s.services, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "gotas_services", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 64,
	})
	if err != nil {
		return s, fmt.Errorf("afxdp: services map: %w", err)
	}
	s.xsks, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "gotas_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues),
	})
	if err != nil {
		return s, fmt.Errorf("afxdp: XSKMAP: %w", err)
	}
	var flags uint32
	if frags {
		flags = unix.BPF_F_XDP_HAS_FRAGS
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "gotas_steer",
		Type:         ebpf.XDP,
		License:      "GPL",
		Flags:        flags,
		Instructions: program(s.services.FD(), s.xsks.FD()),
	})
	if err != nil {
		return s, fmt.Errorf("afxdp: load XDP program: %w", err)
	}
	return s, nil
}

// addService steers traffic to ip according to flags.
func (s *steering) addService(ip [4]byte, flags uint32) error {
	return s.services.Update(ip, flags, ebpf.UpdateAny)
}

// setSocket makes the program redirect queue's traffic to the XSK fd.
func (s *steering) setSocket(queue, fd int) error {
	return s.xsks.Update(uint32(queue), uint32(fd), ebpf.UpdateAny)
}

func (s *steering) Close() {
	if s.prog != nil {
		_ = s.prog.Close()
	}
	for _, m := range []*ebpf.Map{s.services, s.xsks} {
		if m != nil {
			_ = m.Close()
		}
	}
}

// program returns the steering program. It redirects to the XSK of the
// frame's RX queue:
//   - untagged IPv4 TCP to a service address with SteerTCP;
//   - untagged IPv4 ICMP echo requests (unfragmented) to a service address
//     with SteerARPICMP;
//   - Ethernet/IPv4 ARP whose target protocol address is a service address
//     with SteerARPICMP.
//
// Everything else, and everything too short to parse, is XDP_PASSed
// unchanged, so Linux keeps working on the interface. The redirect falls
// back to XDP_PASS when no socket serves the queue.
//
// Registers: r6 ctx, r7 data, r8 data_end, r9 IP protocol.
func program(services, xsks int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, mdDataEnd, asm.Word),
		// Every access below is bounds-checked against data_end first, or
		// the verifier rejects the program.
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, ethLen),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, offEtherType, asm.Half),
		asm.JEq.Imm(asm.R2, be16(0x0806), "arp"),
		asm.JNE.Imm(asm.R2, be16(0x0800), "pass"),

		// IPv4: version 4, IHL >= 5, then look the destination up.
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, ethLen+ipMinLen),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, offIPVerIHL, asm.Byte),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x40, "pass"),
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "pass"),
		asm.LoadMem(asm.R9, asm.R7, offIPProto, asm.Byte),
		asm.LoadMem(asm.R2, asm.R7, offIPDst, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, services),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word), // the address's flags
		asm.JNE.Imm(asm.R9, ipProtoTCP, "icmp"),
		asm.JSet.Imm(asm.R1, int32(SteerTCP), "redirect"),
		asm.Ja.Label("pass"),

		// ICMP: only echo requests, only first fragments' worth (no
		// fragmentation at all), and only with SteerARPICMP.
		asm.JNE.Imm(asm.R9, ipProtoICMP, "pass").WithSymbol("icmp"),
		asm.And.Imm(asm.R1, int32(SteerARPICMP)),
		asm.JEq.Imm(asm.R1, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R7, offIPFrag, asm.Half),
		asm.JSet.Imm(asm.R2, be16(0x3fff), "pass"), // MF or an offset
		asm.LoadMem(asm.R3, asm.R7, offIPVerIHL, asm.Byte),
		asm.And.Imm(asm.R3, 0x0f),
		asm.LSh.Imm(asm.R3, 2), // header length, at most 60
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Reg(asm.R2, asm.R3),
		asm.Add.Imm(asm.R2, ethLen), // r2 = ICMP header
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.Add.Imm(asm.R3, 1),
		asm.JGT.Reg(asm.R3, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R2, 0, asm.Byte),
		asm.JEq.Imm(asm.R3, icmpEchoRequest, "redirect"),
		asm.Ja.Label("pass"),

		// ARP: Ethernet/IPv4 only, keyed by the target protocol address;
		// requests for the address and replies to its own requests.
		asm.Mov.Reg(asm.R2, asm.R7).WithSymbol("arp"),
		asm.Add.Imm(asm.R2, ethLen+arpLen),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, offARPPtype, asm.Half),
		asm.JNE.Imm(asm.R2, be16(0x0800), "pass"),
		asm.LoadMem(asm.R2, asm.R7, offARPHlenPln, asm.Half),
		asm.JNE.Imm(asm.R2, be16(0x0604), "pass"),
		asm.LoadMem(asm.R2, asm.R7, offARPTpa, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, services),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JSet.Imm(asm.R1, int32(SteerARPICMP), "redirect"),
		asm.Ja.Label("pass"),

		// bpf_redirect_map(xsks, rx_queue_index, XDP_PASS): the low bits
		// of the flags are the action when the queue has no socket.
		asm.LoadMem(asm.R2, asm.R6, mdRxQueueIndex, asm.Word).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R1, xsks),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}
