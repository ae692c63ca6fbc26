// Package tcp holds the allocation-free building blocks that the fast path
// and the slow path share: sequence-number arithmetic (Seq), the receiver's
// out-of-order interval set (OOO), the sender's RFC 6675 SACK scoreboard
// (Scoreboard, with RFC 2883 D-SACK detection and RFC 3708 undo of
// spurious recoveries), RFC 8985 RACK time-based loss detection on top of
// it (RACK), the RFC 6298 retransmission-timer estimator (RTOEstimator),
// a single-level timing wheel for per-flow pacing (Wheel) with an exact
// rate helper (Pacer), and RFC 7323 window-scaling helpers (RcvWindow).
//
// Everything here is a small value type or a structure whose storage is
// allocated once at construction; no method allocates, uses interfaces or
// maps, or takes a lock. Callers provide synchronisation: a value is owned
// by one core (fast path) or by the slow path at a time.
//
// Sequence ranges are half-open, [Start, End), everywhere in this package.
// Where RFC 6675 uses inclusive "highest octet" variables (HighData, HighRxt,
// RescueRxt) this package stores the exclusive end instead (one past that
// octet), which is the value a TCP implementation has at hand (snd_nxt).
package tcp
