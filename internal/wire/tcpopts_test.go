package wire

import (
	"bytes"
	"testing"
)

// Option bytes of the captured segments.
var (
	optsLinuxSYN    = capSYN[EthernetHeaderLen+40:]    // mss 1460,sackOK,TS val 2147060503 ecr 0,nop,wscale 6
	optsLinuxSYNACK = capSYNACK[EthernetHeaderLen+40:] // mss 1460,sackOK,TS val 569155027 ecr 2147060503,nop,wscale 10
	optsLinuxACK    = capACK[EthernetHeaderLen+40:]    // nop,nop,TS val 2147060503 ecr 569155027
)

func TestParseTCPOptions(t *testing.T) {
	sack := func(n int) []SACKBlock {
		all := []SACKBlock{{0x01020304, 0x05060708}, {0x11121314, 0x15161718}, {0x21222324, 0x25262728}, {0x31323334, 0x35363738}}
		return all[:n]
	}
	sackBytes := mustHex("0102030405060708 1112131415161718 2122232425262728 3132333435363738")
	tests := []struct {
		name string
		b    []byte
		want TCPOptions
	}{
		{"empty", nil, TCPOptions{}},
		{"linux-syn", optsLinuxSYN, TCPOptions{
			Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale,
			MSS:     1460, WScale: 6, TSVal: 2147060503, TSEcr: 0}},
		{"linux-synack", optsLinuxSYNACK, TCPOptions{
			Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale,
			MSS:     1460, WScale: 10, TSVal: 569155027, TSEcr: 2147060503}},
		{"linux-ack", optsLinuxACK, TCPOptions{Present: OptTimestamps, TSVal: 2147060503, TSEcr: 569155027}},
		{"ts-eol-padded", mustHex("080a0000000100000002 0000"), TCPOptions{Present: OptTimestamps, TSVal: 1, TSEcr: 2}},
		{"ts-then-nops", mustHex("080a0000000100000002 0101"), TCPOptions{Present: OptTimestamps, TSVal: 1, TSEcr: 2}},
		{"sack-1", append(mustHex("0101050a"), sackBytes[:8]...), withSACK(TCPOptions{}, sack(1))},
		{"sack-4", append(mustHex("01010522"), sackBytes...), withSACK(TCPOptions{}, sack(4))},
		{"ts-sack-3", append(mustHex("0101080a0000000a0000000b 0101051a"), sackBytes[:24]...),
			withSACK(TCPOptions{Present: OptTimestamps, TSVal: 10, TSEcr: 11}, sack(3))},
		{"exp", mustHex("fd08abcd01020304"), withExp(TCPOptions{}, 0xabcd, []byte{1, 2, 3, 4})},
		{"exp-no-data", mustHex("fd04abcd"), withExp(TCPOptions{}, 0xabcd, nil)},
		{"exp-max", append(mustHex("fd28beef"), bytes.Repeat([]byte{0x5a}, 36)...), withExp(TCPOptions{}, 0xbeef, bytes.Repeat([]byte{0x5a}, 36))},
		{"unknown-skipped", mustHex("1e0400000204 05b4 fe06aaaabbbb 2202 0303 0e"), TCPOptions{Present: OptMSS | OptWScale, MSS: 1460, WScale: 14}},
		{"eol-stops", mustHex("020405b4 00 ff ff 0303"), TCPOptions{Present: OptMSS, MSS: 1460}},
		{"last-wins", mustHex("020405b4 02040218"), TCPOptions{Present: OptMSS, MSS: 536}},
		{"sack-last-wins", append(append(mustHex("0512"), sackBytes[:16]...), append(mustHex("050a"), sackBytes[24:]...)...),
			withSACK(TCPOptions{}, []SACKBlock{{0x31323334, 0x35363738}})},
		{"exp-last-wins", mustHex("fd0a0001 aabbccddeeff fd050002 99"), withExp(TCPOptions{}, 2, []byte{0x99})},
		{"ws-raw", mustHex("030310"), TCPOptions{Present: OptWScale, WScale: 16}},
		{"only-nops", mustHex("01010101"), TCPOptions{}},
	}
	for _, tt := range tests {
		var o TCPOptions
		o.MSS = 9999 // must be reset
		if err := ParseTCPOptions(tt.b, &o); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if o != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, o, tt.want)
		}
	}
}

func withSACK(o TCPOptions, blocks []SACKBlock) TCPOptions {
	for _, b := range blocks {
		o.AddSACK(b)
	}
	return o
}

func withExp(o TCPOptions, id uint16, data []byte) TCPOptions {
	o.SetExp(id, data)
	return o
}

func TestParseTCPOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		b    string
		err  error
	}{
		{"mss-len-3", "020305 00", ErrOptionLen},
		{"mss-len-5", "0205050000 000000", ErrOptionLen},
		{"ws-len-2", "0302 0000", ErrOptionLen},
		{"ws-len-4", "03040700", ErrOptionLen},
		{"sackok-len-3", "040300 00", ErrOptionLen},
		{"ts-len-8", "0808000000010000", ErrOptionLen},
		{"ts-len-12", "080c000000010000000200 00", ErrOptionLen},
		{"sack-len-2", "0502 0000", ErrOptionLen},
		{"sack-len-9", "0509 00000000000000 00", ErrOptionLen},
		{"sack-len-17", "0511 0000000000000000 00000000000000 00", ErrOptionLen},
		{"exp-len-3", "fd03ab 00", ErrOptionLen},
		{"exp-len-2", "fd02 0000", ErrOptionLen},
		{"len-0", "1e00 0000", ErrOptionLen},
		{"len-1", "1e01 0000", ErrOptionLen},
		{"mss-len-0", "0200", ErrOptionLen},
		{"no-length-byte", "0101 01 02", ErrOptionTruncated},
		{"no-length-byte-unknown", "fe", ErrOptionTruncated},
		{"mss-overrun", "020405", ErrOptionTruncated},
		{"ts-overrun", "0101080a0000000100000002"[:20], ErrOptionTruncated},
		{"unknown-overrun", "1e0a 00000000", ErrOptionTruncated},
		{"sack-overrun", "0101 0522 0000000000000000", ErrOptionTruncated},
		{"sack-5-blocks", "052a" + hexZeros(40), ErrOptionsTooLong},
		{"41-bytes", hexOnes(41), ErrOptionsTooLong},
	}
	for _, tt := range tests {
		var o TCPOptions
		if err := ParseTCPOptions(mustHex(tt.b), &o); err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
	// 40 NOPs is the most a header can carry and is fine.
	var o TCPOptions
	if err := ParseTCPOptions(mustHex(hexOnes(40)), &o); err != nil {
		t.Errorf("40 NOPs: %v", err)
	}
}

func hexZeros(n int) string { return string(bytes.Repeat([]byte("00"), n)) }
func hexOnes(n int) string  { return string(bytes.Repeat([]byte("01"), n)) }

func TestTCPOptionsPut(t *testing.T) {
	blocks := []SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	sackHex := "0000000100000002000000030000000400000005000000060000000700000008"
	ts := TCPOptions{Present: OptTimestamps, TSVal: 0x0a0b0c0d, TSEcr: 0x01020304}
	tests := []struct {
		name string
		o    TCPOptions
		want string
	}{
		{"none", TCPOptions{}, ""},
		{"linux-syn", TCPOptions{Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale,
			MSS: 1460, WScale: 6, TSVal: 2147060503}, "020405b40402080a7ff98b170000000001030306"},
		{"syn-no-ts", TCPOptions{Present: OptMSS | OptSACKPermitted | OptWScale, MSS: 1460, WScale: 7},
			"020405b4 01010402 01030307"},
		{"mss-only", TCPOptions{Present: OptMSS, MSS: 536}, "02040218"},
		{"ts", ts, "0101080a0a0b0c0d01020304"},
		{"sack-4", withSACK(TCPOptions{}, blocks), "01010522" + sackHex},
		{"ts-sack-4-trims-to-3", withSACK(ts, blocks),
			"0101080a0a0b0c0d01020304 0101051a" + sackHex[:48]},
		// Aligned, TS+WS+3 blocks take 44 bytes; packed they fit in 39.
		{"packed", withSACK(TCPOptions{Present: OptTimestamps | OptWScale, TSVal: 1, TSEcr: 2, WScale: 9}, blocks[:3]),
			"080a0000000100000002 030309 051a" + sackHex[:48] + " 01"},
		{"exp", withExp(ts, 0xabcd, []byte("telem!")),
			"0101080a0a0b0c0d01020304 fd0aabcd74656c656d21 0101"},
		{"exp-before-sack", withSACK(withExp(ts, 0xabcd, make([]byte, 20)), blocks),
			"0101080a0a0b0c0d01020304 fd18abcd" + hexZeros(20)},
		{"exp-too-big-dropped", withExp(TCPOptions{Present: OptMSS, MSS: 1460}, 1, make([]byte, 36)),
			"020405b4"},
		{"exp-max-alone", withExp(TCPOptions{}, 1, bytes.Repeat([]byte{7}, 36)),
			"fd280001" + string(bytes.Repeat([]byte("07"), 36))},
		{"sack-flag-without-blocks", TCPOptions{Present: OptSACK}, ""},
		{"blocks-without-flag", TCPOptions{NumSACK: 2, SACK: [4]SACKBlock{{1, 2}, {3, 4}}}, ""},
	}
	for _, tt := range tests {
		want := mustHex(tt.want)
		var buf [TCPMaxOptionsLen + 8]byte
		for i := range buf {
			buf[i] = 0xee
		}
		n := tt.o.Put(buf[:])
		if n != tt.o.Len() {
			t.Errorf("%s: Put = %d, Len = %d", tt.name, n, tt.o.Len())
		}
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("%s:\n got %x\nwant %x", tt.name, buf[:n], want)
		}
		if buf[n] != 0xee {
			t.Errorf("%s: wrote past %d", tt.name, n)
		}
		if n%4 != 0 || n > TCPMaxOptionsLen {
			t.Errorf("%s: length %d", tt.name, n)
		}
	}
}

// TestTCPOptionsRoundTrip checks that whatever fits comes back unchanged.
func TestTCPOptionsRoundTrip(t *testing.T) {
	full := TCPOptions{Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale,
		MSS: 8960, WScale: 14, TSVal: 0xffffffff, TSEcr: 0x80000000}
	cases := []TCPOptions{
		{},
		full,
		withSACK(TCPOptions{Present: OptTimestamps, TSVal: 5}, []SACKBlock{{1, 2}, {3, 4}, {5, 6}}),
		withSACK(TCPOptions{}, []SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}),
		withExp(full, 0xfeed, []byte{1, 2, 3}),
		withExp(TCPOptions{Present: OptSACKPermitted}, 0, bytes.Repeat([]byte{9}, 34)),
	}
	for i, o := range cases {
		var buf [TCPMaxOptionsLen]byte
		n := o.Put(buf[:])
		var got TCPOptions
		if err := ParseTCPOptions(buf[:n], &got); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
		if got != o {
			t.Errorf("case %d:\n got %+v\nwant %+v", i, got, o)
		}
	}
}

func TestTCPOptionsHelpers(t *testing.T) {
	var o TCPOptions
	if o.SACKBlocks() != nil || o.Exp() != nil || o.Has(OptSACK) {
		t.Error("zero value not empty")
	}
	for i := range MaxSACKBlocks {
		if !o.AddSACK(SACKBlock{uint32(i), uint32(i + 1)}) {
			t.Fatalf("AddSACK %d refused", i)
		}
	}
	if o.AddSACK(SACKBlock{9, 10}) {
		t.Error("fifth AddSACK accepted")
	}
	if got := o.SACKBlocks(); len(got) != 4 || got[3] != (SACKBlock{3, 4}) {
		t.Errorf("SACKBlocks = %v", got)
	}
	// Clearing the flag discards the blocks for the next AddSACK.
	o.Present &^= OptSACK
	o.AddSACK(SACKBlock{7, 8})
	if got := o.SACKBlocks(); len(got) != 1 || got[0] != (SACKBlock{7, 8}) {
		t.Errorf("after reset SACKBlocks = %v", got)
	}
	if !o.SetExp(7, []byte("abcdef")) || o.ExpID != 7 || string(o.Exp()) != "abcdef" {
		t.Errorf("SetExp: id %d data %q", o.ExpID, o.Exp())
	}
	if !o.SetExp(8, []byte("xy")) || string(o.Exp()) != "xy" || o.ExpData[2] != 0 {
		t.Errorf("shorter SetExp left %q / %x", o.Exp(), o.ExpData[:6])
	}
	if o.SetExp(9, make([]byte, MaxExpData+1)) || o.ExpID != 8 {
		t.Error("oversized SetExp accepted or changed the option")
	}
	if !o.Has(OptSACK|OptExp) || o.Has(OptSACK|OptMSS) {
		t.Error("Has")
	}
}

func TestNoAllocs(t *testing.T) {
	var o TCPOptions
	var buf [TCPMaxOptionsLen]byte
	syn := TCPOptions{Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale, MSS: 1460, WScale: 7}
	syn = withExp(withSACK(syn, []SACKBlock{{1, 2}}), 3, []byte{1, 2})
	bad := mustHex("020405")
	frame := capData
	checks := []struct {
		name string
		f    func()
	}{
		{"ParseTCPOptions", func() { _ = ParseTCPOptions(optsLinuxSYN, &o) }},
		{"ParseTCPOptions-fast", func() { _ = ParseTCPOptions(optsLinuxACK, &o) }},
		{"ParseTCPOptions-error", func() { _ = ParseTCPOptions(bad, &o) }},
		{"Put", func() { syn.Put(buf[:]) }},
		{"Len", func() { _ = syn.Len() }},
		{"parse-frame", func() {
			_, hl, _ := ParseEthernet(frame)
			ip, _ := ParseIPv4(frame[hl:])
			tcp, _ := ParseTCP(ip.Payload())
			_ = VerifyTCPChecksum(ip.Src(), ip.Dst(), tcp)
			_ = ParseTCPOptions(tcp.Options(), &o)
		}},
		{"parse-errors", func() {
			_, _, _ = ParseEthernet(frame[:3])
			_, _ = ParseIPv4(frame[:3])
			_, _ = ParseTCP(frame[:3])
			_, _ = ParseARP(frame[:3])
			_, _ = ParseICMPv4(frame[:3])
		}},
	}
	for _, c := range checks {
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocs", c.name, n)
		}
	}
}

func BenchmarkParseTCPOptions(b *testing.B) {
	sack := TCPOptions{Present: OptTimestamps}
	sack = withSACK(sack, []SACKBlock{{1, 2}, {3, 4}, {5, 6}})
	var sackBuf [TCPMaxOptionsLen]byte
	sackOpts := sackBuf[:sack.Put(sackBuf[:])]
	for _, bc := range []struct {
		name string
		b    []byte
	}{
		{"syn", optsLinuxSYN},
		{"ts", optsLinuxACK},
		{"ts-sack3", sackOpts},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var o TCPOptions
			for b.Loop() {
				if err := ParseTCPOptions(bc.b, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTCPOptionsPut(b *testing.B) {
	syn := TCPOptions{Present: OptMSS | OptSACKPermitted | OptTimestamps | OptWScale, MSS: 1460, WScale: 7}
	sack := withSACK(TCPOptions{Present: OptTimestamps}, []SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}})
	for _, bc := range []struct {
		name string
		o    *TCPOptions
	}{{"syn", &syn}, {"ts-sack4", &sack}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf [TCPMaxOptionsLen]byte
			for b.Loop() {
				bc.o.Put(buf[:])
			}
		})
	}
}
