package slowpath

import (
	"encoding/binary"
	"testing"
)

// The reference value is OpenSSL's: openssl mac -macopt
// hexkey:000102030405060708090a0b0c0d0e0f -macopt size:8 -in m SIPHASH,
// with m the bytes 00..0f.
func TestSipHash128(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = byte(i)
	}
	le := binary.LittleEndian
	k0, k1 := le.Uint64(b[:8]), le.Uint64(b[8:])
	got := sipHash128(k0, k1, k0, k1)
	var out [8]byte
	le.PutUint64(out[:], got)
	if want := [8]byte{0xDB, 0x9B, 0xC2, 0x57, 0x7F, 0xCC, 0x2A, 0x3F}; out != want {
		t.Fatalf("got % x, want % x", out, want)
	}
	if a := testing.AllocsPerRun(100, func() { sipHash128(1, 2, 3, 4) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
