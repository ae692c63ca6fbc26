package tcp

// Seq is a TCP sequence number. Comparisons use RFC 793 / RFC 1323 (RFC 7323
// section 5.2) serial-number arithmetic modulo 2^32: s is "less than" t when
// the signed 32-bit difference s-t is negative. The ordering is only
// meaningful for numbers less than 2^31 apart, which TCP guarantees for
// everything inside one window. For two numbers exactly 2^31 apart the
// result is, as in Linux's before()/after(), that each is less than the other.
type Seq uint32

// LessThan reports s < t modulo 2^32.
func (s Seq) LessThan(t Seq) bool { return int32(s-t) < 0 }

// LessThanEq reports s <= t modulo 2^32.
func (s Seq) LessThanEq(t Seq) bool { return int32(s-t) <= 0 }

// GreaterThan reports s > t modulo 2^32.
func (s Seq) GreaterThan(t Seq) bool { return int32(s-t) > 0 }

// GreaterThanEq reports s >= t modulo 2^32.
func (s Seq) GreaterThanEq(t Seq) bool { return int32(s-t) >= 0 }

// InRange reports a <= s < b modulo 2^32, i.e. whether s lies in the
// half-open range that starts at a and is b-a bytes long. The range is empty
// when a == b. Unlike LessThan it is exact for ranges of any size up to
// 2^32-1 because it compares unsigned distances from a.
func (s Seq) InRange(a, b Seq) bool { return uint32(s-a) < uint32(b-a) }

// InWindow reports whether s lies in the n bytes starting at first.
func (s Seq) InWindow(first Seq, n uint32) bool { return uint32(s-first) < n }

// Add returns s advanced by n bytes.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Sub returns s moved back by n bytes.
func (s Seq) Sub(n uint32) Seq { return s - Seq(n) }

// Size returns the number of bytes from s up to end, i.e. the length of the
// range [s, end). It is end-s modulo 2^32, so the caller must know that
// s <= end (serially); otherwise the result is 2^32 minus the distance.
func (s Seq) Size(end Seq) uint32 { return uint32(end - s) }

// MaxSeq returns the serially larger of a and b.
func MaxSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return b
	}
	return a
}

// MinSeq returns the serially smaller of a and b.
func MinSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return a
	}
	return b
}

// SACKBlock is one [Start, End) range of a TCP SACK option (RFC 2018): the
// left edge is the first sequence number of the block, the right edge the
// sequence number immediately following its last byte.
type SACKBlock struct {
	Start, End Seq
}

// Len returns the number of bytes in the block.
func (b SACKBlock) Len() uint32 { return uint32(b.End - b.Start) }
