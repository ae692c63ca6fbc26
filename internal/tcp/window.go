package tcp

// MaxWindowShift is the largest window-scale shift (RFC 7323 section 2.3).
const MaxWindowShift = 14

// MaxWindowField is the largest value of the 16-bit TCP window field.
const MaxWindowField = 0xffff

// WindowShiftFor returns the window-scale shift to offer for a receive
// buffer of bufSize bytes: the smallest shift s for which the largest
// advertisable window, 65535<<s, covers the buffer, at most MaxWindowShift.
// A buffer of 64 KiB - 1 or less needs no scaling (0), though the option
// should still be sent with shift 0 to let the peer scale its own window.
func WindowShiftFor(bufSize uint32) uint8 {
	var s uint8
	for s < MaxWindowShift && uint64(MaxWindowField)<<s < uint64(bufSize) {
		s++
	}
	return s
}

// ClampShift returns the shift to use for a Window Scale option received
// with value s: RFC 7323 section 2.3 says a value above 14 MUST be treated
// as 14.
func ClampShift(s uint8) uint8 { return min(s, MaxWindowShift) }

// DecodeWindow returns the peer's window in bytes from the window field of
// one of its segments and the shift it announced in its SYN (use 0 for the
// SYN and SYN-ACK themselves, whose window is never scaled, and when either
// side did not send the option). Shifts above 14 are treated as 14.
func DecodeWindow(field uint16, shift uint8) uint32 {
	return uint32(field) << ClampShift(shift)
}

// RcvWindow computes the window field we advertise, keeping the right edge
// of the offered window (rcv_nxt + window) from moving back (RFC 7323
// section 2.4, RFC 9293 3.8.6.2.2 "SHOULD NOT shrink").
//
// With free bytes of buffer the real edge is T = rcv_nxt + free; it only
// moves forward (data in moves rcv_nxt and free by the same amount, reads
// grow free). The field is free rounded down to the scale unit u = 1<<shift,
// which puts the edge in (T-u, T]. When rcv_nxt has moved by an amount that
// is not a multiple of u, that can fall below the previous edge; the field
// is then rounded up to reach the previous edge again, but never past the
// first unit boundary at or above T (edge < T+u). So:
//
//   - the edge never moves back while it was backed by buffer space (the
//     previous edge <= T), in particular never when shift is 0;
//   - the window never promises u or more bytes beyond the free space.
//
// Both cannot always hold together: RFC 7323 2.4 describes exactly this
// choice. A strictly monotonic edge (always rounding up to the old edge, as
// Linux does unless net.ipv4.tcp_shrink_window is set) makes the edge creep
// forward by every segment shorter than u, so with shift >= 11 and
// 1448-byte segments the window would never close however full the buffer
// gets. Here the edge may retract only over unbacked bytes (< u), which a
// peer must tolerate (RFC 9293: senders handle shrinking windows).
//
// The receive path must never write more than the real free space into the
// buffer (trim the payload; the peer retransmits the rest). Edge() is the
// right edge of every window advertised so far: RFC 7323 2.4 requires the
// receiver to treat sequence numbers below it as in window (acceptable,
// ACKed, not reset) even if it cannot buffer them.
//
// The zero value has shift 0 and an edge at 0; call Init once rcv_nxt is
// known.
type RcvWindow struct {
	edge  Seq
	shift uint8
}

// Init starts tracking with our window-scale shift (0 when scaling was not
// negotiated) and the initial rcv_nxt; nothing has been advertised yet.
func (w *RcvWindow) Init(shift uint8, rcvNxt Seq) {
	w.shift, w.edge = ClampShift(shift), rcvNxt
}

// Shift returns our window-scale shift.
func (w *RcvWindow) Shift() uint8 { return w.shift }

// Edge returns the highest right edge advertised so far.
func (w *RcvWindow) Edge() Seq { return w.edge }

// SynField returns the window field for a SYN or SYN-ACK, which is never
// scaled: the free space capped at 65535. It records the edge it offers.
func (w *RcvWindow) SynField(rcvNxt Seq, free uint32) uint16 {
	win := min(free, MaxWindowField)
	w.advance(rcvNxt.Add(win))
	return uint16(win)
}

// Field returns the window field for a segment acknowledging rcvNxt when
// free bytes of receive buffer are available, and records the edge it
// offers (see RcvWindow for the rounding rule). free must not exceed the
// space the buffer really has from rcvNxt on.
func (w *RcvWindow) Field(rcvNxt Seq, free uint32) uint16 {
	unit := uint32(1) << w.shift
	win := min(free>>w.shift, MaxWindowField)
	if edge := rcvNxt.Add(win << w.shift); edge.LessThan(w.edge) && rcvNxt.LessThan(w.edge) {
		// Rounding down would pull the edge back: round up to the old
		// edge, but no further than the first unit at or above T.
		need := uint32(w.edge - rcvNxt)
		up := min((need+unit-1)>>w.shift, (free>>w.shift)+min(free&(unit-1), 1))
		win = min(up, MaxWindowField)
	}
	w.advance(rcvNxt.Add(win << w.shift))
	return uint16(win)
}

func (w *RcvWindow) advance(edge Seq) {
	if edge.GreaterThan(w.edge) {
		w.edge = edge
	}
}
