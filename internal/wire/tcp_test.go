package wire

import (
	"bytes"
	"testing"
)

func TestTCPCaptured(t *testing.T) {
	tests := []struct {
		name     string
		frame    []byte
		src, dst uint16
		seq, ack uint32
		flags    TCPFlags
		window   uint16
		csum     uint16
		doff     int
		payload  string
	}{
		{"SYN", capSYN, 55378, 80, 2984114006, 0, TCPFlagSYN, 65535, 0xa708, 40, ""},
		{"SYN-ACK", capSYNACK, 80, 55378, 1748154072, 2984114007, TCPFlagSYN | TCPFlagACK, 65160, 0xc99f, 40, ""},
		{"ACK", capACK, 55378, 80, 2984114007, 1748154073, TCPFlagACK, 49139, 0x3704, 32, ""},
		{"data", capData, 55378, 80, 2984114007, 1748154073, TCPFlagPSH | TCPFlagACK, 49139, 0xf323, 32, "hello"},
		{"FIN", capFIN, 55378, 80, 2984114012, 1748154079, TCPFlagFIN | TCPFlagACK, 49139, 0x36f6, 32, ""},
	}
	for _, tt := range tests {
		ip, err := ParseIPv4(tt.frame[EthernetHeaderLen:])
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		tcp, err := ParseTCP(ip.Payload())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tcp.SrcPort() != tt.src || tcp.DstPort() != tt.dst || tcp.SeqNum() != tt.seq ||
			tcp.AckNum() != tt.ack || tcp.Flags() != tt.flags || tcp.Window() != tt.window ||
			tcp.Checksum() != tt.csum || tcp.DataOffset() != tt.doff || tcp.UrgentPtr() != 0 ||
			string(tcp.Payload()) != tt.payload || len(tcp.Options()) != tt.doff-20 {
			t.Errorf("%s: %d>%d seq %d ack %d %v win %d csum %#04x doff %d payload %q",
				tt.name, tcp.SrcPort(), tcp.DstPort(), tcp.SeqNum(), tcp.AckNum(), tcp.Flags(),
				tcp.Window(), tcp.Checksum(), tcp.DataOffset(), tcp.Payload())
		}
	}
}

func TestTCPFlagsString(t *testing.T) {
	tests := map[TCPFlags]string{
		0:                       "0",
		TCPFlagSYN:              "SYN",
		TCPFlagSYN | TCPFlagACK: "SYN|ACK",
		TCPFlagFIN | TCPFlagPSH: "FIN|PSH",
		0xff:                    "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR",
		TCPFlagECE | TCPFlagCWR: "ECE|CWR",
		TCPFlagRST | TCPFlagURG: "RST|URG",
	}
	for f, want := range tests {
		if got := f.String(); got != want {
			t.Errorf("%#02x: %q, want %q", uint8(f), got, want)
		}
	}
	if TCPFlagFIN != 0x01 || TCPFlagSYN != 0x02 || TCPFlagRST != 0x04 || TCPFlagPSH != 0x08 ||
		TCPFlagACK != 0x10 || TCPFlagURG != 0x20 || TCPFlagECE != 0x40 || TCPFlagCWR != 0x80 {
		t.Error("flag bit values")
	}
}

func TestParseTCPErrors(t *testing.T) {
	good := capSYN[EthernetHeaderLen+20:] // 40 bytes, data offset 10
	mod := func(v byte) []byte {
		b := clone(good)
		b[12] = v
		return b
	}
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrTruncated},
		{"19-bytes", good[:19], ErrTruncated},
		{"doff-0", mod(0x00), ErrTCPDataOffset},
		{"doff-4", mod(0x40), ErrTCPDataOffset},
		{"doff-11", mod(0xb0), ErrTCPDataOffset},
		{"doff-15", mod(0xf0), ErrTCPDataOffset},
		{"options-cut", good[:39], ErrTCPDataOffset},
		{"doff-6-in-20", mod(0x60)[:20], ErrTCPDataOffset},
	}
	for _, tt := range tests {
		if _, err := ParseTCP(tt.b); err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
	// Reserved bits beside the data offset do not matter.
	if tcp, err := ParseTCP(mod(0x5f)); err != nil || tcp.DataOffset() != 20 || len(tcp.Payload()) != 20 {
		t.Errorf("doff 5 with reserved bits: %v", err)
	}
}

func TestTCPSetters(t *testing.T) {
	seg := TCP(make([]byte, 40))
	seg.SetSrcPort(55378)
	seg.SetDstPort(80)
	seg.SetSeqNum(2984114006)
	seg.SetAckNum(0)
	seg.SetDataOffset(40)
	seg.SetFlags(TCPFlagSYN)
	seg.SetWindow(65535)
	seg.SetUrgentPtr(0)
	copy(seg.Options(), capSYN[EthernetHeaderLen+40:])
	SetTCPChecksum(ipClient, ipServer, seg)
	want := capSYN[EthernetHeaderLen+20:]
	if !bytes.Equal(seg, want) {
		t.Errorf("got  %x\nwant %x", []byte(seg), want)
	}
	seg.SetUrgentPtr(0xbeef)
	seg.SetChecksum(0x1234)
	if seg.UrgentPtr() != 0xbeef || seg.Checksum() != 0x1234 {
		t.Error("SetUrgentPtr/SetChecksum")
	}
}

func TestPutTCP(t *testing.T) {
	// Rebuild the captured SYN from fields and options.
	var o TCPOptions
	o.Present = OptMSS | OptSACKPermitted | OptTimestamps | OptWScale
	o.MSS, o.WScale, o.TSVal = 1460, 6, 2147060503
	b := make([]byte, 64)
	n := PutTCP(b, TCPFields{SrcPort: 55378, DstPort: 80, SeqNum: 2984114006, Flags: TCPFlagSYN, Window: 65535}, &o)
	if n != 40 {
		t.Fatalf("n = %d", n)
	}
	SetTCPChecksum(ipClient, ipServer, b[:n])
	if want := capSYN[EthernetHeaderLen+20:]; !bytes.Equal(b[:n], want) {
		t.Errorf("SYN\n got %x\nwant %x", b[:n], want)
	}

	// The captured data segment: options, then payload, then checksum.
	o = TCPOptions{Present: OptTimestamps, TSVal: 2147060504, TSEcr: 569155027}
	for i := range b {
		b[i] = 0xee
	}
	n = PutTCP(b, TCPFields{SrcPort: 55378, DstPort: 80, SeqNum: 2984114007, AckNum: 1748154073,
		Flags: TCPFlagPSH | TCPFlagACK, Window: 49139}, &o)
	n += copy(b[n:], "hello")
	SetTCPChecksum(ipClient, ipServer, b[:n])
	if want := capData[EthernetHeaderLen+20:]; !bytes.Equal(b[:n], want) {
		t.Errorf("data\n got %x\nwant %x", b[:n], want)
	}

	// No options.
	n = PutTCP(b, TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagRST}, nil)
	tcp, err := ParseTCP(b[:n])
	if n != 20 || err != nil || tcp.DataOffset() != 20 || tcp.Flags() != TCPFlagRST || tcp.Checksum() != 0 {
		t.Errorf("RST: n %d err %v", n, err)
	}
}

func TestOptionsCapacity(t *testing.T) {
	tcp, _ := ParseTCP(clone(capData[EthernetHeaderLen+20:]))
	opts := tcp.Options()
	if cap(opts) != len(opts) {
		t.Fatalf("TCP options cap %d, len %d", cap(opts), len(opts))
	}
	_ = append(opts, 0xff)
	if string(tcp.Payload()) != "hello" {
		t.Errorf("append to Options overwrote the payload: %q", tcp.Payload())
	}
	ip, _ := ParseIPv4(clone(capData[EthernetHeaderLen:]))
	if o := ip.Options(); len(o) != 0 || cap(o) != 0 {
		t.Errorf("IPv4 options len %d cap %d", len(o), cap(o))
	}
}
