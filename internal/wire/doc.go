// Package wire reads and writes the packet headers gotas speaks: Ethernet
// (with one optional VLAN tag), ARP, IPv4, ICMPv4 echo and TCP, plus the
// Internet checksum.
//
// A header is a view: a named byte-slice type such as TCP or IPv4 whose
// methods read and write fields in place, in the style of gVisor's
// pkg/tcpip/header:
//
//	tcp, err := wire.ParseTCP(ip.Payload())
//	if err != nil { ... }
//	seq := tcp.SeqNum()
//	tcp.SetAckNum(seq + 1)
//
// Views never copy and never allocate: a view aliases the frame it was cut
// from, so it is valid only as long as that buffer is (for a received frame,
// until the next nic.Queue.Recv). Parse functions are the trust boundary:
// they check that the bytes are long enough and self-consistent, return an
// error otherwise, and never panic whatever the input. Accessors on a view
// that came from a Parse function are then safe; accessors on a slice
// converted by hand assume the caller checked the length.
//
// Builders (PutEthernet, PutIPv4, PutTCP, ...) write into a caller-owned
// buffer and return the bytes written. They panic, like encoding/binary,
// when the buffer is too short: that is a bug in the caller, not bad input.
package wire
