// Package shm holds the shared-memory building blocks that the gotas service
// and its application processes (the Go client library, later a C library)
// use to talk to each other without system calls on the fast path:
//
//   - Region: a sealed memfd mapped MAP_SHARED by both sides. Everything
//     inside it is addressed by byte offsets, never by pointers, because each
//     process maps it at a different address and the Go GC does not scan it.
//   - Allocator: carves a region into aligned areas (service side only; its
//     bookkeeping lives in Go memory where a peer cannot corrupt it).
//   - Producer/Consumer: a single-producer single-consumer queue of
//     fixed-size slots with a "consumer sleeping" word for a spin-then-block
//     doorbell protocol.
//   - RingWriter/RingReader: a byte ring for per-flow stream payload.
//   - Doorbell: an eventfd used to wake a blocked consumer.
//   - SendFds/RecvFds: passing the memfd and eventfds over AF_UNIX
//     SOCK_SEQPACKET with SCM_RIGHTS.
//
// The byte-level layout and the memory-ordering rules are specified in
// docs/ABI.md; a C peer implemented from that document interoperates.
//
// Trust model: the peer process may be buggy or hostile and can write any
// value into any shared word at any time. Every index read from shared
// memory is validated before it is used to compute an address, and a bad
// value is reported as an error wrapping ErrCorrupt instead of causing an
// out-of-bounds access or a panic. Each side keeps its own index in private
// memory and only ever stores it to the shared word, so a peer scribbling on
// our index cannot change what we do. Payload bytes are untrusted too: they
// can change while being read, so a consumer copies a field once and
// validates the copy.
package shm
