package bridge

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// errAfterEnd guards against a handler that keeps a ResponseWriter after
// returning: its records would belong to a finished, perhaps reused, id.
var errAfterEnd = errors.New("fastcgi: write after the handler returned")

// request is the bridge's state of one request; the handler sees the
// embedded Request and the request itself as its ResponseWriter.
type request struct {
	Request
	c      *conn
	cancel context.CancelFunc

	// Owned by the connection reader.
	scan           pairScanner
	raw            strings.Builder // PARAMS content until the empty record
	paramsDone     bool
	started        bool // the handler was started
	refused        bool // begun while draining: answered 503, not counted active
	paramsDeadline time.Time
	stdin          *stdinPipe

	// Guarded by c.mu.
	ended     bool // END_REQUEST is decided; later input is discarded
	stdinDone bool // the empty STDIN record (or an abort) came

	final []byte // last STDOUT block, held for END_REQUEST (handler goroutine)

	aborted    atomic.Bool // FCGI_ABORT_REQUEST
	finished   atomic.Bool // the handler returned
	wroteOut   atomic.Bool
	stderrUsed atomic.Bool
}

// Write sends FCGI_STDOUT. A responder's output waits until the web server
// has sent all of STDIN: nginx stops sending the request body once the
// response has started, so an application that answers while it reads (a
// streaming echo of an upload) would otherwise hang. The connection reader
// never waits (it spools), so STDIN always ends; the application waits in
// this Write meanwhile, which keeps memory bounded.
func (r *request) Write(p []byte) (int, error) { return r.WriteWithHead(nil, p) }

// WriteWithHead implements HeadWriter. A block held by WriteFinal goes
// first, in the same write.
func (r *request) WriteWithHead(head, p []byte) (int, error) {
	if err := r.ready(); err != nil {
		return 0, err
	}
	held := r.final
	r.final = r.final[:0]
	if err := r.c.w.writeStream(typeStdout, r.ID, held, head, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// maxFinal bounds a held final block: it must fit one record.
const maxFinal = 32 << 10

// WriteFinal implements FinalWriter.
func (r *request) WriteFinal(p []byte) (int, error) {
	if len(p) > maxFinal || len(r.final)+len(p) > maxFinal {
		return r.Write(p)
	}
	if err := r.ready(); err != nil {
		return 0, err
	}
	r.final = append(r.final, p...)
	return len(p), nil
}

// EndWith implements Ender.
func (r *request) EndWith(head, body []byte) (bool, error) {
	if err := r.writable(); err != nil {
		return false, err
	}
	if len(head)+len(body) > MaxEndWith || len(r.final) > 0 || r.wroteOut.Load() || !r.inputEnded() {
		return false, nil
	}
	r.wroteOut.Store(true)
	return true, r.c.endWith(r, head, body, EndStatus{})
}

// ready waits until STDOUT may be written and marks the output started.
func (r *request) ready() error {
	if err := r.writable(); err != nil {
		return err
	}
	if !r.inputEnded() {
		r.stdin.respond() // the reader must read on, or this waits for ever
		if !r.stdin.waitEnded(r.ctx.Done()) {
			return ErrAborted
		}
	}
	r.wroteOut.Store(true)
	return nil
}

// inputEnded reports whether STDOUT may go out now: the web server has
// sent all of a responder's STDIN (other roles have none to wait for).
func (r *request) inputEnded() bool {
	if r.Role != RoleResponder {
		return true
	}
	select {
	case <-r.stdin.ended:
		return true
	default:
		return false
	}
}

// Stderr returns the FCGI_STDERR stream of the request.
func (r *request) Stderr() io.Writer { return (*stderrWriter)(r) }

func (r *request) writable() error {
	if r.finished.Load() {
		return errAfterEnd
	}
	if r.aborted.Load() {
		return ErrAborted
	}
	return nil
}

// stderrWriter is a request seen as its FCGI_STDERR stream.
type stderrWriter request

func (w *stderrWriter) Write(p []byte) (int, error) {
	r := (*request)(w)
	if err := r.writable(); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		r.stderrUsed.Store(true)
	}
	if err := r.c.w.writeStream(typeStderr, r.ID, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
