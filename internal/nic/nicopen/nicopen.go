// Package nicopen opens a packet I/O back-end from a "kind:name" spec, the
// form the --nic flag takes, so the service and embedded stacks open NICs
// the same way.
package nicopen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"gotas/internal/nic"
	"gotas/internal/nic/afpacket"
	"gotas/internal/nic/afxdp"
	"gotas/internal/nic/tap"
)

// Spec names a back-end and its interface.
type Spec struct {
	Kind string // afxdp, afpacket, tap
	Name string
}

func (s Spec) String() string { return s.Kind + ":" + s.Name }

// Kinds lists the back-ends Parse accepts.
var Kinds = []string{"afxdp", "afpacket", "tap"}

// ErrConfig marks errors in what the caller asked for (a bad spec, a
// missing interface), as opposed to failures of the system.
var ErrConfig = errors.New("nic configuration")

// Parse parses kind:name, e.g. afxdp:eth0.
func Parse(s string) (Spec, error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return Spec{}, fmt.Errorf("%w: --nic=%q: want KIND:INTERFACE with KIND one of %s", ErrConfig, s, strings.Join(Kinds, ", "))
	}
	found := false
	for _, k := range Kinds {
		found = found || k == kind
	}
	if !found {
		return Spec{}, fmt.Errorf("%w: --nic=%q: unknown back-end %q; want one of %s", ErrConfig, s, kind, strings.Join(Kinds, ", "))
	}
	if len(name) > 15 || strings.ContainsAny(name, "/ \t") {
		return Spec{}, fmt.Errorf("%w: --nic=%q: %q is not a valid interface name (at most 15 characters, no '/' or spaces)", ErrConfig, s, name)
	}
	return Spec{Kind: kind, Name: name}, nil
}

// Options tune Open.
type Options struct {
	// Addr is the service address the XDP program steers to the sockets.
	Addr netip.Addr
	// XDPMode is auto (native, else generic; generic first on veth when
	// multi-buffer works, see afxdp.Port.attach), native or generic.
	XDPMode string
	// Tx is how AF_XDP transmits (afxdp.TxPath): "gso" (the default: the
	// stack's 64 KB frames leave whole through a packet socket with
	// segmentation offload; docs/PERF.md, "Segment offload") or "ring"
	// (the XSK's TX ring only, one frame a packet).
	Tx string
}

// Open opens spec in the calling thread's network namespace.
func Open(spec Spec, opt Options) (nic.Port, error) {
	switch spec.Kind {
	case "afxdp", "afpacket":
		ifi, err := net.InterfaceByName(spec.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: --nic=%s: no interface %q in this network namespace", ErrConfig, spec, spec.Name)
		}
		if spec.Kind == "afpacket" {
			return nonNil(afpacket.Open(afpacket.Config{Ifname: spec.Name}))
		}
		var mode afxdp.Mode
		switch opt.XDPMode {
		case "", "auto":
			mode = afxdp.ModeAuto
		case "native":
			mode = afxdp.ModeNative
		case "generic":
			mode = afxdp.ModeGeneric
		default:
			return nil, fmt.Errorf("%w: XDP mode %q: want auto, native or generic", ErrConfig, opt.XDPMode)
		}
		tx, err := txPath(opt.Tx)
		if err != nil {
			return nil, err
		}
		ip := opt.Addr.As4()
		return nonNil(afxdp.Open(afxdp.Config{
			Ifname:       spec.Name,
			ServiceIP:    ip,
			StealARPICMP: !linuxOwns(ifi, opt.Addr),
			Mode:         mode,
			// A Linux peer with many flows bursts far past 4096 frames
			// while the core is busy; the drops (fill ring empty) made
			// its BBR bandwidth estimate collapse to tens of kbit/s for
			// some flows, which then crawled for minutes (1000-connection
			// echo test). 16384 frames (32 MiB of UMEM) absorb the bursts.
			RxFrames: 16384,
			// Frames larger than a chunk (the Linux peer's GSO packets
			// in generic mode on veth) arrive whole instead of being
			// dropped, where the kernel supports it (6.6+).
			MultiBuffer: true,
			Tx:          tx,
		}))
	case "tap":
		return nonNil(tap.Open(tap.Config{Name: spec.Name, Create: true}))
	}
	return nil, fmt.Errorf("%w: unknown back-end %q", ErrConfig, spec.Kind)
}

func txPath(s string) (afxdp.TxPath, error) {
	for _, t := range []afxdp.TxPath{afxdp.TxSegments, afxdp.TxRing} {
		if s == t.String() {
			return t, nil
		}
	}
	if s == "" {
		return afxdp.TxSegments, nil
	}
	return 0, fmt.Errorf("%w: AF_XDP transmit path %q: want gso or ring", ErrConfig, s)
}

// nonNil keeps a failed Open's nil *Port from becoming a non-nil nic.Port.
func nonNil[P nic.Port](p P, err error) (nic.Port, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// linuxOwns reports whether the kernel has addr on ifi. If it does, Linux
// keeps answering ARP and ping for it and the XDP program steers only TCP.
func linuxOwns(ifi *net.Interface, addr netip.Addr) bool {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(net.IP(addr.AsSlice())) {
			return true
		}
	}
	return false
}
