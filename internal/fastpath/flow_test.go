package fastpath

import (
	"sync"
	"testing"
	"unsafe"

	"gotas/internal/wire"
)

func TestHotFlowStateFitsTwoCacheLines(t *testing.T) {
	if s := unsafe.Sizeof(flow{}); s > 128 {
		t.Fatalf("flow is %d bytes, want <= 128", s)
	}
}

func TestFlowTable(t *testing.T) {
	const n = 1000
	keys := make([]FlowKey, n)
	for i := range keys {
		keys[i] = FlowKey{LocalIP: wire.Addr4{10, 0, 0, 1}, RemoteIP: wire.Addr4{10, 0, byte(i >> 8), byte(i)},
			LocalPort: 80, RemotePort: uint16(40000 + i)}
	}
	tb := NewFlowTable(n)
	tb.KeyOf = func(id uint32) *FlowKey { return &keys[id] }
	for i := range keys {
		if !tb.Insert(keys[i].Hash(), uint32(i)) {
			t.Fatal("insert failed")
		}
	}
	for i := range keys {
		if id, ok := tb.Lookup(keys[i].Hash(), &keys[i]); !ok || id != uint32(i) {
			t.Fatalf("lookup %d: %d %v", i, id, ok)
		}
	}
	for i := 0; i < n; i += 2 {
		if !tb.Remove(keys[i].Hash(), uint32(i)) {
			t.Fatalf("remove %d", i)
		}
	}
	for i := range keys {
		_, ok := tb.Lookup(keys[i].Hash(), &keys[i])
		if ok != (i%2 == 1) {
			t.Fatalf("after removal, lookup %d = %v", i, ok)
		}
	}
	miss := FlowKey{LocalPort: 1}
	if _, ok := tb.Lookup(miss.Hash(), &miss); ok {
		t.Fatal("found a key never inserted")
	}
}

// TestFlowTableConcurrent inserts and removes (the slow path and the
// owning core) while a reader looks up a stable set; run with -race.
func TestFlowTableConcurrent(t *testing.T) {
	const n = 256
	keys := make([]FlowKey, 2*n)
	for i := range keys {
		keys[i] = FlowKey{RemoteIP: wire.Addr4{1, 2, byte(i >> 8), byte(i)}, RemotePort: uint16(i)}
	}
	tb := NewFlowTable(2 * n)
	tb.KeyOf = func(id uint32) *FlowKey { return &keys[id] }
	for i := range n {
		tb.Insert(keys[i].Hash(), uint32(i))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			for i := n; i < 2*n; i++ {
				tb.Insert(keys[i].Hash(), uint32(i))
			}
			for i := n; i < 2*n; i++ {
				tb.Remove(keys[i].Hash(), uint32(i))
			}
		}
	}()
	for range 200 {
		for i := range n {
			if id, ok := tb.Lookup(keys[i].Hash(), &keys[i]); !ok || id != uint32(i) {
				t.Errorf("stable key %d lost during churn", i)
				return
			}
		}
	}
	wg.Wait()
}
