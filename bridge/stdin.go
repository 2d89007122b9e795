package bridge

import (
	"io"
	"sync"
)

// stdinPipe carries FCGI_STDIN from the connection reader to the handler.
// It holds at most limit bytes, or one record when it was empty, so memory
// stays bounded whatever the upload size: a full pipe makes the connection
// reader wait for the handler.
type stdinPipe struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte // unread bytes are buf[r:]
	r      int
	limit  int
	eof    bool  // the empty STDIN record arrived
	err    error // ErrAborted after abort or loss of the connection
	closed bool  // the handler is done; later input is dropped
	peak   int   // largest buffer ever allocated, for tests
}

func newStdinPipe(limit int) *stdinPipe {
	p := &stdinPipe{limit: limit}
	p.cond.L = &p.mu
	return p
}

// write queues p, waiting while the pipe is full. It returns at once when
// the handler has finished or the request was aborted.
func (p *stdinPipe) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed || p.err != nil || p.eof {
			return
		}
		n := len(p.buf) - p.r
		if n == 0 || n+len(b) <= p.limit {
			break
		}
		p.cond.Wait()
	}
	if len(p.buf)+len(b) > cap(p.buf) {
		p.grow(len(b))
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
}

// grow makes room for n more bytes: it compacts first and allocates only
// what is missing, never more than limit plus one record in all.
func (p *stdinPipe) grow(n int) {
	unread := len(p.buf) - p.r
	if unread+n <= cap(p.buf) {
		copy(p.buf, p.buf[p.r:])
		p.buf, p.r = p.buf[:unread], 0
		return
	}
	c := max(2*cap(p.buf), unread+n, 4096)
	c = min(c, max(p.limit, unread)+maxContent)
	nb := make([]byte, unread, c)
	copy(nb, p.buf[p.r:])
	p.buf, p.r = nb, 0
	if c > p.peak {
		p.peak = c
	}
}

// finish marks the end of input (the empty STDIN record).
func (p *stdinPipe) finish() {
	p.mu.Lock()
	p.eof = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// abort makes pending and later reads fail with ErrAborted.
func (p *stdinPipe) abort() {
	p.mu.Lock()
	if p.err == nil {
		p.err = ErrAborted
	}
	p.buf, p.r = nil, 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

// close is called when the handler returns: buffered and later input is
// discarded and a waiting writer is released.
func (p *stdinPipe) close() {
	p.mu.Lock()
	p.closed = true
	p.buf, p.r = nil, 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *stdinPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.err != nil {
			return 0, p.err
		}
		if p.closed {
			return 0, io.ErrClosedPipe
		}
		if p.r < len(p.buf) {
			break
		}
		if p.eof {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		p.cond.Wait()
	}
	n := copy(b, p.buf[p.r:])
	p.r += n
	if p.r == len(p.buf) {
		p.buf, p.r = p.buf[:0], 0
	}
	p.cond.Broadcast()
	return n, nil
}

// maxBuffer reports the largest buffer the pipe allocated.
func (p *stdinPipe) maxBuffer() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
