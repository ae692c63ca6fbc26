package shm

// Backlog holds messages a Producer had no room for, in order, so that a
// full queue delays a message instead of losing it. Messages encode
// themselves into a slot with Put.
type Backlog[M any, PM interface {
	*M
	Put(slot []byte)
}] struct {
	msgs []M
}

// Send puts m into p's queue if nothing is waiting before it and there is
// room; otherwise it keeps m for Flush.
func (b *Backlog[M, PM]) Send(p *Producer, m M) {
	if len(b.msgs) == 0 {
		if n, _ := p.Reserve(1); n == 1 {
			PM(&m).Put(p.Slot(0))
			p.Commit(1)
			return
		}
	}
	b.msgs = append(b.msgs, m)
}

// Add keeps m for the next Flush without trying the queue, for messages
// that must not be seen before the sender has finished something.
func (b *Backlog[M, PM]) Add(m M) { b.msgs = append(b.msgs, m) }

// Flush moves as many kept messages into p's queue as fit.
func (b *Backlog[M, PM]) Flush(p *Producer) {
	k := 0
	for ; k < len(b.msgs); k++ {
		if n, _ := p.Reserve(1); n == 0 {
			break
		}
		PM(&b.msgs[k]).Put(p.Slot(0))
		p.Commit(1)
	}
	b.msgs = b.msgs[:copy(b.msgs, b.msgs[k:])]
}

// Len is the number of messages kept.
func (b *Backlog[M, PM]) Len() int { return len(b.msgs) }
