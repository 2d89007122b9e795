package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

const readBufferSize = 16 << 10

// idleLinger is how long the reader of a connection that has just become
// idle keeps waiting for the next request, with its buffer, as it always
// did, before it parks the connection (see conn). Behind a busy front end
// the next request on a keep-alive connection comes within a millisecond,
// and waiting for it costs nothing more than it did, where a park and a
// resume cost about a dozen system calls and a goroutine (behind nginx at
// 7,000 requests/s: a dozen parks in 7 s). Short, so that the readers and
// buffers lingering stay few: the connections that finished a request in
// the last few milliseconds.
const idleLinger = 5 * time.Millisecond

// conn is one connection from the web server while it is served. Its
// reader goroutine reads and dispatches records; each request's handler
// runs in its own goroutine.
//
// Parking. An idle connection needs nothing but its socket, and behind
// nginx's upstream keepalive pools there may be thousands of them; a
// reader goroutine with its stack and 16 KiB record buffer for each would
// cost about 20 KiB a connection. So once a connection is idle (no request
// in progress, no handler running, nothing buffered) and no request has
// come for idleLinger, the reader gives its buffer back to a pool, parks
// the socket in the server's poller (an epoll set, see park_linux.go) and
// ends. The conn struct and the net.Conn go with it: a parked connection
// is a descriptor and a 48-byte record, with no goroutine, no buffer and
// no context. When the web server sends the next request, or hangs up,
// the poller starts a new reader with a new conn (same number in the
// logs); when the idle timeout passes first, the poller closes it.
// Shutdown and Close close parked connections as idle ones, and at
// max-connections the one parked longest makes room for a new one. A
// connection just accepted with nothing to read is parked at once.
//
// Other designs, measured with the benchmark's 10,000 idle connections
// (bench/run, each opened with one keep-alive request): one goroutine and
// buffer per connection, as before, cost +19 MiB for the 1,023 that were
// accepted; parking with the conn struct and net.Conn kept, +29.6 MiB for
// all (3 KiB each: the Go heap grows to twice what is live); with the
// net.Conn kept, +21 MiB; as done here, +7 to +9 MiB, most of it the
// garbage of the 10,000 requests. Keeping the goroutine with the buffer
// given back would still cost its stack (8 KiB once it has served).
type conn struct {
	srv    *Server
	nc     net.Conn
	log    connLog
	ctx    context.Context // parent of every request context
	cancel context.CancelFunc
	w      connWriter
	rr     *recordReader // from the server's pool, back there when the conn ends

	mu         sync.Mutex
	reqs       map[uint16]*request // in progress, or ended with STDIN still coming
	inProgress int                 // requests not ended
	handlers   int                 // handler goroutines not finished (they may still write)
	waiting    bool                // the reader waits for a record to start
	lingering  bool                // ... and that wait is idleLinger on an idle connection
	lingered   bool                // reader only: its last wait was a linger
	noPark     bool                // not a socket, or the poller refused it: never linger
	closeIdle  bool                // close once no request is in progress
	drainUntil time.Time           // closing: unread STDIN is discarded until then

	// idleSince is when the connection last became idle (on the server's
	// clock, see Server.clock; 0: not idle): the idle timeout counts from
	// there, and it orders the parked connections.
	idleSince atomic.Int64

	closeOnce sync.Once
	closing   atomic.Bool // close was called: never park
	quiet     atomic.Bool // closed on purpose: the reader's error is expected
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
	c := &conn{srv: s, nc: nc, log: connLog{&s.Log, seq}}
	c.w = connWriter{nc: nc, timeout: s.writeTimeout(), onFail: c.close}
	_, isSocket := nc.(syscall.Conn)
	c.noPark = !isSocket
	return c
}

// read reads and dispatches records until the connection ends (then it
// releases everything) or parks.
func (c *conn) read() {
	c.acquire()
	for {
		h, content, err := c.rr.next()
		if err == nil && c.idleSince.Load() != 0 {
			c.idleSince.Store(0) // not idle since this record came
		}
		if err != nil {
			if c.lingered && !c.rr.armed && isTimeout(err) {
				if c.park() {
					return
				}
				continue // it may not park: wait for the idle timeout
			}
			c.logReadError(err)
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
		rr.br.Reset(c.nc)
		rr.dl, rr.timeout = c, c.srv.readTimeout()
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
	c.rr.dl = nil
	c.srv.readers.Put(c.rr)
	c.rr = nil
}

// idleLocked reports whether the connection may park: no request in
// progress or expecting STDIN, no handler that may still write, and
// nothing that makes it close.
func (c *conn) idleLocked() bool {
	return c.inProgress == 0 && c.handlers == 0 && len(c.reqs) == 0 && c.drainUntil.IsZero() && !c.closeIdle
}

// park hands an idle connection that lingered to the poller; the conn is
// done with then (true). False when it cannot be parked: the reader then
// waits for the rest of the idle timeout itself.
func (c *conn) park() bool {
	c.mu.Lock()
	idle := c.idleLocked()
	c.mu.Unlock()
	until := c.srv.epoch.Add(time.Duration(c.idleSince.Load()) + c.srv.idleTimeout())
	if !idle || c.rr.br.Buffered() > 0 {
		return false // cannot be, as the reader starts every request
	}
	if !c.srv.poll.park(c.nc, c.log.seq, until, c.closing.Load) {
		c.mu.Lock()
		c.noPark = true
		c.mu.Unlock()
		return false
	}
	c.closing.Store(true)
	c.closeOnce.Do(func() { c.nc.Close() }) // the poller has the socket now
	c.releaseReader()
	if c.cancel != nil {
		c.cancel() // off the server's context
	}
	c.srv.detach(c)
	return true
}

// runRequest runs a request's handler in a goroutine of its own.
func (c *conn) runRequest(r *request) {
	c.mu.Lock()
	c.handlers++
	c.mu.Unlock()
	c.srv.runners.run(func() {
		c.run(r)
		c.requestDone()
	})
}

// requestDone runs when a handler has returned and its request ended.
// When that left the connection idle while its reader waits for a record
// (with the deadline of a busy connection), that wait becomes the linger
// (see waitDeadline): its deadline moves to idleLinger from now.
func (c *conn) requestDone() {
	c.mu.Lock()
	c.handlers--
	if c.idleLocked() {
		c.idleSince.Store(c.srv.clock())
	}
	if c.waiting && !c.lingering {
		if d, linger := c.lingerLocked(); linger {
			_ = c.nc.SetReadDeadline(d)
		}
	}
	c.mu.Unlock()
}

// lingerLocked starts the linger of an idle connection that may park:
// its deadline, and true. (Until the idle timeout, when that comes first.)
func (c *conn) lingerLocked() (time.Time, bool) {
	if c.noPark || !c.idleLocked() {
		return time.Time{}, false
	}
	since := c.idleSince.Load()
	if since == 0 {
		since = c.srv.clock()
		c.idleSince.Store(since)
	}
	d, idle := time.Now().Add(idleLinger), c.srv.epoch.Add(time.Duration(since)+c.srv.idleTimeout())
	if idle.Before(d) {
		return idle, true // an idle timeout shorter than the linger: no park
	}
	c.lingering = true
	return d, true
}

// waitDeadline is how long the reader may wait for the next record:
// idleLinger on an idle connection that may park (then it parks), the
// idle timeout on one that may not or has requests that ended with STDIN
// to come, the PARAMS deadline of a request still receiving them, the idle
// timeout while STDIN is expected, the drain deadline when closing, and no
// limit while handlers merely run (requestDone starts the linger when the
// last one returns).
func (c *conn) waitDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = true
	if !c.drainUntil.IsZero() {
		return c.drainUntil
	}
	if d, linger := c.lingerLocked(); linger {
		return d
	}
	idle := time.Now().Add(c.srv.idleTimeout())
	if c.inProgress == 0 {
		if since := c.idleSince.Load(); since != 0 { // it may not park
			return c.srv.epoch.Add(time.Duration(since) + c.srv.idleTimeout())
		}
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
	c.lingered, c.lingering = c.lingering, false
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

// SetReadDeadline sets the socket's read deadline (for the recordReader).
func (c *conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || isNetTimeout(err)
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) logReadError(err error) {
	switch {
	case c.quiet.Load():
	case errors.Is(err, io.EOF):
		c.log.Debug().Msg("connection closed by the web server")
	case errors.Is(err, errFraming):
		c.log.Warn().Err(err).Msg("malformed FastCGI stream; closing the connection")
	case isTimeout(err):
		c.mu.Lock()
		busy := c.inProgress > 0
		c.mu.Unlock()
		switch {
		case c.rr != nil && c.rr.armed:
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

// close shuts the socket; the reader then ends and cleans up. (On a conn
// whose socket went to the poller it does nothing: Shutdown and Close,
// the only ones that may call it then, close the poller's sockets.)
func (c *conn) close() {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		c.quiet.Store(true)
		c.nc.Close()
	})
}

// cleanup runs when the reader ends: every request context is cancelled,
// handlers see ErrAborted, and requests without a handler are dropped.
func (c *conn) cleanup() {
	c.closing.Store(true)
	c.closeOnce.Do(func() { c.nc.Close() })
	if c.cancel != nil {
		c.cancel()
	}
	c.w.abort()
	c.mu.Lock()
	c.closeIdle = true
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

// shutdown closes the connection now if idle, else once its requests end.
// (A handler may still be writing the end of a request that no longer
// counts as in progress: Shutdown closes such connections once none runs.)
func (c *conn) shutdown() {
	c.mu.Lock()
	c.closeIdle = true
	idle := c.inProgress == 0 && c.handlers == 0
	c.mu.Unlock()
	if idle {
		c.close()
	}
}

// rawConnOf is nc's socket, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readableNow reports whether nc has data or an end to report, without
// waiting.
func readableNow(nc net.Conn) bool {
	rc := rawConnOf(nc)
	if rc == nil {
		return true
	}
	ready := true
	if err := rc.Control(func(fd uintptr) { ready = peekReady(fd) }); err != nil {
		return true // the reader will see the error
	}
	return ready
}
