package slowpath

import (
	"errors"
	"net/netip"
	"sort"
)

// Routes is a static IPv4 routing table with longest-prefix match. The
// local subnet is added by the stack as directly connected (no next hop).
type Routes struct {
	r []route // sorted by prefix length, longest first
}

type route struct {
	dst     netip.Prefix
	nexthop netip.Addr // invalid: directly connected
}

// Add adds a route to dst via nexthop; an invalid (zero) nexthop means dst
// is directly connected. A second route to the same prefix replaces the
// first.
func (rt *Routes) Add(dst netip.Prefix, nexthop netip.Addr) error {
	if !dst.Addr().Is4() || nexthop.IsValid() && !nexthop.Is4() {
		return errors.New("slowpath: only IPv4 routes")
	}
	dst = dst.Masked()
	for i := range rt.r {
		if rt.r[i].dst == dst {
			rt.r[i].nexthop = nexthop
			return nil
		}
	}
	rt.r = append(rt.r, route{dst, nexthop})
	sort.SliceStable(rt.r, func(i, j int) bool { return rt.r[i].dst.Bits() > rt.r[j].dst.Bits() })
	return nil
}

// Lookup returns the next hop for dst: the gateway of the longest matching
// prefix, or dst itself when that prefix is directly connected. ok is
// false when no route matches.
func (rt *Routes) Lookup(dst netip.Addr) (hop netip.Addr, ok bool) {
	for _, r := range rt.r {
		if r.dst.Contains(dst) {
			if r.nexthop.IsValid() {
				return r.nexthop, true
			}
			return dst, true
		}
	}
	return netip.Addr{}, false
}
