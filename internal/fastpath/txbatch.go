package fastpath

import "gotas/internal/nic"

// largeBufs is how many large buffers a batch for a queue with segment
// offload holds: each carries up to 64 KB of one flow's data, and a flow
// sends at most txBudget segments a turn, so a few flows' bursts fit
// before the batch is flushed early.
const largeBufs = 8

// TxBatch collects frames to send at the end of a loop iteration, in
// buffers allocated once: MaxFrame-sized ones and, for a queue with
// segmentation offload (nic.SegmentSender), a few large ones, whose frames
// (committed with CommitSegments) the queue cuts into segments and
// checksums.
type TxBatch struct {
	bufs   [][]byte
	large  [][]byte
	frames [][]byte
	segs   []uint16 // per frame: 0, or its segment size (nic.SegmentSender)
	nbufs  int      // bufs in frames
	nlarge int      // large buffers in frames
	// lastLarge: the buffer handed out last came from NextLarge.
	lastLarge bool
	// flush, when set (by a Core), sends a full batch so Next never fails.
	flush func()
}

// NewTxBatch makes a batch of n MaxFrame-sized buffers.
func NewTxBatch(n int) *TxBatch {
	t := &TxBatch{bufs: make([][]byte, n), frames: make([][]byte, 0, n), segs: make([]uint16, 0, n)}
	for i := range t.bufs {
		t.bufs[i] = make([]byte, nic.MaxFrame)
	}
	return t
}

// newSegmentBatch makes a batch of n MaxFrame-sized buffers and
// largeBufs of largeSize bytes, for a queue that takes SendSegments frames
// that long.
func newSegmentBatch(n, largeSize int) *TxBatch {
	t := NewTxBatch(n)
	t.large = make([][]byte, largeBufs)
	for i := range t.large {
		t.large[i] = make([]byte, largeSize)
	}
	t.frames = make([][]byte, 0, n+largeBufs)
	t.segs = make([]uint16, 0, n+largeBufs)
	return t
}

// LargeFrame is the size of NextLarge's buffers, 0 without them: frames
// up to that long go out cut into segments (CommitSegments).
func (t *TxBatch) LargeFrame() int {
	if t.large == nil {
		return 0
	}
	return len(t.large[0])
}

// Next returns a MaxFrame-sized buffer to build a frame in, or nil when the
// batch is full. The frame is queued by Commit.
func (t *TxBatch) Next() []byte {
	if t.nbufs == len(t.bufs) {
		if t.flush == nil {
			return nil
		}
		t.flush()
	}
	t.lastLarge = false
	return t.bufs[t.nbufs]
}

// NextLarge returns a buffer of LargeFrame bytes, or nil when the batch
// has none (no segmentation offload, or all in use and nothing flushes).
func (t *TxBatch) NextLarge() []byte {
	if t.nlarge == len(t.large) {
		if t.flush == nil || t.large == nil {
			return nil
		}
		t.flush()
	}
	t.lastLarge = true
	return t.large[t.nlarge]
}

// Commit queues the first n bytes of the buffer Next returned, a complete
// frame.
func (t *TxBatch) Commit(n int) { t.commit(n, 0) }

// CommitSegments queues the first n bytes of the buffer NextLarge
// returned: a TCP frame with the pseudo-header sum in its checksum field,
// whose payload goes out in segments of seg bytes.
func (t *TxBatch) CommitSegments(n int, seg uint16) { t.commit(n, seg) }

func (t *TxBatch) commit(n int, seg uint16) {
	var b []byte
	if t.lastLarge {
		b = t.large[t.nlarge]
		t.nlarge++
	} else {
		b = t.bufs[t.nbufs]
		t.nbufs++
	}
	t.frames = append(t.frames, b[:n])
	t.segs = append(t.segs, seg)
}

// Frames are the queued frames.
func (t *TxBatch) Frames() [][]byte { return t.frames }

// Reset empties the batch.
func (t *TxBatch) Reset() {
	t.frames, t.segs = t.frames[:0], t.segs[:0]
	t.nbufs, t.nlarge = 0, 0
}

// Len is the number of frames queued.
func (t *TxBatch) Len() int { return len(t.frames) }
