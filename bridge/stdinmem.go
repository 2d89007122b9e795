package bridge

import (
	"sync"
	"sync/atomic"
)

// stdinSmall is how much unread STDIN a request keeps in memory on its own;
// beyond it, up to the server's StdinBuffer, it needs a buffer from the
// server-wide budget (stdinMemory), and spools when none is left.
const stdinSmall = 64 << 10

// stdinMemory is the server's budget of large STDIN buffers. It bounds the
// memory that bodies take however many requests wait for theirs (slow
// clients included), and recycles the buffers: the first MiB of an upload
// then costs one copy, where a fresh allocation costs page faults and
// clearing, and a spool file two system calls per record.
type stdinMemory struct {
	size int          // of one buffer: StdinBuffer plus one record
	left atomic.Int64 // buffers that may still be taken
	pool sync.Pool    // of *[]byte, given back
}

func newStdinMemory(limit, budget int) *stdinMemory {
	m := &stdinMemory{size: limit + maxContent}
	m.left.Store(int64(budget / m.size))
	return m
}

// take returns an empty buffer of m.size bytes, or nil when the budget is
// spent.
func (m *stdinMemory) take() []byte {
	if m.left.Add(-1) < 0 {
		m.left.Add(1)
		return nil
	}
	if b, ok := m.pool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, m.size)
}

// give returns a buffer from take.
func (m *stdinMemory) give(b []byte) {
	b = b[:0]
	m.pool.Put(&b)
	m.left.Add(1)
}
