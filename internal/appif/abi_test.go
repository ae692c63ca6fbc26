package appif

import "testing"

func TestCodecsRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	c := Cmd{Conn: MakeHandle(7, 9), TxBump: 1, RxBump: 2, Flags: CmdTxClose}
	c.Put(b)
	var c2 Cmd
	c2.Get(b)
	e := Ev{Conn: MakeHandle(1, 2), RxBump: 3, TxBump: 4, Flags: EvRxFin | EvTxFinAcked}
	e.Put(b)
	var e2 Ev
	e2.Get(b)
	m := Ctl{Type: MsgAccepted, LocalPort: 80, Status: -5, Cookie: 11, Handle: 12, Aux: 13,
		RemoteIP: [4]byte{1, 2, 3, 4}, RemotePort: 99, Backlog: 7, RxOff: 1 << 40, TxOff: 3, RxSize: 4, TxSize: 5}
	m.Put(b)
	var m2 Ctl
	m2.Get(b)
	if c2 != c || e2 != e || m2 != m {
		t.Fatalf("round trip: %+v %+v %+v", c2, e2, m2)
	}
	if h := MakeHandle(5, 6); h.Index() != 5 || h.Gen() != 6 {
		t.Fatal("handle")
	}
	d := Desc{Index: 3, CmdSlots: 4, EvSlots: 8, ReqSlots: 16, RespSlots: 32, ReqOff: 64, RespOff: 128,
		CmdOff: []uint64{192, 256}, EvOff: []uint64{320, 384}}
	db := make([]byte, DescSize)
	d.Put(db)
	d2, ok := ParseDesc(db)
	if !ok || d2.Index != 3 || d2.RespOff != 128 || len(d2.CmdOff) != 2 || d2.EvOff[1] != 384 {
		t.Fatalf("desc %+v %v", d2, ok)
	}
	db[0] ^= 1
	if _, ok := ParseDesc(db); ok {
		t.Fatal("bad magic accepted")
	}
}
