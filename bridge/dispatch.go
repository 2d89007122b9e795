package bridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// dispatch handles one record; false closes the connection.
func (c *conn) dispatch(h header, content []byte) bool {
	if h.ID == 0 {
		return c.management(h, content)
	}
	switch h.Type {
	case typeBeginRequest:
		if len(content) < 8 {
			c.log.Warn().Int("length", len(content)).Msg("malformed FastCGI stream: short BEGIN_REQUEST body; closing the connection")
			return false
		}
		return c.begin(h.ID, binary.BigEndian.Uint16(content), content[2]&flagKeepConn != 0)
	case typeAbortRequest:
		return c.abort(h.ID)
	case typeParams:
		c.params(h.ID, content)
	case typeStdin:
		return c.stdinRecord(h.ID, content)
	case typeData:
		// FCGI_DATA of the filter role is not supported yet: discarded.
	default:
		c.log.Warn().Uint8("type", h.Type).Uint16("id", h.ID).Msg("malformed FastCGI stream: unexpected record type; closing the connection")
		return false
	}
	return true
}

// lookup returns the request with that id, or nil.
func (c *conn) lookup(id uint16) *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[id]
}

func (c *conn) begin(id, role uint16, keep bool) bool {
	s := c.srv
	c.mu.Lock()
	if old := c.reqs[id]; old != nil {
		if !old.ended {
			c.mu.Unlock()
			c.log.Warn().Uint16("id", id).Msg("BEGIN_REQUEST for a request id in progress; ignored")
			return true
		}
		delete(c.reqs, id) // reused after its END_REQUEST; its STDIN tail is moot
	}
	if !c.ka.drainUntil.IsZero() {
		c.mu.Unlock()
		c.log.Warn().Uint16("id", id).Msg("BEGIN_REQUEST on a closing connection; ignored")
		return true
	}
	status, ok := StatusRequestComplete, true
	switch {
	case !s.acceptRole(role):
		status, ok = StatusUnknownRole, false
	case c.inProgress >= s.maxReqs():
		status, ok = StatusOverloaded, false
	}
	if !ok {
		idle := c.inProgress == 0
		c.mu.Unlock()
		c.log.Warn().Uint16("id", id).Uint16("role", role).Uint8("protocol_status", status).Msg("request refused")
		var b [16]byte
		putEndRequest(b[:], id, EndStatus{ProtocolStatus: status})
		if c.w.writeRaw(b[:]) != nil {
			return false
		}
		return keep || !idle
	}
	r := &request{c: c}
	r.ID, r.Role, r.KeepConn = id, role, keep
	r.ctx, r.cancel = context.WithCancel(c.ctx)
	r.scan.maxBytes, r.scan.maxCount = int64(s.maxParamsBytes()), s.maxParams()
	r.paramsDeadline = time.Now().Add(s.readTimeout())
	c.reqs[id] = r
	c.inProgress++
	if r.refused = s.draining.Load(); !r.refused {
		s.active.Add(1)
	}
	c.mu.Unlock()
	return true
}

// abort handles FCGI_ABORT_REQUEST: a request still receiving PARAMS ends
// at once; a running one has its context cancelled and its streams cut.
func (c *conn) abort(id uint16) bool {
	c.mu.Lock()
	r := c.reqs[id]
	if r == nil || r.ended {
		c.mu.Unlock()
		return true
	}
	r.stdinDone = true // the web server sends nothing more for it
	if r.started {
		r.aborted.Store(true)
		c.mu.Unlock()
		r.cancel()
		r.stdin.abort()
		return true
	}
	c.mu.Unlock()
	return c.end(r, nil, EndStatus{}) == nil
}

func (c *conn) params(id uint16, content []byte) {
	r := c.lookup(id)
	if r == nil || r.paramsDone {
		return
	}
	c.mu.Lock()
	ended := r.ended
	c.mu.Unlock()
	if ended {
		return
	}
	if len(content) == 0 && r.refused {
		c.refuse(r)
		return
	}
	if len(content) == 0 {
		if !r.scan.complete() {
			c.reject(r, fmt.Errorf("%w: stream ends inside a pair", errParamsMalformed))
			return
		}
		c.start(r)
		return
	}
	if err := r.scan.feed(content); err != nil {
		c.reject(r, err)
		return
	}
	r.raw.Write(content)
}

// start decodes the params once, into substrings of one string. An
// authorizer's handler runs now; a responder's at its first STDIN record,
// so that a request without a body starts complete (as net/http/fcgi's):
// its handler never waits for the reader to see the end of STDIN.
func (c *conn) start(r *request) {
	c.mu.Lock()
	buf := c.spare
	c.spare = nil
	c.mu.Unlock()
	if cap(buf) < r.scan.count {
		buf = make([]Param, 0, r.scan.count)
	}
	ps, err := decodePairs(r.raw.String(), buf)
	r.raw = strings.Builder{}
	if err != nil { // the scanner accepted the stream, so this is a bug
		c.reject(r, err)
		return
	}
	r.Params = ps
	r.paramsDone = true
	r.stdin = newStdinPipe(c.srv.stdin, c.srv.SpoolDir)
	r.Stdin = r.stdin
	if r.Role != RoleResponder {
		r.started = true
		c.runRequest(r)
	}
}

// stdinRecord handles a STDIN record; false closes the connection.
func (c *conn) stdinRecord(id uint16, content []byte) bool {
	r := c.lookup(id)
	if r == nil {
		return true
	}
	c.mu.Lock()
	if r.ended || r.stdinDone || !r.paramsDone {
		discard := r.ended || r.stdinDone
		if len(content) == 0 && r.ended && !r.stdinDone {
			r.stdinDone = true
			if c.reqs[id] == r {
				delete(c.reqs, id)
			}
		}
		c.mu.Unlock()
		if !discard {
			c.reject(r, fmt.Errorf("%w: STDIN before the end of PARAMS", errParamsMalformed))
		}
		return true
	}
	if len(content) == 0 {
		r.stdinDone = true
		c.mu.Unlock()
		r.stdin.finish()
	} else {
		c.mu.Unlock()
		r.stdin.write(content) // never waits: spools when the handler is behind
	}
	if !r.started {
		r.started = true
		c.runRequest(r)
	}
	if len(content) == 0 || !c.alone() {
		return true
	}
	// The web server keeps the rest of the body until the application
	// wants it or the worker borrows the connection (see stdinPipe).
	if r.stdin.settle() && c.quiet() {
		return c.lend(r)
	}
	return true
}

// quiet reports whether no other request may write on the connection: one
// is in progress at most, and no finished one's handler still runs.
func (c *conn) quiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inProgress <= 1 && c.handlers <= 1
}

// alone reports whether one request at most is in progress: the reader
// may hold for it without stalling another.
func (c *conn) alone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inProgress <= 1
}

// reject answers a request whose PARAMS are unacceptable with a 400.
func (c *conn) reject(r *request, err error) {
	c.log.Warn().Err(err).Uint16("id", r.ID).Msg("bad request params; answered 400")
	r.raw = strings.Builder{}
	body := "Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n" + err.Error() + "\n"
	_ = c.end(r, []byte(body), EndStatus{})
}

// run calls the handler and ends the request when it returns.
func (c *conn) run(r *request) {
	st := EndStatus{}
	defer func() {
		if p := recover(); p != nil {
			c.log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Uint16("id", r.ID).Msg("handler panicked")
			body := r.final
			if !r.wroteOut.Load() {
				body = []byte("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\ninternal error\n")
			}
			st = EndStatus{AppStatus: 1}
			r.stdin.close()
			_ = c.end(r, body, st)
		}
	}()
	st = c.srv.Handler.ServeFCGI(r, &r.Request)
	r.stdin.close()
	_ = c.end(r, r.final, st)
	r.final = nil
}

// end marks r ended, sends its closing records (after an optional STDOUT
// body) and closes the connection when that is due. The bookkeeping comes
// first so that the web server may reuse the id as soon as it reads
// END_REQUEST.
func (c *conn) end(r *request, body []byte, st EndStatus) error {
	return c.endWith(r, nil, body, st)
}

// endWith is end with the STDOUT in two parts.
func (c *conn) endWith(r *request, head, body []byte, st EndStatus) error {
	r.finished.Store(true)
	c.mu.Lock()
	if r.ended { // the connection was lost before the params were complete
		c.mu.Unlock()
		return ErrAborted
	}
	r.ended = true
	c.inProgress--
	if !r.refused {
		c.srv.active.Add(-1)
	}
	if r.stdinDone && c.reqs[r.ID] == r {
		delete(c.reqs, r.ID)
	}
	if !r.KeepConn {
		c.ka.closeIdle = true
	}
	closeNow := c.inProgress == 0 && c.lastEndedLocked()
	c.mu.Unlock()
	r.cancel()
	err := c.w.writeEnd(r.ID, head, body, r.stderrUsed.Load(), st)
	if closeNow {
		c.close()
	}
	return err
}
