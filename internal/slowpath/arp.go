package slowpath

import (
	"sync/atomic"

	"gotas/internal/wire"
)

// ARP cache timing (ns) and size.
const (
	// defaultARPTTL: how long a learned entry is used without being
	// learned again (Linux base_reachable_time is 30 s, randomised to
	// 15-45 s; 60 s is BSD's order of magnitude for a cache that is only
	// used to open connections: established flows keep their MAC).
	defaultARPTTL     = 60_000_000_000
	defaultARPRetry   = 500_000_000
	defaultARPRetries = 3 // Linux mcast_solicit
	// maxARPEntries bounds the cache, resolved and pending (Linux
	// gc_thresh3 is 1024; a service host talks to more peers).
	maxARPEntries = 4096
	// maxARPPending bounds resolutions in progress, each of which sends
	// requests and holds waiters.
	maxARPPending = 256
)

// arpEntry is one neighbour: resolved (mac valid until expires) or being
// resolved (requests sent, waiters queued).
type arpEntry struct {
	mac      wire.MAC
	resolved bool
	static   bool
	expires  uint64 // resolved: ns; pending: time of the next request
	tries    int
	waiters  []func(mac wire.MAC, ok bool)
}

type arpCache struct {
	m                  map[wire.Addr4]*arpEntry
	ttl, retry         uint64
	retries            int
	maxEntries         int
	maxPending         int
	pending            int    // unresolved entries in m
	next               uint64 // earliest expiry or retry in m; 0: none
	requests, timeouts uint64
	refused            atomic.Uint64 // entries not created because the cache was full
}

func newARPCache(retry uint64, retries int) arpCache {
	return arpCache{m: map[wire.Addr4]*arpEntry{}, ttl: defaultARPTTL, retry: retry, retries: retries,
		maxEntries: maxARPEntries, maxPending: maxARPPending}
}

// lookup returns a fresh resolved entry's MAC.
func (a *arpCache) lookup(ip wire.Addr4, now uint64) (wire.MAC, bool) {
	e := a.m[ip]
	if e == nil || !e.resolved || !e.static && now >= e.expires {
		return wire.MAC{}, false
	}
	return e.mac, true
}

// learn records ip at mac from an ARP packet for our address, and runs the
// waiters. As Linux does, it only updates an entry we have (resolved, or
// pending: our request is outstanding) unless the packet is a request to
// us, whose sender we are about to talk to; so unsolicited replies cannot
// fill the cache. It returns the entry's expiry (0: nothing learned).
func (a *arpCache) learn(ip wire.Addr4, mac wire.MAC, now uint64, request bool) uint64 {
	e := a.m[ip]
	if e == nil {
		if !request {
			return 0
		}
		if len(a.m) >= a.maxEntries {
			a.refused.Add(1)
			return 0
		}
		e = &arpEntry{}
		a.m[ip] = e
	}
	if e.static {
		return 0
	}
	if !e.resolved && e.tries > 0 {
		a.pending--
	}
	e.mac, e.resolved, e.expires, e.tries = mac, true, now+a.ttl, 0
	a.next = minNZ(a.next, e.expires)
	w := e.waiters
	e.waiters = nil
	for _, fn := range w {
		fn(mac, true)
	}
	return e.expires
}

// resolve calls fn with ip's MAC, at once if known, else once an ARP reply
// arrives (send is called to emit requests) or with ok=false after the
// retries, or at once when the cache is full.
func (a *arpCache) resolve(ip wire.Addr4, now uint64, send func(wire.Addr4), fn func(wire.MAC, bool)) {
	if mac, ok := a.lookup(ip, now); ok {
		fn(mac, true)
		return
	}
	e := a.m[ip]
	if e == nil && len(a.m) >= a.maxEntries || (e == nil || e.resolved) && a.pending >= a.maxPending {
		a.refused.Add(1)
		fn(wire.MAC{}, false)
		return
	}
	if e == nil || e.resolved {
		e = &arpEntry{} // a stale entry is resolved again
		a.m[ip] = e
	}
	e.waiters = append(e.waiters, fn)
	if e.tries == 0 {
		a.pending++
		e.tries = 1
		e.expires = now + a.retry
		a.next = minNZ(a.next, e.expires)
		a.requests++
		send(ip)
	}
}

// tick retries or fails pending resolutions and drops expired entries. It
// returns the next time it has something to do (0: nothing); it looks at
// the entries only when something is due.
func (a *arpCache) tick(now uint64, send func(wire.Addr4)) uint64 {
	if a.next == 0 || now < a.next {
		return a.next
	}
	var next uint64
	for ip, e := range a.m {
		if e.static {
			continue
		}
		if now < e.expires {
			next = minNZ(next, e.expires)
			continue
		}
		if e.resolved {
			delete(a.m, ip)
			continue
		}
		if e.tries >= a.retries {
			a.timeouts++
			a.pending--
			delete(a.m, ip)
			for _, fn := range e.waiters {
				fn(wire.MAC{}, false)
			}
			continue
		}
		e.tries++
		e.expires = now + a.retry
		a.requests++
		send(ip)
		next = minNZ(next, e.expires)
	}
	a.next = next
	return next
}

func minNZ(a, b uint64) uint64 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}
