package slowpath

import (
	"gotas/wire"
)

// ARP cache timing (ns); tests may shorten them through Config.
const (
	defaultARPTTL     = 60_000_000_000
	defaultARPRetry   = 500_000_000
	defaultARPRetries = 3
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
	requests, timeouts uint64
}

// lookup returns a fresh resolved entry's MAC.
func (a *arpCache) lookup(ip wire.Addr4, now uint64) (wire.MAC, bool) {
	e := a.m[ip]
	if e == nil || !e.resolved || !e.static && now >= e.expires {
		return wire.MAC{}, false
	}
	return e.mac, true
}

// learn records ip at mac (from an ARP packet) and runs the waiters.
func (a *arpCache) learn(ip wire.Addr4, mac wire.MAC, now uint64) {
	e := a.m[ip]
	if e == nil {
		e = &arpEntry{}
		a.m[ip] = e
	}
	if e.static {
		return
	}
	e.mac, e.resolved, e.expires, e.tries = mac, true, now+a.ttl, 0
	w := e.waiters
	e.waiters = nil
	for _, fn := range w {
		fn(mac, true)
	}
}

// resolve calls fn with ip's MAC, at once if known, else once an ARP reply
// arrives (send is called to emit requests) or with ok=false after the
// retries.
func (a *arpCache) resolve(ip wire.Addr4, now uint64, send func(wire.Addr4), fn func(wire.MAC, bool)) {
	if mac, ok := a.lookup(ip, now); ok {
		fn(mac, true)
		return
	}
	e := a.m[ip]
	if e == nil || e.resolved {
		e = &arpEntry{}
		a.m[ip] = e
	}
	e.waiters = append(e.waiters, fn)
	if e.tries == 0 {
		e.tries = 1
		e.expires = now + a.retry
		a.requests++
		send(ip)
	}
}

// tick retries or fails pending resolutions and drops expired entries. It
// returns the next time it has something to do (0: nothing).
func (a *arpCache) tick(now uint64, send func(wire.Addr4)) uint64 {
	var next uint64
	for ip, e := range a.m {
		if e.static {
			continue
		}
		if e.resolved {
			if now >= e.expires {
				delete(a.m, ip)
			}
			continue
		}
		if now < e.expires {
			next = minNZ(next, e.expires)
			continue
		}
		if e.tries >= a.retries {
			a.timeouts++
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
	return next
}

func minNZ(a, b uint64) uint64 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}
