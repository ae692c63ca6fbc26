package wire

import "encoding/binary"

// TCP option kinds.
const (
	TCPOptionEOL           = 0
	TCPOptionNOP           = 1
	TCPOptionMSS           = 2
	TCPOptionWS            = 3
	TCPOptionSACKPermitted = 4
	TCPOptionSACK          = 5
	TCPOptionTS            = 8
	TCPOptionExp           = 253 // RFC 4727 experiment, shared via ExID (RFC 6994)
)

const (
	// MaxSACKBlocks is the most SACK blocks 40 option bytes can carry.
	MaxSACKBlocks = 4
	// MaxExpData is the most data an experimental option can carry: the
	// whole option space less kind, length and the 16-bit ExID. Sizing the
	// array for it means every well-formed option parses without loss.
	MaxExpData = TCPMaxOptionsLen - 4
)

// OptionSet says which options a TCPOptions holds.
type OptionSet uint8

const (
	OptMSS OptionSet = 1 << iota
	OptWScale
	OptSACKPermitted
	OptTimestamps
	OptSACK // NumSACK blocks in SACK
	OptExp  // ExpID with ExpData[:ExpLen]
)

// SACKBlock is one selective acknowledgement: bytes [Start, End) arrived.
type SACKBlock struct{ Start, End uint32 }

// TCPOptions holds the options gotas understands, in a fixed-size value so
// that parsing and writing them never allocates. Options of other kinds are
// skipped when parsing.
type TCPOptions struct {
	Present OptionSet
	WScale  uint8 // raw shift count; RFC 7323 says to treat more than 14 as 14
	MSS     uint16
	TSVal   uint32
	TSEcr   uint32
	NumSACK uint8
	SACK    [MaxSACKBlocks]SACKBlock
	// ExpID and ExpData are the experimental option (kind 253), reserved for
	// in-band telemetry; ExpID tells experiments apart.
	ExpID   uint16
	ExpLen  uint8
	ExpData [MaxExpData]byte
}

// Has reports whether all options in s are present.
func (o *TCPOptions) Has(s OptionSet) bool { return o.Present&s == s }

// SACKBlocks returns the SACK blocks held.
func (o *TCPOptions) SACKBlocks() []SACKBlock {
	if o.Present&OptSACK == 0 {
		return nil
	}
	return o.SACK[:min(int(o.NumSACK), MaxSACKBlocks)]
}

// AddSACK appends a SACK block, reporting false when MaxSACKBlocks are held.
func (o *TCPOptions) AddSACK(b SACKBlock) bool {
	if o.Present&OptSACK == 0 {
		o.NumSACK = 0
	}
	if o.NumSACK >= MaxSACKBlocks {
		return false
	}
	o.SACK[o.NumSACK] = b
	o.NumSACK++
	o.Present |= OptSACK
	return true
}

// Exp returns the experimental option's data.
func (o *TCPOptions) Exp() []byte {
	if o.Present&OptExp == 0 {
		return nil
	}
	return o.ExpData[:min(int(o.ExpLen), MaxExpData)]
}

// SetExp sets the experimental option, reporting false (and changing
// nothing) if data is longer than MaxExpData.
func (o *TCPOptions) SetExp(id uint16, data []byte) bool {
	if len(data) > MaxExpData {
		return false
	}
	o.ExpID = id
	o.ExpLen = uint8(copy(o.ExpData[:], data))
	clear(o.ExpData[o.ExpLen:])
	o.Present |= OptExp
	return true
}

// ParseTCPOptions parses the option bytes of a TCP header into o, which it
// resets first. It skips NOPs and options of unknown kind, stops at EOL, and
// rejects an option whose length overruns b (ErrOptionTruncated) or does not
// fit its kind (ErrOptionLen). When a kind repeats, the last one wins. b
// longer than the 40 bytes a header can hold is rejected too.
func ParseTCPOptions(b []byte, o *TCPOptions) error {
	*o = TCPOptions{}
	if len(b) > TCPMaxOptionsLen {
		return ErrOptionsTooLong
	}
	// Linux sends NOP, NOP, TS on every segment of an established
	// connection; take that without walking the options.
	if len(b) == 12 && binary.BigEndian.Uint32(b) == 0x0101080a {
		o.Present = OptTimestamps
		o.TSVal = binary.BigEndian.Uint32(b[4:])
		o.TSEcr = binary.BigEndian.Uint32(b[8:])
		return nil
	}
	for i := 0; i < len(b); {
		kind := b[i]
		if kind == TCPOptionEOL {
			break
		}
		if kind == TCPOptionNOP {
			i++
			continue
		}
		if i+1 >= len(b) {
			return ErrOptionTruncated
		}
		l := int(b[i+1])
		if l < 2 {
			return ErrOptionLen
		}
		if l > len(b)-i {
			return ErrOptionTruncated
		}
		v := b[i+2 : i+l]
		switch kind {
		case TCPOptionMSS:
			if l != 4 {
				return ErrOptionLen
			}
			o.MSS = binary.BigEndian.Uint16(v)
			o.Present |= OptMSS
		case TCPOptionWS:
			if l != 3 {
				return ErrOptionLen
			}
			o.WScale = v[0]
			o.Present |= OptWScale
		case TCPOptionSACKPermitted:
			if l != 2 {
				return ErrOptionLen
			}
			o.Present |= OptSACKPermitted
		case TCPOptionTS:
			if l != 10 {
				return ErrOptionLen
			}
			o.TSVal = binary.BigEndian.Uint32(v)
			o.TSEcr = binary.BigEndian.Uint32(v[4:])
			o.Present |= OptTimestamps
		case TCPOptionSACK:
			n := len(v) / 8
			if len(v)%8 != 0 || n < 1 || n > MaxSACKBlocks {
				return ErrOptionLen
			}
			o.SACK = [MaxSACKBlocks]SACKBlock{}
			for j := range n {
				o.SACK[j] = SACKBlock{
					Start: binary.BigEndian.Uint32(v[8*j:]),
					End:   binary.BigEndian.Uint32(v[8*j+4:]),
				}
			}
			o.NumSACK = uint8(n)
			o.Present |= OptSACK
		case TCPOptionExp:
			if l < 4 {
				return ErrOptionLen
			}
			o.ExpID = binary.BigEndian.Uint16(v)
			o.ExpData = [MaxExpData]byte{}
			o.ExpLen = uint8(copy(o.ExpData[:], v[2:]))
			o.Present |= OptExp
		}
		i += l
	}
	return nil
}

// Len returns how many bytes Put writes: a multiple of 4, at most 40.
func (o *TCPOptions) Len() int {
	n, _, _, _ := o.layout()
	return n
}

// layout decides how Put arranges the options. The preferred layout pads
// each option with NOPs to a 4-byte boundary, as Linux does, so the receiver
// reads aligned words; when that exceeds 40 bytes, the options are packed
// back to back instead. If they still do not fit, SACK blocks are dropped
// from the end (older blocks matter least, RFC 2018 4), and only if none is
// left does the experimental option go.
func (o *TCPOptions) layout() (size, nsack int, packed, exp bool) {
	p := o.Present
	var aligned, tight int
	if p&OptMSS != 0 {
		aligned += 4
		tight += 4
	}
	if p&OptTimestamps != 0 {
		aligned += 12 // SACKOK or two NOPs, then TS
		tight += 10
	} else if p&OptSACKPermitted != 0 {
		aligned += 4
	}
	if p&OptSACKPermitted != 0 {
		tight += 2
	}
	if p&OptWScale != 0 {
		aligned += 4
		tight += 3
	}
	n0 := 0
	if p&OptSACK != 0 {
		n0 = min(int(o.NumSACK), MaxSACKBlocks)
	}
	e := 0
	if p&OptExp != 0 {
		e = 4 + min(int(o.ExpLen), MaxExpData)
	}
	for {
		for n := n0; n >= 0; n-- {
			s := 0
			if n > 0 {
				s = 2 + 8*n
			}
			if a := aligned + pad4(s) + pad4(e); a <= TCPMaxOptionsLen {
				return a, n, false, e > 0
			}
			if t := pad4(tight + s + e); t <= TCPMaxOptionsLen {
				return t, n, true, e > 0
			}
		}
		// Without SACK blocks the aligned layout takes at most 20 bytes plus
		// the experimental option, so this second round always returns.
		e = 0
	}
}

func pad4(n int) int { return (n + 3) &^ 3 }

// Put writes the options to b and returns Len(). b needs room for Len()
// bytes; a TCPMaxOptionsLen buffer always suffices. With timestamps, an
// aligned layout fits three SACK blocks (RFC 2018 3).
func (o *TCPOptions) Put(b []byte) int {
	size, n, packed, exp := o.layout()
	if size == 0 {
		return 0
	}
	b = b[:size]
	p := o.Present
	i := 0
	if p&OptMSS != 0 {
		b[0], b[1] = TCPOptionMSS, 4
		binary.BigEndian.PutUint16(b[2:], o.MSS)
		i = 4
	}
	if packed {
		if p&OptSACKPermitted != 0 {
			b[i], b[i+1] = TCPOptionSACKPermitted, 2
			i += 2
		}
		if p&OptTimestamps != 0 {
			i += o.putTS(b[i:])
		}
		if p&OptWScale != 0 {
			b[i], b[i+1], b[i+2] = TCPOptionWS, 3, o.WScale
			i += 3
		}
	} else {
		// Linux's SYN layout: MSS, SACKOK+TS, NOP+WS.
		switch {
		case p&OptTimestamps != 0:
			b[i], b[i+1] = TCPOptionNOP, TCPOptionNOP
			if p&OptSACKPermitted != 0 {
				b[i], b[i+1] = TCPOptionSACKPermitted, 2
			}
			i += 2
			i += o.putTS(b[i:])
		case p&OptSACKPermitted != 0:
			b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACKPermitted, 2
			i += 4
		}
		if p&OptWScale != 0 {
			b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionWS, 3, o.WScale
			i += 4
		}
		if n > 0 {
			b[i], b[i+1] = TCPOptionNOP, TCPOptionNOP
			i += 2
		}
	}
	if n > 0 {
		b[i], b[i+1] = TCPOptionSACK, uint8(2+8*n)
		i += 2
		for _, s := range o.SACK[:n] {
			binary.BigEndian.PutUint32(b[i:], s.Start)
			binary.BigEndian.PutUint32(b[i+4:], s.End)
			i += 8
		}
	}
	if exp {
		d := o.ExpData[:min(int(o.ExpLen), MaxExpData)]
		b[i], b[i+1] = TCPOptionExp, uint8(4+len(d))
		binary.BigEndian.PutUint16(b[i+2:], o.ExpID)
		i += 4 + copy(b[i+4:], d)
	}
	for ; i < size; i++ {
		b[i] = TCPOptionNOP
	}
	return size
}

func (o *TCPOptions) putTS(b []byte) int {
	b[0], b[1] = TCPOptionTS, 10
	binary.BigEndian.PutUint32(b[2:], o.TSVal)
	binary.BigEndian.PutUint32(b[6:], o.TSEcr)
	return 10
}
