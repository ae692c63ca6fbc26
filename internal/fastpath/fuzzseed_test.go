package fastpath

// The seed corpus of FuzzEngine, written as programs with a builder that
// mirrors the decoder, so each seed says what it exercises; and a test
// that runs them and checks they reach what they are meant to, so the
// fuzzer's invariants do not pass on programs that do nothing.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotas/internal/wire"
)

// progBuilder encodes a program for runProgram.
type progBuilder struct{ b []byte }

func (p *progBuilder) u8(v uint8) *progBuilder { p.b = append(p.b, v); return p }
func (p *progBuilder) u16(v uint16) *progBuilder {
	p.b = append(p.b, byte(v>>8), byte(v))
	return p
}
func (p *progBuilder) u32(v uint32) *progBuilder { return p.u16(uint16(v >> 16)).u16(uint16(v)) }

// seedFlow is the install header (see readOpts).
type seedFlow struct {
	ts, sack, ecn      bool
	mss                uint16
	sndShift, rcvShift uint8
	iss, irs           uint32
	rxLog, txLog       uint8 // ring size 8<<log
	peerWin, advWin    uint16
	tsRecent           uint32
	rttMs              uint8
}

func newProg(f seedFlow) *progBuilder {
	p := &progBuilder{}
	var fl uint8
	if f.ts {
		fl |= 1
	}
	if f.sack {
		fl |= 2
	}
	if f.ecn {
		fl |= 4
	}
	return p.u8(fl).u16(f.mss).u8(f.sndShift).u8(f.rcvShift).u32(f.iss).u32(f.irs).
		u8(f.txLog<<4 | f.rxLog).u16(f.peerWin).u16(f.advWin).u32(f.tsRecent).u8(f.rttMs)
}

// seedSeg is one peer segment; seq is relative to rcv_nxt and ack to
// snd_una (snd_max with segAckFromMax) unless the mode says absolute.
type seedSeg struct {
	flags    wire.TCPFlags
	mode     uint8
	win      uint16
	seq, ack uint32 // int16 deltas unless absolute
	tsDelta  int8
	ecrBack  uint8
	sack     [][2]uint32 // start delta from snd_una (int16), length
	mss      uint16
	ws       uint8
	n        uint16 // payload bytes
	tos      uint8
	ipOpts   uint8 // 4*(1+ipOpts%10) NOP bytes
	urg      uint16
}

func (p *progBuilder) seg(s seedSeg) *progBuilder {
	p.u8(opSeg).u8(uint8(s.flags)).u8(s.mode).u16(s.win)
	if s.mode&segAbsSeq != 0 {
		p.u32(s.seq)
	} else {
		p.u16(uint16(s.seq))
	}
	if s.mode&segAbsAck != 0 {
		p.u32(s.ack)
	} else {
		p.u16(uint16(s.ack))
	}
	if s.mode&segTS != 0 {
		p.u8(uint8(s.tsDelta)).u8(0).u8(s.ecrBack)
	}
	if s.mode&segSACK != 0 {
		p.u8(uint8(len(s.sack)))
		for _, b := range s.sack {
			p.u16(uint16(b[0])).u16(uint16(b[1]))
		}
	}
	if s.mode&segMSS != 0 {
		p.u16(s.mss)
	}
	if s.mode&segWS != 0 {
		p.u8(s.ws)
	}
	p.u16(s.n).u8(s.tos)
	if s.mode&segIPOpts != 0 {
		p.u8(s.ipOpts)
		for range 4 * (1 + int(s.ipOpts)%10) {
			p.u8(wire.TCPOptionNOP)
		}
	}
	if s.flags&wire.TCPFlagURG != 0 {
		p.u16(s.urg)
	}
	return p
}

func (p *progBuilder) write(n uint16) *progBuilder { return p.u8(opWrite).u16(n) }
func (p *progBuilder) read() *progBuilder          { return p.u8(opRead) }
func (p *progBuilder) close() *progBuilder         { return p.u8(opClose) }

// advanceUs moves the clock by a multiple of 100 µs (< 3.2768 s);
// advanceMs by a multiple of 10 ms.
func (p *progBuilder) advanceUs(us uint32) *progBuilder { return p.u8(opAdvance).u16(uint16(us / 100)) }
func (p *progBuilder) advanceMs(ms uint32) *progBuilder {
	return p.u8(opAdvance).u16(1<<15 + uint16(ms/10))
}

const ackPsh = wire.TCPFlagACK | wire.TCPFlagPSH

// data is an in-order data segment acknowledging what we sent.
func data(n uint16) seedSeg {
	return seedSeg{flags: ackPsh, mode: segAckFromMax, win: 0xffff, n: n}
}

// ackAll acknowledges everything sent.
func ackAll() seedSeg { return seedSeg{flags: wire.TCPFlagACK, mode: segAckFromMax, win: 0xffff} }

// engineSeed is a seed and what running it must show.
type engineSeed struct {
	name  string
	prog  *progBuilder
	check func(st fuzzStats) error
}

func engineSeeds() []engineSeed {
	std := seedFlow{mss: 1460, iss: 1000, irs: 2000, rxLog: 11, txLog: 11, peerWin: 0xffff} // 16 KiB rings
	tsSack := std
	tsSack.ts, tsSack.sack, tsSack.tsRecent, tsSack.rttMs, tsSack.mss = true, true, 50, 2, 1448
	wantRx := func(min uint32) func(fuzzStats) error {
		return func(st fuzzStats) error {
			if st.rxBytes < min {
				return fmt.Errorf("delivered %d bytes, want >= %d", st.rxBytes, min)
			}
			return nil
		}
	}
	wantEcho := func(min uint32) func(fuzzStats) error {
		return func(st fuzzStats) error {
			if st.rxBytes < min || st.dataFrames == 0 {
				return fmt.Errorf("delivered %d bytes (want >= %d), sent %d data frames", st.rxBytes, min, st.dataFrames)
			}
			return nil
		}
	}
	wantGone := func(why uint8) func(fuzzStats) error {
		return func(st fuzzStats) error {
			if !st.gone || st.goneWhy != why {
				return fmt.Errorf("gone %v reason %d, want reason %d", st.gone, st.goneWhy, why)
			}
			return nil
		}
	}
	wantFrames := func(n int) func(fuzzStats) error {
		return func(st fuzzStats) error {
			if st.frames < n {
				return fmt.Errorf("%d frames, want >= %d", st.frames, n)
			}
			return nil
		}
	}
	var seeds []engineSeed
	add := func(name string, p *progBuilder, check func(fuzzStats) error) {
		seeds = append(seeds, engineSeed{name, p, check})
	}

	p := newProg(tsSack)
	p.seg(withTS(data(1000))).seg(withTS(data(1000))).read().write(5000).seg(withTS(ackAll())).advanceUs(5000).read()
	add("seed-echo-ts-sack", p, wantEcho(2000))

	p = newProg(tsSack)
	ooo := withTS(data(500))
	ooo.seq = 1000
	p.seg(ooo).seg(withTS(data(1000))).seg(withTS(data(100))).read()
	add("seed-ooo-fill-sack", p, wantRx(1600))

	p = newProg(std)
	p.write(4000)
	for range 14 {
		p.advanceMs(120_000)
	}
	add("seed-rto-until-timeout", p, wantGone(GoneTimeout))

	p = newProg(std)
	p.seg(data(100)).seg(seedSeg{flags: wire.TCPFlagRST, seq: 10}).seg(seedSeg{flags: wire.TCPFlagSYN | wire.TCPFlagACK}).
		seg(seedSeg{flags: wire.TCPFlagRST})
	add("seed-rst-challenge-then-exact", p, wantGone(GoneReset))

	p = newProg(std)
	fin := data(300)
	fin.flags |= wire.TCPFlagFIN
	p.seg(fin).read().write(200).close().seg(ackAll()).advanceMs(1000)
	add("seed-fin-both-ways", p, wantEcho(300))

	zw := std
	zw.peerWin = 0
	p = newProg(zw)
	p.write(3000).advanceMs(1500).advanceMs(3000)
	open := ackAll()
	open.ack = 0
	open.mode = 0
	p.seg(open).advanceUs(1000)
	add("seed-zero-window-persist", p, wantFrames(3))

	ecn := std
	ecn.ecn = true
	p = newProg(ecn)
	ce := data(1000)
	ce.tos = 3
	cwr := data(1000)
	cwr.flags |= wire.TCPFlagCWR
	ece := ackAll()
	ece.flags |= wire.TCPFlagECE
	p.seg(ce).seg(cwr).write(3000).seg(ece).write(3000).seg(ackAll())
	add("seed-ecn-ce-echo", p, wantEcho(2000))

	nosack := std
	nosack.mss = 500
	p = newProg(nosack)
	p.write(6000)
	dup := seedSeg{flags: wire.TCPFlagACK, win: 0xffff}
	p.seg(dup).seg(dup).seg(dup).seg(dup).seg(ackAll())
	add("seed-dupacks-go-back-n", p, wantFrames(12))

	small := std
	small.mss, small.rcvShift, small.sndShift, small.rxLog, small.txLog, small.advWin = 100, 3, 7, 5, 4, 256
	p = newProg(small)
	p.seg(data(200)).seg(data(200)).seg(data(2000)).read().seg(data(50)).write(300).seg(ackAll())
	add("seed-small-rings-scaled", p, wantEcho(200))

	p = newProg(std)
	urg := data(10)
	urg.flags |= wire.TCPFlagURG
	urg.urg = 5
	ipo := data(10)
	ipo.mode |= segIPOpts
	opts := data(10)
	opts.mode |= segMSS | segWS | segSACK
	opts.mss, opts.ws, opts.sack = 1, 200, [][2]uint32{{0xfff0, 0xffff}, {0, 10}}
	p.seg(urg).seg(ipo).seg(opts).read()
	add("seed-urg-ipopts-odd-options", p, wantRx(10))

	p = newProg(tsSack)
	p.write(1460).advanceUs(3000).advanceUs(50000).advanceMs(1000)
	add("seed-tail-loss-probe", p, wantFrames(2))

	return seeds
}

// withTS puts a timestamp (TS.Recent+1, echoing our last TSval) on s.
func withTS(s seedSeg) seedSeg {
	s.mode |= segTS
	s.tsDelta = 1
	return s
}

const engineCorpus = "testdata/fuzz/FuzzEngine"

func corpusFile(b []byte) string {
	return fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
}

// TestEngineSeeds runs every seed through the fuzz checker and asserts it
// reaches what it was written for; the corpus files must match the seeds
// (GOTAS_WRITE_FUZZ_SEEDS=1 rewrites them).
func TestEngineSeeds(t *testing.T) {
	write := os.Getenv("GOTAS_WRITE_FUZZ_SEEDS") != ""
	for _, s := range engineSeeds() {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(engineCorpus, s.name)
			if write {
				if err := os.MkdirAll(engineCorpus, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(corpusFile(s.prog.b)), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if b, err := os.ReadFile(path); err != nil || string(b) != corpusFile(s.prog.b) {
				t.Errorf("%s is missing or stale (%v); rerun with GOTAS_WRITE_FUZZ_SEEDS=1", path, err)
			}
			st := runProgram(t, s.prog.b)
			if err := s.check(st); err != nil {
				t.Fatalf("seed does not exercise what it is for: %v (stats %+v)", err, st)
			}
			if st.frames == 0 {
				t.Fatal("seed made the engine send nothing")
			}
		})
	}
}

// TestEngineCorpusNames keeps crashers named for what they show.
func TestEngineCorpusNames(t *testing.T) {
	ents, _ := os.ReadDir(engineCorpus)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "seed-") && !strings.HasPrefix(e.Name(), "crash-") {
			t.Errorf("%s: name corpus files seed-* or crash-<what-it-shows>", e.Name())
		}
	}
}
