package gateway

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// errBodyTruncated: FCGI_STDIN ended before CONTENT_LENGTH bytes. The
// application's read raises OSError, as mod_wsgi's "request data read
// error", so that it never takes half an upload for a whole one.
var errBodyTruncated = errors.New("request body truncated: FCGI_STDIN ended before CONTENT_LENGTH")

// body is the request body as the worker reads it: CONTENT_LENGTH bytes
// of STDIN (or all of it, for a chunked request: length < 0), failing when
// STDIN ends short. It remembers why it failed, for the status and the log.
type body struct {
	r      io.Reader
	length int64
	got    atomic.Int64  // read by abandonBody while a cut request's pump may still read
	lender bridge.Lender // r, when it may lend its connection to the worker (see lend)

	mu  sync.Mutex // the worker's body pump reads; the handler asks failure
	err error
}

func newBody(r io.Reader, length int64) *body { return &body{r: r, length: length} }

func (b *body) Read(p []byte) (int, error) {
	if b.length >= 0 {
		left := b.length - b.got.Load()
		if left <= 0 {
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), left)]
	}
	n, err := b.r.Read(p)
	if errors.Is(err, bridge.ErrLent) {
		return n, pyworker.ErrLent
	}
	got := b.got.Add(int64(n))
	if err == io.EOF && b.length >= 0 && got < b.length {
		err = fmt.Errorf("%w: %d of %d bytes", errBodyTruncated, got, b.length)
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// lend lets the worker read the rest of the body from the web server's
// connection (pyworker.Lender) when the request's every worker may: the
// connection may carry other requests after this one, and only a bridge
// whose every process group runs as one identity hands it to a worker.
// The loan is asked for at once, not when a worker starts the request: the
// connection reader then stops at what awaitBody waited for, where it would
// read on to body-buffer-size while the request waits for a thread, bytes
// that would cross the bridge and the pipe instead of being read by the
// worker from the socket.
func (b *body) lend(r *bridge.Request, allowed bool) {
	if l, ok := r.Stdin.(bridge.Lender); ok && allowed && b.r == r.Stdin && b.length > 0 {
		b.lender = l
		l.WantLoan()
	}
}

func (b *body) WantLoan() bool {
	if b.lender == nil {
		return false
	}
	b.lender.WantLoan()
	return true
}

func (b *body) TakeLoan() *pyworker.Loan {
	l := b.lender.TakeLoan()
	if l == nil {
		return nil
	}
	return &pyworker.Loan{FD: l.FD, Prefix: l.Prefix, ID: l.ID, Idle: l.Idle}
}

func (b *body) Repay(leftover []byte, n int64, broken, stalled bool) {
	b.got.Add(n)
	b.lender.Repay(leftover, broken, stalled)
}

// failure is why reading the body failed; nil if it did not.
func (b *body) failure() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// largeBodyProbe is what a body declared larger than body-buffer-size
// sends before its request takes a worker thread (at most
// body-buffer-size): a record's worth.
const largeBodyProbe = 64 << 10

// awaitBody bounds how long the body may stall (the daemon's
// socket-timeout) and waits before the request takes a worker thread, so
// that a slow or stalled client holds no thread, as behind nginx's request
// buffering: for a body up to body-buffer-size (or of unknown length), until
// it is all here or body-buffer-size bytes are. A body declared larger
// cannot all be here first: its thread will wait on the client for the
// rest whatever came before. Only its first largeBodyProbe bytes (the
// client sends) are waited for; the rest then streams as the application
// reads it, straight from the web server's connection where the worker may
// borrow it (see lend), instead of through the bridge's memory and a pipe.
// The bridge keeps what arrives, so this costs no memory here. It returns
// the read error that ended the wait.
func awaitBody(r *bridge.Request, d *groups.Daemon, length int64) error {
	bs, ok := r.Stdin.(bridge.Body)
	if !ok || d == nil {
		return nil
	}
	bs.SetIdleTimeout(d.SocketTimeout)
	n := int64(d.BodyBufferSize)
	switch {
	case n <= 0:
		return nil
	case length > n:
		n = min(n, largeBodyProbe)
	case length >= 0:
		n = length
	}
	return bs.Buffer(n)
}

// abandonBody gives up what is left of a body that a failed request did
// not read, so that its error page is not held back until the web server
// has sent it all (which a stalled client never does).
func abandonBody(r *bridge.Request, b *body) {
	if b == nil || (b.length >= 0 && b.got.Load() >= b.length) {
		return
	}
	if bs, ok := r.Stdin.(bridge.Body); ok {
		bs.Abandon()
	}
}

// bodyStatus is the status of a request whose body failed (err): 408 for
// a body that stalled past socket-timeout, 400 for a truncated one that
// failed the application, 499 for a client gone; 0 keeps the response's.
func bodyStatus(err error, failed bool) int {
	switch {
	case errors.Is(err, bridge.ErrStdinTimeout):
		return 408
	case errors.Is(err, errBodyTruncated) && failed:
		return 400
	case errors.Is(err, bridge.ErrAborted) && failed:
		return 499
	}
	return 0
}
