package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

const readBufferSize = 16 << 10

// conn is one connection from the web server. Its serve goroutine reads
// and dispatches records; each request's handler runs in its own goroutine.
type conn struct {
	srv    *Server
	nc     net.Conn
	log    zerolog.Logger
	ctx    context.Context // parent of every request context
	cancel context.CancelFunc
	w      connWriter
	rr     *recordReader

	mu         sync.Mutex
	reqs       map[uint16]*request // in progress, or ended with STDIN still coming
	inProgress int                 // requests not ended
	waiting    bool                // the reader waits for a record to start
	closeIdle  bool                // close once no request is in progress
	drainUntil time.Time           // closing: unread STDIN is discarded until then

	closeOnce sync.Once
	quiet     atomic.Bool // closed on purpose: the reader's error is expected
}

func newConn(s *Server, nc net.Conn, seq uint64) *conn {
	c := &conn{srv: s, nc: nc, reqs: make(map[uint16]*request)}
	c.log = s.Log.With().Uint64("conn", seq).Logger()
	c.ctx, c.cancel = context.WithCancel(s.baseCtx)
	c.w = connWriter{nc: nc, timeout: s.writeTimeout(), onFail: c.close}
	return c
}

// serve reads records until the connection ends, then releases everything.
func (c *conn) serve() {
	c.log.Debug().Msg("connection opened")
	rr, _ := c.srv.readers.Get().(*recordReader)
	if rr == nil {
		rr = &recordReader{br: bufio.NewReaderSize(nil, readBufferSize)}
	}
	rr.br.Reset(c.nc)
	rr.setDeadline, rr.wait, rr.woke, rr.timeout = c.nc.SetReadDeadline, c.waitDeadline, c.woke, c.srv.readTimeout()
	c.rr = rr
	defer c.cleanup()
	for {
		h, content, err := rr.next()
		if err != nil {
			c.logReadError(err)
			return
		}
		if !c.dispatch(h, content) || c.drained() {
			return
		}
	}
}

// waitDeadline is how long the reader may wait for the next record: the
// idle timeout with nothing in progress, the PARAMS deadline of a request
// still receiving them, the idle timeout while STDIN is expected, the
// drain deadline when closing, and no limit while handlers merely run.
func (c *conn) waitDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = true
	if !c.drainUntil.IsZero() {
		return c.drainUntil
	}
	idle := time.Now().Add(c.srv.idleTimeout())
	if c.inProgress == 0 {
		return idle
	}
	var d time.Time
	for _, r := range c.reqs {
		switch {
		case r.ended:
		case !r.paramsDone:
			if d.IsZero() || r.paramsDeadline.Before(d) {
				d = r.paramsDeadline
			}
		case !r.stdinDone:
			if d.IsZero() || idle.Before(d) {
				d = idle
			}
		}
	}
	return d
}

func (c *conn) woke() {
	c.mu.Lock()
	c.waiting = false
	c.mu.Unlock()
}

// drained reports whether a closing connection has nothing left to discard.
func (c *conn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drainUntil.IsZero() || len(c.reqs) > 0 {
		return false
	}
	c.quiet.Store(true)
	return true
}

func (c *conn) logReadError(err error) {
	var ne net.Error
	switch {
	case c.quiet.Load():
	case errors.Is(err, io.EOF):
		c.log.Debug().Msg("connection closed by the web server")
	case errors.Is(err, errFraming):
		c.log.Warn().Err(err).Msg("malformed FastCGI stream; closing the connection")
	case errors.As(err, &ne) && ne.Timeout():
		c.mu.Lock()
		busy := c.inProgress > 0
		c.mu.Unlock()
		switch {
		case c.rr.armed:
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

// close shuts the socket; the reader then ends and cleans up.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.quiet.Store(true)
		c.nc.Close()
	})
}

// cleanup runs when the reader ends: every request context is cancelled,
// handlers see ErrAborted, and requests without a handler are dropped.
func (c *conn) cleanup() {
	c.closeOnce.Do(func() { c.nc.Close() })
	c.cancel()
	c.w.abort()
	c.mu.Lock()
	c.closeIdle = true
	for id, r := range c.reqs {
		delete(c.reqs, id)
		if r.stdin != nil {
			r.stdin.abort()
		}
		if !r.ended && !r.paramsDone {
			r.ended = true
			c.inProgress--
			c.srv.active.Add(-1)
		}
	}
	c.mu.Unlock()
	c.rr.br.Reset(nil)
	c.rr.setDeadline, c.rr.wait, c.rr.woke = nil, nil, nil
	c.srv.readers.Put(c.rr)
	c.srv.removeConn(c)
}

// shutdown closes the connection now if idle, else once its requests end.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.closeIdle = true
	idle := c.inProgress == 0
	c.mu.Unlock()
	if idle {
		c.close()
	}
}
