package tcp

// TSTickNs is the period of the TCP timestamp clock (RFC 7323 TSval): one
// millisecond, the fastest rate RFC 7323 section 5.4 allows and the one
// Linux uses by default.
//
// A finer clock breaks interoperability: a receiver's PAWS check (RFC 7323
// section 5; Linux tcp_paws_discard, which tolerates one tick) drops any
// segment whose TSval is more than one tick older than TS.Recent, and
// TS.Recent jumps forward whenever a retransmission fills the hole at
// rcv_nxt. With microsecond ticks every original segment that a
// reordering link delays behind such a retransmission by more than a
// microsecond was discarded by Linux, silently (its challenge ACKs are
// rate limited), so whole flights went unacknowledged until the RTO.
// Millisecond ticks make that window a millisecond.
//
// RTT samples for the RTO therefore come from timing segments in
// microseconds; timestamp echoes only give millisecond samples.
const TSTickNs = 1_000_000

// TSClock converts monotonic nanoseconds to the timestamp clock.
func TSClock(ns uint64) uint32 { return uint32(ns / TSTickNs) }

// TSRTTUs converts a timestamp-echo RTT measurement (now's TSClock minus
// the echoed TSecr, in ticks) to microseconds. The true RTT lies within a
// tick of it; 0 ticks (an RTT below one tick) reads as half a tick.
func TSRTTUs(ticks uint32) uint32 {
	const us = TSTickNs / 1000
	if ticks == 0 {
		return us / 2
	}
	return uint32(min(uint64(ticks)*us, maxRTTSample))
}
