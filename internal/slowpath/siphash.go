package slowpath

import "math/bits"

// sipHash128 is SipHash-2-4 (Aumasson and Bernstein, 2012) of a 16-byte
// message m0 || m1 (each little-endian) under key k0 || k1: a keyed hash
// that is cheap enough to run for every SYN of a flood and allocates
// nothing (the SYN cookie and the ephemeral-port offset, RFC 6056
// algorithm 3, both use it; Linux uses SipHash for both too).
func sipHash128(k0, k1, m0, m1 uint64) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	for _, m := range [3]uint64{m0, m1, 16 << 56} { // the last block: the length
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	v2 ^= 0xff
	for range 4 {
		round()
	}
	return v0 ^ v1 ^ v2 ^ v3
}
