package shm

import (
	"encoding/binary"
	"testing"
)

type testMsg struct{ v uint64 }

func (m *testMsg) Put(b []byte) { binary.LittleEndian.PutUint64(b, m.v) }

func TestBacklogKeepsOrderWhenTheQueueIsFull(t *testing.T) {
	r, err := Create("backlog", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := InitQueue(r, 0, 64, 4); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(r, 0, 64, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(r, 0, 64, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b Backlog[testMsg, *testMsg]
	for v := uint64(1); v <= 10; v++ {
		b.Send(p, testMsg{v})
	}
	if b.Len() != 6 {
		t.Fatalf("kept %d messages, want 6 (queue of 4)", b.Len())
	}
	var got []uint64
	for len(got) < 10 {
		n, err := c.Peek(4)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			got = append(got, binary.LittleEndian.Uint64(c.Slot(i)))
		}
		c.Release(n)
		b.Flush(p)
		if n == 0 && b.Len() == 0 {
			break
		}
	}
	for i, v := range got {
		if v != uint64(i+1) {
			t.Fatalf("received %v, want 1..10 in order", got)
		}
	}
	if len(got) != 10 || b.Len() != 0 {
		t.Fatalf("received %d messages, %d still kept", len(got), b.Len())
	}
}
