package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// readBufferSize is the record buffer of a connection that is not parked.
// nginx sends a request body in 16 KiB records: reading two or more at a
// time took 15–20% off the bridge's CPU per upload. 64 KiB measured no
// better, and the buffers of connections lingering after a request (see
// keepalive) then cost +18 MiB at 10,000 connections, against +12 MiB.
const readBufferSize = 32 << 10

// conn is one connection from the web server while it is served. Its
// reader goroutine reads and dispatches records; each request's handler
// runs in its own goroutine. An idle connection parks (see keepalive).
type conn struct {
	srv    *Server
	nc     net.Conn
	in     io.Reader // nc, read by direct system calls (rawio)
	log    connLog
	ctx    context.Context // parent of every request context
	cancel context.CancelFunc
	w      connWriter
	rr     *recordReader // from the server's pool, back there when the conn ends

	mu         sync.Mutex
	reqs       map[uint16]*request // in progress, or ended with STDIN still coming
	spare      []Param             // the Params of a finished handler, for the next request
	inProgress int                 // requests not ended
	handlers   int                 // handler goroutines not finished (they may still write)
	handled    sync.Cond           // on mu: handlers fell to 0, or the socket closed
	ka         keepalive
	lentFD     int       // the socket while lent, out of nc (see lend); -1: not lent
	leftover   *leftover // bytes a borrower gave back, read before nc (reader-owned)
}

// connLog is a connection's logger: the server's, with the connection's
// number added to every event. A logger derived with zerolog's With()
// would allocate a 500-byte context buffer per connection, which is more
// than an idle connection costs otherwise.
type connLog struct {
	l   *zerolog.Logger
	seq uint64
}

func (l connLog) Debug() *zerolog.Event { return l.l.Debug().Uint64("conn", l.seq) }
func (l connLog) Info() *zerolog.Event  { return l.l.Info().Uint64("conn", l.seq) }
func (l connLog) Warn() *zerolog.Event  { return l.l.Warn().Uint64("conn", l.seq) }
func (l connLog) Error() *zerolog.Event { return l.l.Error().Uint64("conn", l.seq) }

func newConn(s *Server, nc net.Conn, seq uint64) *conn {
	c := &conn{srv: s, nc: nc, in: rawio.NewReader(nc), log: connLog{&s.Log, seq}, lentFD: -1}
	c.handled.L = &c.mu
	c.w = connWriter{nc: nc, out: rawio.NewWriter(nc), timeout: s.writeTimeout(), onFail: c.close, lentFD: -1}
	_, isSocket := nc.(syscall.Conn)
	c.ka.noPark = !isSocket
	return c
}

// read reads and dispatches records until the connection ends (then it
// releases everything) or parks.
func (c *conn) read() {
	c.acquire()
	for {
		if c.rr.br.Buffered() == 0 {
			c.wait()
			err := c.rr.await()
			if c.woke(err) {
				if c.park() {
					return
				}
				continue // it may not park: wait for the idle timeout
			}
			if err != nil {
				c.logReadError(err, false)
				c.cleanup()
				return
			}
		}
		h, content, err := c.rr.next()
		if err != nil {
			c.logReadError(err, true)
			c.cleanup()
			return
		}
		if !c.dispatch(h, content) || c.drained() {
			c.cleanup()
			return
		}
	}
}

// acquire gives the reader what an idle connection does without: a record
// buffer, the parent context of requests, the request map. Cheap when it
// has them.
func (c *conn) acquire() {
	if c.rr == nil {
		rr, _ := c.srv.readers.Get().(*recordReader)
		if rr == nil {
			rr = &recordReader{br: bufio.NewReaderSize(nil, readBufferSize)}
		}
		rr.br.Reset(c.in)
		rr.nc, rr.timeout = c.nc, c.srv.readTimeout()
		c.leftover = nil
		c.rr = rr
	}
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(c.srv.baseCtx)
	}
	if c.reqs == nil {
		c.reqs = make(map[uint16]*request)
	}
}

// releaseReader gives the record buffer back to the pool.
func (c *conn) releaseReader() {
	if c.rr == nil {
		return
	}
	c.rr.br.Reset(nil)
	c.rr.nc = nil
	c.srv.readers.Put(c.rr)
	c.rr = nil
}

// runRequest runs a request's handler in a goroutine of its own.
func (c *conn) runRequest(r *request) {
	c.mu.Lock()
	c.handlers++
	c.mu.Unlock()
	c.srv.runners.run(r)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || isNetTimeout(err)
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// logReadError logs why the reader ends: err ended its wait for a record,
// or the reading of one (inRecord).
func (c *conn) logReadError(err error, inRecord bool) {
	c.mu.Lock()
	quiet, busy := c.ka.phase == phaseClosed, c.inProgress > 0 // closed on purpose: expected
	c.mu.Unlock()
	switch {
	case quiet:
	case errors.Is(err, io.EOF):
		c.log.Debug().Msg("connection closed by the web server")
	case errors.Is(err, errFraming):
		c.log.Warn().Err(err).Msg("malformed FastCGI stream; closing the connection")
	case isTimeout(err):
		switch {
		case inRecord:
			c.log.Warn().Dur("read_timeout", c.srv.readTimeout()).Msg("record not completed in time; closing the connection")
		case busy:
			c.log.Warn().Msg("web server sent no PARAMS or STDIN in time; closing the connection")
		default:
			c.log.Debug().Msg("idle connection closed")
		}
	default:
		c.log.Info().Err(err).Msg("connection read failed")
	}
}

// cleanup runs when the reader ends: every request context is cancelled,
// handlers see ErrAborted, and requests without a handler are dropped.
func (c *conn) cleanup() {
	c.close()
	c.cancel()
	c.w.abort()
	c.mu.Lock()
	for id, r := range c.reqs {
		delete(c.reqs, id)
		if r.stdin != nil {
			r.stdin.abort()
		}
		if !r.ended && !r.started {
			r.ended = true
			c.inProgress--
			if !r.refused {
				c.srv.active.Add(-1)
			}
		}
	}
	c.mu.Unlock()
	c.releaseReader()
	c.srv.removeConn(c)
}

// readableNow reports whether nc has data or an end to report, without
// waiting.
func readableNow(nc net.Conn) bool {
	rc := rawio.SyscallConn(nc)
	if rc == nil {
		return true
	}
	ready := true
	if err := rc.Control(func(fd uintptr) { ready = peekReady(fd) }); err != nil {
		return true // the reader will see the error
	}
	return ready
}
