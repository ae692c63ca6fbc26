package wire

import (
	"bytes"
	"testing"
)

func TestICMPv4Captured(t *testing.T) {
	ip, err := ParseIPv4(capEchoRequest[EthernetHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseICMPv4(ip.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != ICMPv4EchoRequest || m.Code() != 0 || m.Checksum() != 0x452c ||
		m.ID() != 6425 || m.Seq() != 1 || len(m.Payload()) != 56 || !m.ChecksumValid() {
		t.Errorf("type %d code %d csum %#04x id %d seq %d payload %d valid %v",
			m.Type(), m.Code(), m.Checksum(), m.ID(), m.Seq(), len(m.Payload()), m.ChecksumValid())
	}
	if !bytes.HasSuffix(m.Payload(), []byte("cdeabcdea")) {
		t.Errorf("payload %q", m.Payload())
	}
}

func TestICMPv4ToEchoReply(t *testing.T) {
	req := clone(capEchoRequest[EthernetHeaderLen+20:])
	want := capEchoReply[EthernetHeaderLen+20:]
	m := ICMPv4(req)
	if !m.ToEchoReply() {
		t.Fatal("ToEchoReply = false for an echo request")
	}
	// Linux's reply carries 0x4d2c, the same bytes we must produce.
	if !bytes.Equal(req, want) {
		t.Errorf("reply\n got %x\nwant %x", req, want)
	}
	if !m.ChecksumValid() || m.Checksum() != 0x4d2c {
		t.Errorf("reply checksum %#04x valid %v", m.Checksum(), m.ChecksumValid())
	}
	if m.ToEchoReply() {
		t.Error("ToEchoReply = true for an echo reply")
	}
	if !bytes.Equal(req, want) {
		t.Error("a refused ToEchoReply changed the message")
	}
	m[0], m[1] = ICMPv4EchoRequest, 1
	if m.ToEchoReply() {
		t.Error("ToEchoReply = true for code 1")
	}
	if ICMPv4(req[:7]).ToEchoReply() {
		t.Error("ToEchoReply = true for 7 bytes")
	}
}

// TestICMPv4ToEchoReplyMatchesRecompute checks the incremental update
// against a full sum for many checksums, odd payloads included.
func TestICMPv4ToEchoReplyMatchesRecompute(t *testing.T) {
	for n := 8; n < 80; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + n)
		}
		b[0], b[1], b[2], b[3] = ICMPv4EchoRequest, 0, 0, 0
		m := ICMPv4(b)
		copy(b[2:], []byte{byte(Checksum(b) >> 8), byte(Checksum(b))})
		if !m.ChecksumValid() || !m.ToEchoReply() {
			t.Fatalf("len %d: setup", n)
		}
		inc := m.Checksum()
		if !m.ChecksumValid() {
			t.Errorf("len %d: reply does not verify", n)
		}
		b[2], b[3] = 0, 0
		if full := Checksum(b); inc != full && !(inc == 0xffff && full == 0) {
			t.Errorf("len %d: incremental %#04x, recompute %#04x", n, inc, full)
		}
	}
}

func TestICMPv4ToEchoReplyAllZero(t *testing.T) {
	// id 0, seq 0, no payload: the reply is all zero but for its checksum,
	// which must then be 0xffff; 0x0000 would not verify.
	m := ICMPv4{ICMPv4EchoRequest, 0, 0xf7, 0xff, 0, 0, 0, 0}
	if !m.ChecksumValid() || !m.ToEchoReply() {
		t.Fatal("setup")
	}
	if m.Checksum() != 0xffff || !m.ChecksumValid() {
		t.Errorf("reply checksum %#04x, valid %v", m.Checksum(), m.ChecksumValid())
	}
}

func TestParseICMPv4Errors(t *testing.T) {
	for n := range ICMPv4HeaderLen {
		if _, err := ParseICMPv4(make([]byte, n)); err != ErrTruncated {
			t.Errorf("len %d: err = %v", n, err)
		}
	}
	if m, err := ParseICMPv4(make([]byte, 8)); err != nil || len(m.Payload()) != 0 {
		t.Errorf("8 bytes: %v", err)
	}
}
