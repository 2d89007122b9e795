// Package pyworker runs one Python worker process (_wsgifcgi/, embedded) and
// speaks the pipe protocol with it: requests in, streamed bodies both ways
// with per-request flow control, logs out.
package pyworker

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"

	"github.com/rs/zerolog"
)

// Sink receives one request's response as the worker produces it.
type Sink interface {
	// WriteHeader is called once, before any Write. block is the complete CGI
	// header block: "Status: 200 OK\r\nName: value\r\n...\r\n" ending in a blank line.
	WriteHeader(status int, block []byte) error
	// Write sends body bytes; an error aborts the request in the worker.
	// p is only valid during the call.
	Write(p []byte) error
}

// FinalWriter is a Sink that can take the last body block of a response
// whose end has already arrived: it may then send that block together with
// the end of the request, one write instead of two.
type FinalWriter interface {
	WriteFinal(p []byte) error
}

// WholeWriter is a Sink that can take a whole response at once (headers,
// body and the end of the request) from the goroutine that reads the
// worker, so that a short response reaches the web server without a hand-off
// to the goroutine running Serve. It must not wait: it reports false, having
// sent nothing, when it cannot take the response now, which then goes
// through WriteHeader and Write as usual. block and body are valid only
// during the call.
type WholeWriter interface {
	WriteWhole(status int, block, body []byte) (bool, error)
}

// Call is one request for a worker.
type Call struct {
	Environ *Environ // all string keys of the WSGI environ (CGI vars, mod_wsgi.*, wsgi.url_scheme)
	// ScriptMTime is SCRIPT_FILENAME's modification time (ns since the
	// epoch) as the caller found it; the worker compares it with the loaded
	// module's for script reloading instead of calling stat again. 0: unknown.
	ScriptMTime int64
	Body        io.Reader // request body, pulled as the application reads wsgi.input; nil: empty
	Out         Sink
	// Log receives the request's wsgi.errors lines (and its traceback on failure);
	// the caller puts request id and groups on it.
	Log zerolog.Logger
	// Freed, if set, is called as soon as the worker has finished the
	// request (its END frame arrived), from the goroutine that reads the
	// worker's frames and before Serve returns: the worker's thread is
	// free for the next request while the response is still being passed
	// on. It must not block. It is not called when the request ends
	// otherwise (the worker was lost, or Serve gave up waiting).
	Freed func()
}

// Result says how a call ended.
type Result struct {
	Status      int   // HTTP status passed to the Sink, 0 if none
	HeadersSent bool  // WriteHeader was called
	BytesOut    int64 // body bytes passed to the Sink
}

// Errors returned by Serve. Before headers are sent, the caller turns them into
// a status: ErrNotFound 404, ErrApplication 500, ErrWorkerLost 502.
var (
	ErrNotFound    = errors.New("pyworker: script not found")
	ErrApplication = errors.New("pyworker: application error")
	ErrWorkerLost  = errors.New("pyworker: worker process lost")
	ErrAborted     = errors.New("pyworker: request aborted")
	ErrClosed      = errors.New("pyworker: worker shutting down")
	// ErrCut, in the cause of Serve's context (context.WithCancelCause,
	// WithTimeoutCause), says the server itself ends the request and the
	// worker is being replaced: Serve tells the worker to stop it and
	// returns at once, without Config.AbortWait, and without waiting for
	// a Body read under way (the caller must end that read: the bridge
	// does when the handler returns).
	ErrCut = errors.New("pyworker: request cut by the server")
)

// Environ accumulates the string part of a WSGI environ in the wire form the
// worker decodes with one call: name NUL value NUL, repeated. Room for the
// REQUEST frame's header comes first, so that the environ is sent as it is.
type Environ struct{ buf []byte }

const requestRoom = headerSize + 8 // frame header, script mtime

// Add appends one variable. It refuses (false) an empty name or a NUL in
// either part, which the encoding cannot carry.
func (e *Environ) Add(name, value string) bool {
	if name == "" || strings.IndexByte(name, 0) >= 0 || strings.IndexByte(value, 0) >= 0 {
		return false
	}
	e.room()
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, 0)
	e.buf = append(e.buf, value...)
	e.buf = append(e.buf, 0)
	return true
}

// Reset empties e, keeping its storage.
func (e *Environ) Reset() { e.buf = e.buf[:0] }

// Bytes is the encoded environ; valid until the next Add or Reset.
func (e *Environ) Bytes() []byte {
	if len(e.buf) < requestRoom {
		return nil
	}
	return e.buf[requestRoom:]
}

// room makes the room for the frame header in front of an empty environ.
func (e *Environ) room() {
	if len(e.buf) < requestRoom {
		e.buf = append(e.buf[:0], make([]byte, requestRoom)...)
	}
}

// frame is the REQUEST frame carrying e (which it overwrites the room of).
func (e *Environ) frame(flags uint8, id uint32, mtime int64) []byte {
	e.room()
	putHeader(e.buf, tRequest, flags, id, len(e.buf)-headerSize)
	binary.BigEndian.PutUint64(e.buf[headerSize:], uint64(mtime))
	return e.buf
}
