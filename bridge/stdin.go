package bridge

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// stdinPipe carries FCGI_STDIN from the connection reader to the handler.
//
// Up to limit bytes are kept in memory (more than stdinSmall only with a
// buffer from the server's budget, mem). Beyond that, the connection reader
// either waits (holds) or spools to an unlinked temporary file, as uWSGI's
// post-buffering does:
//   - It holds while the request is the only one on its connection and
//     its response has not started: the web server's socket then fills,
//     as it does in front of a server that reads a body as it is consumed,
//     and an upload crosses the bridge once, in memory, at the pace of the
//     application.
//   - It spools once the response has started, for the rest of the
//     request: waiting then would deadlock behind nginx, which reads no
//     response until it has sent the whole request body (an application
//     that answers while it reads, such as an echo, would block on a full
//     response socket while nginx blocks on a full request socket). It
//     spools too while the handler waits for more than limit bytes
//     (Buffer), and on a connection that carries several requests at once,
//     so that one slow request does not stall the others. (A front end
//     that multiplexes and begins a request while another one's body is
//     held waits until the application reads it; none that we know of
//     multiplexes.)
//
// Memory stays bounded whatever the upload size.
type stdinPipe struct {
	mu       sync.Mutex
	cond     sync.Cond // for the handler's reads
	holdCond sync.Cond // for the connection reader's hold
	buf      []byte    // unread memory bytes are buf[r:]; they precede the file's
	r        int
	limit    int
	mem      *stdinMemory
	big      bool     // buf is from mem
	dir      string   // where spool files go ("" = os.TempDir())
	file     *os.File // spool, unlinked; nil until the handler first fell behind
	fr, fw   int64    // read and write offsets in file; fr == fw: it holds nothing
	eof      bool     // the empty STDIN record arrived
	err      error    // ErrAborted after abort or loss of the connection; a spool failure
	closed   bool     // the handler is done; later input is dropped

	want       int64 // Buffer waits for this many unread bytes
	consumed   bool  // the handler has read: the reader may run ahead to limit
	responding bool  // the response has started: the reader never holds again
	held       bool  // the connection reader waits in settle
	unheld     bool  // the connection closes: it never holds again
	ended      chan struct{}
	endOne     sync.Once

	// Lending (see Lender), under mu.
	lendWanted bool
	loanState  loanState
	loan       *Loan
	leftover   []byte
	broken     bool
	stalled    bool

	// The idle timeout (see Body): bytes received, and since when a
	// reader waits with none new.
	idle     time.Duration
	got      int64
	since    time.Time
	sinceGot int64
	timer    *time.Timer
}

func newStdinPipe(mem *stdinMemory, dir string) *stdinPipe {
	p := &stdinPipe{limit: mem.size - maxContent, mem: mem, dir: dir, ended: make(chan struct{})}
	p.cond.L = &p.mu
	p.holdCond.L = &p.mu
	return p
}

// fullLocked reports whether the connection reader should hold rather than
// read more STDIN for this pipe (see stdinPipe): the response has not
// started, the handler has bytes to read, no Buffer waits for more, and
// the next record may not fit in memory, the spool still has bytes to
// give, or a borrower wants the rest (it reads from the socket what the
// bridge leaves there). Until the handler first reads, stdinSmall bytes
// are enough: a request that waits for a thread, and may yet lend the
// connection, then takes little more of its body than Buffer asks, while a
// small body is read to its end at once.
func (p *stdinPipe) fullLocked() bool {
	if p.responding || p.unheld || p.closed || p.err != nil || p.eof {
		return false
	}
	mem := len(p.buf) - p.r
	unread := int64(mem) + p.spooled()
	if unread == 0 || unread < p.want {
		return false
	}
	return p.spooled() > 0 || mem+maxContent > p.limit || p.lendWanted || !p.consumed && mem >= stdinSmall
}

// settle holds the connection reader while the pipe is full, until the
// handler has read enough, the response starts, the request ends, unhold,
// or a borrower wants the connection; it reports whether to lend it now.
func (p *stdinPipe) settle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.fullLocked() && !p.lendableLocked() {
		p.held = true
		p.holdCond.Wait()
	}
	p.held = false
	return p.lendableLocked()
}

// unhold ends a hold for good: the connection is closing.
func (p *stdinPipe) unhold() {
	p.mu.Lock()
	p.unheld = true
	p.holdCond.Signal()
	p.mu.Unlock()
}

// signalHoldLocked wakes a holding reader that need hold no more.
func (p *stdinPipe) signalHoldLocked() {
	if p.held && (!p.fullLocked() || p.lendableLocked()) {
		p.holdCond.Signal()
	}
}

// respond records that the response starts: STDIN is read to its end
// from now on, spooled if the handler does not keep up.
func (p *stdinPipe) respond() {
	p.mu.Lock()
	p.responding = true
	p.holdCond.Signal() // a hold, or an offered loan, ends
	p.mu.Unlock()
}

// markEnded closes ended: the web server sends no more STDIN.
func (p *stdinPipe) markEnded() { p.endOne.Do(func() { close(p.ended) }) }

// write queues b without waiting. Input after the handler finished or after
// an abort is dropped.
func (p *stdinPipe) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.err != nil || p.eof || len(b) == 0 {
		return
	}
	p.got += int64(len(b))
	unread := len(p.buf) - p.r
	if p.spooled() == 0 && (unread == 0 || unread+len(b) <= p.limit) && p.reserve(len(b)) {
		p.buf = append(p.buf, b...)
		p.cond.Broadcast()
		return
	}
	if err := p.spool(b); err != nil {
		p.err = err
		p.freeBuf()
	}
	p.cond.Broadcast()
}

// spooled is how many bytes wait in the spool file.
func (p *stdinPipe) spooled() int64 { return p.fw - p.fr }

// spool appends b to the spool file, creating it on first use. A drained
// file is written from its start again: creating, unlinking and closing a
// file each time the handler catches up cost more than the data.
func (p *stdinPipe) spool(b []byte) error {
	if p.file != nil && p.fr == p.fw {
		p.fr, p.fw = 0, 0
	}
	if p.file == nil {
		f, err := os.CreateTemp(p.dir, "wsgifcgi-stdin-")
		if err != nil {
			return fmt.Errorf("spooling request body: %w", err)
		}
		os.Remove(f.Name()) // only the open descriptor keeps it
		p.file, p.fr, p.fw = f, 0, 0
	}
	if _, err := p.file.WriteAt(b, p.fw); err != nil {
		return fmt.Errorf("spooling request body: %w", err)
	}
	p.fw += int64(len(b))
	return nil
}

// reserve makes room in memory for n more bytes: it compacts first and
// allocates only what is missing, never more than limit plus one record in
// all. It reports false when n bytes do not fit because the budget has no
// large buffer left; the request then keeps stdinSmall bytes in memory and
// spools the rest.
func (p *stdinPipe) reserve(n int) bool {
	if len(p.buf)+n <= cap(p.buf) {
		return true
	}
	unread := len(p.buf) - p.r
	if unread+n <= cap(p.buf) {
		copy(p.buf, p.buf[p.r:])
		p.buf, p.r = p.buf[:unread], 0
		return true
	}
	c := min(max(2*cap(p.buf), unread+n, 4096), max(p.limit, unread)+maxContent)
	var nb []byte
	if c > stdinSmall+maxContent {
		if nb = p.mem.take(); nb == nil {
			p.limit = stdinSmall
			if unread > 0 && unread+n > p.limit {
				return false
			}
			c = min(c, stdinSmall+maxContent)
		}
	}
	if nb == nil {
		nb = make([]byte, 0, c)
	} else {
		p.big = true
	}
	nb = append(nb, p.buf[p.r:]...)
	p.buf, p.r = nb, 0
	return true
}

// finish marks the end of input (the empty STDIN record).
func (p *stdinPipe) finish() {
	p.markEnded()
	p.mu.Lock()
	p.eof = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// abort makes pending and later reads fail with ErrAborted.
func (p *stdinPipe) abort() {
	p.markEnded()
	p.mu.Lock()
	if p.err == nil {
		p.err = ErrAborted
	}
	p.release()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// close is called when the handler returns: buffered and later input is
// discarded.
func (p *stdinPipe) close() {
	p.mu.Lock()
	p.closed = true
	p.release()
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *stdinPipe) release() {
	p.holdCond.Signal()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.freeBuf()
	if p.file != nil {
		p.file.Close()
		p.file = nil
	}
}

// freeBuf drops the memory buffer, giving a large one back to the budget.
func (p *stdinPipe) freeBuf() {
	if p.big {
		p.mem.give(p.buf)
		p.big = false
	}
	p.buf, p.r = nil, 0
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
		if p.r < len(p.buf) || p.spooled() > 0 {
			break
		}
		if p.loanState == loanOffered {
			return 0, ErrLent
		}
		if p.eof {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		if err := p.waitLocked(); err != nil {
			return 0, err
		}
	}
	p.consumed = true
	if p.r < len(p.buf) {
		n := copy(b, p.buf[p.r:])
		p.r += n
		if p.r == len(p.buf) {
			p.buf, p.r = p.buf[:0], 0
		}
		p.signalHoldLocked()
		return n, nil
	}
	n, err := p.file.ReadAt(b[:min(int64(len(b)), p.fw-p.fr)], p.fr)
	p.fr += int64(n)
	p.signalHoldLocked()
	if err != nil && err != io.EOF {
		p.err = fmt.Errorf("reading spooled request body: %w", err)
		return n, p.err
	}
	// Drained (fr == fw): back to memory until the handler falls behind
	// again; the file is kept for that.
	return n, nil
}
