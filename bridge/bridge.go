// Package bridge is the FastCGI 1.0 application side: listeners, records,
// name-value pairs, roles, multiplexed requests and streamed STDIN/STDOUT.
// It knows nothing of configuration or Python; a Handler does the work.
package bridge

import (
	"context"
	"io"
)

// Roles of FCGI_BEGIN_REQUEST.
const (
	RoleResponder  uint16 = 1
	RoleAuthorizer uint16 = 2
	RoleFilter     uint16 = 3
)

// Protocol status of FCGI_END_REQUEST.
const (
	StatusRequestComplete uint8 = 0
	StatusCantMpxConn     uint8 = 1
	StatusOverloaded      uint8 = 2
	StatusUnknownRole     uint8 = 3
)

// Param is one FastCGI name-value pair, as the web server sent it.
type Param struct {
	Name, Value string
}

// Request is one FastCGI request. Params keep arrival order and duplicates;
// the slice is the handler's until it returns (its strings stay valid).
type Request struct {
	ID       uint16
	Role     uint16
	KeepConn bool
	Params   []Param
	// Stdin streams FCGI_STDIN as it arrives; io.EOF after the empty record.
	// After an abort or a lost connection Read returns ErrAborted.
	Stdin io.Reader
	ctx   context.Context
}

// Context is cancelled on FCGI_ABORT_REQUEST, on loss of the connection
// and when the server is force-closed.
func (r *Request) Context() context.Context { return r.ctx }

// ResponseWriter sends FCGI_STDOUT (Write) and FCGI_STDERR records.
// Writes after an abort or a lost connection return ErrAborted.
type ResponseWriter interface {
	io.Writer
	Stderr() io.Writer
}

// FinalWriter is implemented by the bridge's ResponseWriter. WriteFinal
// passes the last FCGI_STDOUT bytes of a response: a small block is held
// and sent with the closing records when the handler returns, so that a
// whole short response costs the connection one write. A later Write sends
// the held block first.
type FinalWriter interface {
	WriteFinal(p []byte) (int, error)
}

// HeadWriter is implemented by the bridge's ResponseWriter. WriteWithHead
// writes head and then p as FCGI_STDOUT in one write, without copying
// them into one buffer (a response's header block and its first body
// block, which may be large). It returns len(p) on success.
type HeadWriter interface {
	WriteWithHead(head, p []byte) (int, error)
}

// Ender is implemented by the bridge's ResponseWriter. EndWith ends the
// request at once, before its handler returns: head and then body are the
// rest of FCGI_STDOUT, sent with the closing records in one write. It does
// so only when it need not wait (the web server has sent all of STDIN,
// nothing was written and the two are at most MaxEndWith bytes) and reports
// false, having sent nothing, otherwise. After it, the handler's writes
// fail and its EndStatus is unused.
type Ender interface {
	EndWith(head, body []byte) (bool, error)
}

// MaxEndWith is the most STDOUT that EndWith sends: a response that fits
// the socket's buffer, so that the write does not wait on the web server.
const MaxEndWith = 64 << 10

// EndStatus is what goes into FCGI_END_REQUEST.
type EndStatus struct {
	AppStatus      uint32
	ProtocolStatus uint8
}

// Handler serves one request; it runs in its own goroutine, and the bridge
// sends the closing empty STDOUT/STDERR records and END_REQUEST after it returns.
type Handler interface {
	ServeFCGI(w ResponseWriter, r *Request) EndStatus
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w ResponseWriter, r *Request) EndStatus

func (f HandlerFunc) ServeFCGI(w ResponseWriter, r *Request) EndStatus { return f(w, r) }
