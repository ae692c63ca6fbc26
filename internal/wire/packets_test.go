package wire

import (
	"encoding/hex"
	"strings"
)

// Frames captured with tcpdump on Linux 6.18 (see the comment on each). The
// veth captures had tx checksum offload off on both ends, and tcpdump
// reported every TCP, IPv4 and ICMP checksum in them as correct; that makes
// them known-good values from an independent implementation.
//
// Client 10.7.0.1 (76:53:b8:ab:cb:fc) port 55378, server 10.7.0.2
// (fa:bd:6f:7f:7b:6f) port 80.
var (
	// ARP, Request who-has 10.7.0.2 tell 10.7.0.1.
	capARPRequest = mustHex(`ffffffffffff7653b8abcbfc08060001080006040001
		7653b8abcbfc0a0700010000000000000a070002`)
	// ARP, Reply 10.7.0.2 is-at fa:bd:6f:7f:7b:6f.
	capARPReply = mustHex(`7653b8abcbfcfabd6f7f7b6f08060001080006040002
		fabd6f7f7b6f0a0700027653b8abcbfc0a070001`)
	// 10.7.0.1.55378 > 10.7.0.2.80: Flags [S], cksum 0xa708 (correct),
	// seq 2984114006, win 65535,
	// options [mss 1460,sackOK,TS val 2147060503 ecr 0,nop,wscale 6].
	// IPv4: id 23642, DF, ttl 64, cksum 0xca51.
	capSYN = mustHex(`fabd6f7f7b6f7653b8abcbfc0800
		4500003c5c5a40004006ca510a0700010a070002
		d8520050b1ddf75600000000a002ffffa7080000
		020405b40402080a7ff98b170000000001030306`)
	// 10.7.0.2.80 > 10.7.0.1.55378: Flags [S.], cksum 0xc99f (correct),
	// seq 1748154072, ack 2984114007, win 65160,
	// options [mss 1460,sackOK,TS val 569155027 ecr 2147060503,nop,wscale 10].
	capSYNACK = mustHex(`7653b8abcbfcfabd6f7f7b6f0800
		4500003c00004000400626ac0a0700020a070001
		0050d8526832b6d8b1ddf757a012fe88c99f0000
		020405b40402080a21ec9dd37ff98b170103030a`)
	// 10.7.0.1.55378 > 10.7.0.2.80: Flags [.], cksum 0x3704 (correct),
	// ack 1, win 49139, options [nop,nop,TS val 2147060503 ecr 569155027].
	capACK = mustHex(`fabd6f7f7b6f7653b8abcbfc0800
		450000345c5b40004006ca580a0700010a070002
		d8520050b1ddf7576832b6d98010bff337040000
		0101080a7ff98b1721ec9dd3`)
	// 10.7.0.1.55378 > 10.7.0.2.80: Flags [P.], cksum 0xf323 (correct),
	// seq 1:6, ack 1, win 49139,
	// options [nop,nop,TS val 2147060504 ecr 569155027], length 5 "hello".
	capData = mustHex(`fabd6f7f7b6f7653b8abcbfc0800
		450000395c5c40004006ca520a0700010a070002
		d8520050b1ddf7576832b6d98018bff3f3230000
		0101080a7ff98b1821ec9dd368656c6c6f`)
	// 10.7.0.2.80 > 10.7.0.1.55378: Flags [P.], cksum 0xa8a5 (correct),
	// length 6 "world!" (an even-length payload).
	capData2 = mustHex(`7653b8abcbfcfabd6f7f7b6f0800
		4500003aa5fd4000400680b00a0700020a070001
		0050d8526832b6d9b1ddf75c80180040a8a50000
		0101080a21ec9dd47ff98b18776f726c6421`)
	// 10.7.0.1.55378 > 10.7.0.2.80: Flags [F.], cksum 0x36f6 (correct).
	capFIN = mustHex(`fabd6f7f7b6f7653b8abcbfc0800
		450000345c5e40004006ca550a0700010a070002
		d8520050b1ddf75c6832b6df8011bff336f60000
		0101080a7ff98b1821ec9dd4`)
	// 10.7.0.1 > 10.7.0.2: ICMP echo request, id 6425, seq 1, length 64.
	capEchoRequest = mustHex(`fabd6f7f7b6f7653b8abcbfc0800
		450000549f3b40004001875d0a0700010a070002
		0800452c191900012969026b00000000a621040000000000
		62636465616263646561626364656162636465616263646561626364656162636465616263646561`)
	// 10.7.0.2 > 10.7.0.1: ICMP echo reply, the kernel's answer to it.
	capEchoReply = mustHex(`7653b8abcbfcfabd6f7f7b6f0800
		450000541da30000400148f60a0700020a070001
		00004d2c191900012969026b00000000a621040000000000
		62636465616263646561626364656162636465616263646561626364656162636465616263646561`)

	// Captured over lo, which offloads checksums: the TCP field holds the
	// partial (pseudo-header only) sum. 127.0.0.1.42740 > 127.0.0.1.5555.
	// Flags [S], cksum 0xfe30 (tcpdump: incorrect -> 0x0a25), length 40.
	capLoSYN = mustHex(`0000000000000000000000000800
		4500003c855540004006b7647f0000017f000001
		a6f415b320dfb5f800000000a002ffd7fe300000
		0204ffd70402080af160c0f9000000000103030a`)
	// Flags [P.], cksum 0xfe2d (tcpdump: incorrect -> 0xa397), "hello".
	capLoData = mustHex(`0000000000000000000000000800
		45000039855740004006b7657f0000017f000001
		a6f415b320dfb5f98993733080180040fe2d0000
		0101080af160c0f9ba6b93f968656c6c6f`)
)

var (
	macClient = MAC{0x76, 0x53, 0xb8, 0xab, 0xcb, 0xfc}
	macServer = MAC{0xfa, 0xbd, 0x6f, 0x7f, 0x7b, 0x6f}
	ipClient  = Addr4{10, 7, 0, 1}
	ipServer  = Addr4{10, 7, 0, 2}
	ipLocal   = Addr4{127, 0, 0, 1}
)

// capturedTCP lists the veth TCP frames, all with correct checksums.
var capturedTCP = []struct {
	name  string
	frame []byte
	csum  uint16
}{
	{"SYN", capSYN, 0xa708},
	{"SYN-ACK", capSYNACK, 0xc99f},
	{"ACK", capACK, 0x3704},
	{"data-odd", capData, 0xf323},
	{"data-even", capData2, 0xa8a5},
	{"FIN", capFIN, 0x36f6},
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// clone returns a copy, so a test can modify a shared capture.
func clone(b []byte) []byte { return append([]byte(nil), b...) }

// withVLAN returns frame with an 802.1Q (or other tpid) tag inserted after
// the addresses.
func withVLAN(frame []byte, tpid, tci uint16) []byte {
	out := make([]byte, 0, len(frame)+VLANTagLen)
	out = append(out, frame[:12]...)
	out = append(out, byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci))
	return append(out, frame[12:]...)
}
