package bridge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// Lending: the rest of a large request body is read by the process that
// consumes it, from the web server's connection itself, as uWSGI's worker
// reads it, instead of crossing the bridge (one read and one write more of
// every byte, and a wake-up each). The connection reader lends at a record
// boundary, when the request is alone on its connection and its response
// has not begun, and waits until the borrower repays: the bytes it read and
// did not consume go first when the reader reads on.

// ErrLent is returned by a read of a request's STDIN once everything read
// before the loan is consumed: the rest is the borrower's (TakeLoan).
var ErrLent = errors.New("fastcgi: request body lent")

// Loan is the web server's connection, lent for the rest of a request's
// STDIN.
type Loan struct {
	FD     int           // a descriptor of the connection, open until Repay
	Prefix []byte        // bytes read from it and not parsed: records begin at its first byte
	ID     uint16        // the request whose STDIN records the borrower reads
	Idle   time.Duration // the body's idle timeout (Body.SetIdleTimeout); 0: none
}

// Lender is a Body whose connection may be lent.
type Lender interface {
	Body
	// WantLoan asks for the connection rather than reads of the rest of
	// the body. Once the reader lends it, a read fails with ErrLent when
	// the bytes it had read are consumed. If it never lends (the request
	// shares its connection, its response began), reads go on as before.
	WantLoan()
	// TakeLoan returns the loan after a read failed with ErrLent.
	TakeLoan() *Loan
	// Repay gives the connection back with the bytes read from it and not
	// consumed. broken: where the stream stands is unknown (the borrower
	// died), and the connection closes. stalled: the body sent nothing for
	// its idle timeout, and fails with ErrStdinTimeout.
	Repay(leftover []byte, broken, stalled bool)
}

// maxLeftover bounds the bytes a borrower may give back: its read buffer
// (pyworker's bound is lower) and a record's head.
const maxLeftover = 256<<10 + 2*(headerLen+maxContent+255)

type loanState uint8

const (
	loanNone    loanState = iota
	loanOffered           // the reader waits; reads fail with ErrLent once the pipe is empty
	loanTaken             // the borrower has it
	loanRepaid
)

func (p *stdinPipe) WantLoan() {
	p.mu.Lock()
	p.lendWanted = true
	p.holdCond.Signal() // a holding reader lends instead
	p.mu.Unlock()
}

func (p *stdinPipe) TakeLoan() *Loan {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loanState != loanOffered {
		return nil
	}
	p.loanState = loanTaken
	// The pipe is empty (reads said ErrLent) and stays so while lent: its
	// buffer serves other requests meanwhile.
	p.freeBuf()
	return p.loan
}

func (p *stdinPipe) Repay(leftover []byte, broken, stalled bool) {
	p.mu.Lock()
	if p.loanState == loanTaken {
		p.loanState, p.leftover, p.broken, p.stalled = loanRepaid, leftover, broken, stalled
		p.holdCond.Signal()
	}
	p.mu.Unlock()
}

// lendableLocked reports whether the reader should lend now.
func (p *stdinPipe) lendableLocked() bool {
	return p.lendWanted && p.loanState == loanNone && !p.responding && !p.unheld &&
		!p.closed && p.err == nil && !p.eof && p.want == 0
}

// lend offers l and waits until it is repaid, or dropped untaken (the
// handler finished or failed first): it returns the bytes to read before
// the socket, and false if the connection must close.
func (p *stdinPipe) lend(l *Loan) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.Idle = p.idle
	p.loan, p.loanState = l, loanOffered
	p.cond.Broadcast()
	for {
		switch p.loanState {
		case loanRepaid:
			// One loan per request: the borrower gave it back because the
			// body ended, the response began or the request is over, and
			// a RESPONSE may still be on its way to say so (respond).
			p.loanState, p.loan, p.lendWanted = loanNone, nil, false
			left := p.leftover
			p.leftover = nil
			if p.stalled && !p.broken {
				p.failLocked(ErrStdinTimeout)
			}
			return left, !p.broken && len(left) <= maxLeftover
		case loanOffered:
			// Not taken, and never to be: the handler is done, the body
			// failed, the connection closes, or the response began (the
			// pump stopped at CONTENT_LENGTH and the empty record is due).
			if p.closed || p.err != nil || p.unheld || p.responding {
				p.loanState, p.loan = loanNone, nil
				return l.Prefix, true
			}
		}
		p.holdCond.Wait()
	}
}

// lend lends the connection to r's borrower (see Lender); false closes the
// connection. The socket leaves Go's poller meanwhile (the net.Conn is
// closed, a duplicate kept): its events, one per write of the web server,
// would wake the runtime for nothing. Records written meanwhile (an error
// page while the worker holds the connection) go out on the descriptor.
func (c *conn) lend(r *request) bool {
	rc := rawio.SyscallConn(c.nc)
	if rc == nil {
		return true
	}
	fd := -1
	var err error
	if cerr := rc.Control(func(sfd uintptr) { fd, err = rawio.Dup(int(sfd)) }); cerr != nil || err != nil {
		return true // not lent; read on
	}
	// The prefix is every byte read and not parsed: the buffer's, and what
	// is left of an earlier borrower's bytes, which the buffer reads first.
	n := c.rr.br.Buffered()
	b, _ := c.rr.br.Peek(n)
	prefix := bytes.Clone(b)
	_, _ = c.rr.br.Discard(n)
	if c.leftover != nil {
		prefix = append(prefix, c.leftover.Bytes()...)
		c.leftover = nil
	}
	l := &Loan{FD: fd, Prefix: prefix, ID: r.ID}

	c.mu.Lock()
	c.lentFD = fd
	closed := c.ka.phase == phaseClosed
	c.mu.Unlock()
	var left []byte
	ok := false
	if !closed {
		c.w.mu.Lock()
		c.w.lentFD = fd
		c.nc.Close()
		c.w.mu.Unlock()
		left, ok = r.stdin.lend(l)
		closed = !c.adopt(fd)
	}
	c.mu.Lock()
	c.lentFD = -1
	c.mu.Unlock()
	if closed {
		_ = unix.Shutdown(fd, unix.SHUT_RDWR) // the borrower's reads end too
		rawio.Close(fd)
		return false
	}
	rawio.Close(fd)
	if !ok {
		c.log.Warn().Uint16("id", r.ID).Msg("lent connection not given back in a known state; closing it once the request is answered")
		c.answerBlind()
		return false
	}
	var src io.Reader = c.in
	if len(left) > 0 {
		// Read until the next park (acquire resets the source), which
		// cannot come before these bytes are read.
		c.leftover = &leftover{b: left}
		src = io.MultiReader(c.leftover, c.in)
	}
	c.rr.br.Reset(src)
	return true
}

// adopt serves the connection from a duplicate of fd again: the loan is
// over. False if the connection closed meanwhile.
func (c *conn) adopt(fd int) bool {
	nc, err := fileConn(fd)
	if err != nil {
		c.log.Warn().Err(err).Msg("cannot serve a connection given back; closing it")
		c.w.unlend(nil, nil)
		return false
	}
	c.mu.Lock()
	if c.ka.phase == phaseClosed {
		c.mu.Unlock()
		nc.Close()
		c.w.unlend(nil, nil)
		return false
	}
	c.nc = nc
	c.mu.Unlock()
	c.in = rawio.NewReader(nc)
	c.rr.nc = nc
	c.w.unlend(nc, rawio.NewWriter(nc))
	return true
}

// answerBlind lets the request's answer (a 504, a 502) go out on a
// connection whose reading cannot go on, the borrower having left it at
// an unknown point of the stream, then shuts it down: the borrower's
// descriptor may live on.
func (c *conn) answerBlind() {
	c.mu.Lock()
	for c.handlers > 0 && c.ka.phase != phaseClosed {
		c.handled.Wait()
	}
	c.mu.Unlock()
	if rc := rawio.SyscallConn(c.nc); rc != nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	}
}

// fileConn makes a net.Conn of a duplicate of fd (which stays open).
func fileConn(fd int) (net.Conn, error) {
	dup, err := rawio.Dup(fd)
	if err != nil {
		return nil, err
	}
	return rawio.FileConn(dup)
}

// leftover is what a borrower gave back and the reader has not read yet.
type leftover struct{ b []byte }

func (l *leftover) Read(p []byte) (int, error) {
	if len(l.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.b)
	l.b = l.b[n:]
	return n, nil
}

// Bytes takes what is left.
func (l *leftover) Bytes() []byte {
	b := l.b
	l.b = nil
	return b
}
