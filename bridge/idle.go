package bridge

import (
	"cmp"
	"time"

	"golang.org/x/sys/unix"
)

// Keep-alive. Behind nginx's upstream keepalive there may be thousands of
// connections with nothing to do, and a reader goroutine with its stack
// and record buffer would cost each about 20 KiB. So the reader of an idle
// connection (no request in progress, no handler running, no STDIN to
// come) first lingers: it waits idleLinger for the next request, which
// behind a busy front end comes within a millisecond. When none comes it
// parks the connection: the socket goes to the server's poller (an epoll
// set, park_linux.go) and the reader ends with its conn, its net.Conn and
// its buffer, so that a parked connection is a descriptor and a 48-byte
// record (bench/run: 10,000 idle connections cost +7 to +10 MiB so, most
// of it the garbage of their requests; with a goroutine and buffer each,
// +19 MiB for the first 1,023). The next
// request, or a hang-up, has the poller start a new reader on a new conn
// (same number in the logs); the idle timeout, counted from when the
// connection became idle, a new connection at max-connections (the one
// parked longest goes), Shutdown and Close close it instead. A connection
// accepted with nothing to read parks at once; one that is not a socket,
// or that the poller refuses, never parks, and its reader waits out the
// idle timeout. keepalive holds the reader's side of this, and since
// handlers move the deadline of a wait under way (the end of the last
// request starts the linger), every wait's deadline is set under conn.mu.
const idleLinger = 5 * time.Millisecond

// maxLinger bounds the linger of a connection that comes back from the
// poller after a request: it lingers twice as long as it was idle (at
// least idleLinger), so that a connection the front end reuses every few
// hundred milliseconds (an upload at a time, a busy Django) keeps its
// reader instead of paying a park and a resume per request (a dozen
// system calls, a new net.Conn and goroutine: a quarter of the bridge's
// CPU for 10 MiB uploads at 1×1). One idle for longer than maxLinger/2,
// or parked before its first request (a burst of new connections), lingers
// idleLinger as before, so that idle connections cost no goroutines.
const maxLinger = time.Second

// nextLinger is the linger of a connection that was idle for idle.
func nextLinger(idle time.Duration) time.Duration {
	if l := 2 * idle; l > idleLinger && l <= maxLinger {
		return l
	}
	return idleLinger
}

// phase is what a connection's reader is doing.
type phase uint8

const (
	phaseReading   phase = iota // it reads and dispatches records
	phaseWaiting                // it waits for the next record, until waitDeadlineLocked
	phaseLingering              // ... on an idle connection, for idleLinger: then it parks
	phaseParked                 // the socket went to the poller; the conn is done with
	phaseClosed                 // the socket is closed: the reader ends
)

// keepalive is the idle side of a connection, guarded by conn.mu.
// reading → waiting or lingering → reading when a record comes; a linger
// that runs out → parked (or waiting, when it may not park); anything but
// parked → closed. Apart from the phase: closing, the connection closes
// once no request is in progress (a request without FCGI_KEEP_CONN,
// Shutdown); draining, it discards the STDIN still coming first.
type keepalive struct {
	phase      phase
	since      int64         // no request in progress since, on Server.clock (0: a record came since)
	linger     time.Duration // how long it lingers before it parks (0: idleLinger)
	noPark     bool          // not a socket, or the poller refused it: it never lingers
	closeIdle  bool          // closing: close once no request is in progress
	drainUntil time.Time     // draining: STDIN still coming is discarded until then
}

// idleLocked reports whether the connection may linger and park: quiet
// and not closing.
func (c *conn) idleLocked() bool { return c.quietLocked() && !c.ka.closeIdle }

// quietLocked reports whether nothing uses the connection: no request in
// progress or expecting STDIN, and no handler that may still write.
func (c *conn) quietLocked() bool {
	return c.inProgress == 0 && c.handlers == 0 && len(c.reqs) == 0
}

// wait starts the reader's wait for the next record (nothing is buffered).
func (c *conn) wait() {
	c.mu.Lock()
	if c.ka.phase == phaseReading {
		_ = c.nc.SetReadDeadline(c.waitDeadlineLocked())
	}
	c.mu.Unlock()
}

// rewaitLocked gives a wait under way the deadline that the connection's
// state now calls for; a linger is not prolonged.
func (c *conn) rewaitLocked() {
	if c.ka.phase == phaseWaiting {
		_ = c.nc.SetReadDeadline(c.waitDeadlineLocked())
	}
}

// waitDeadlineLocked puts the reader in the wait that the connection's
// state calls for, and returns its deadline: the drain's while draining;
// with requests in progress, the PARAMS deadline of one still receiving
// them, the idle timeout from now while STDIN is expected, and no limit
// while handlers merely run; with none, the idle timeout counted from
// when the connection became idle, and on an idle connection that may
// park idleLinger before that (lingering).
func (c *conn) waitDeadlineLocked() time.Time {
	k := &c.ka
	k.phase = phaseWaiting
	if !k.drainUntil.IsZero() {
		return k.drainUntil
	}
	if c.inProgress > 0 {
		return c.requestsDeadlineLocked()
	}
	if k.since == 0 {
		k.since = c.srv.clock()
	}
	end := c.srv.idleEnd(k.since)
	if linger := time.Now().Add(cmp.Or(k.linger, idleLinger)); !k.noPark && c.idleLocked() && linger.Before(end) {
		k.phase = phaseLingering
		return linger
	}
	return end
}

// requestsDeadlineLocked is how long the requests in progress let the
// reader wait for the next record (zero: no limit).
func (c *conn) requestsDeadlineLocked() time.Time {
	var d time.Time
	stdin := time.Now().Add(c.srv.idleTimeout())
	for _, r := range c.reqs {
		switch {
		case r.ended:
		case !r.paramsDone:
			if d.IsZero() || r.paramsDeadline.Before(d) {
				d = r.paramsDeadline
			}
		case !r.stdinDone:
			if d.IsZero() || stdin.Before(d) {
				d = stdin
			}
		}
	}
	return d
}

// woke ends the reader's wait, which err ended (nil: a record came). True
// when it was a linger that ran out: the reader then parks the connection.
func (c *conn) woke(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := &c.ka
	lingered := k.phase == phaseLingering && err != nil && isTimeout(err)
	if k.phase == phaseWaiting || k.phase == phaseLingering {
		k.phase = phaseReading
	}
	if err == nil {
		k.since = 0
	}
	return lingered
}

// park hands the socket of a connection whose linger ran out to the
// poller and ends the conn (true). False when it may not park (it was
// closed or shut down meanwhile, or the poller refuses it): the reader
// then waits again.
func (c *conn) park() bool {
	c.mu.Lock()
	if c.ka.phase != phaseReading || !c.idleLocked() {
		c.mu.Unlock()
		return false
	}
	if !c.srv.poll.park(c.nc, c.log.seq, c.ka.since) {
		c.ka.noPark = true
		c.mu.Unlock()
		return false
	}
	c.ka.phase = phaseParked
	c.mu.Unlock()
	c.nc.Close() // the poller has a descriptor of its own
	c.releaseReader()
	c.cancel() // off the server's context
	c.srv.detach(c)
	return true
}

// requestDone runs when a handler has returned and its request ended.
// When that left the connection idle, it is idle from now, and a wait
// under way becomes the linger. The request's Params slice goes to the
// next request (a keep-alive connection then allocates none).
func (c *conn) requestDone(r *request) {
	c.mu.Lock()
	c.handlers--
	if c.handlers == 0 {
		c.handled.Broadcast()
	}
	if cap(r.Params) > cap(c.spare) {
		c.spare = r.Params[:0]
	}
	r.Params = nil
	if c.idleLocked() {
		c.ka.since = c.srv.clock()
		c.rewaitLocked()
	}
	// A closing connection that Shutdown found with this handler still
	// running (it wrote its end first) closes now, or drains first.
	closeNow := c.closingDoneLocked()
	c.mu.Unlock()
	if closeNow {
		c.close()
	}
}

// lastEndedLocked runs when the last request in progress has ended. A
// closing connection closes now (true), or drains first when STDIN is
// still to come, so that closing does not reset the connection before the
// web server reads the reply; another waits within the idle timeout.
func (c *conn) lastEndedLocked() bool {
	if c.ka.closeIdle {
		if len(c.reqs) == 0 {
			return true
		}
		if c.ka.drainUntil.IsZero() {
			c.ka.drainUntil = time.Now().Add(c.srv.readTimeout())
		}
	}
	c.rewaitLocked()
	return false
}

// closingDoneLocked reports whether a closing connection may close now:
// no request in progress, no handler running, no STDIN to drain (else the
// drain starts, lastEndedLocked).
func (c *conn) closingDoneLocked() bool {
	return c.ka.closeIdle && c.inProgress == 0 && c.handlers == 0 && c.lastEndedLocked()
}

// drained reports whether a draining connection has nothing left to discard.
func (c *conn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.ka.drainUntil.IsZero() && len(c.reqs) == 0
}

// shutdown closes the connection now if idle, else once its requests end.
// (A handler may still run after its request ended, EndWith: the
// connection then closes when the last one returns, requestDone.) STDIN
// still coming for an ended request is drained first, as when the last
// request of a closing connection ends.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.ka.closeIdle = true
	closeNow := c.closingDoneLocked()
	c.mu.Unlock()
	if closeNow {
		c.close()
	}
}

// close shuts the socket; the reader then ends and cleans up. A parked
// conn's socket is the poller's: Shutdown and Close, the only ones that
// may call close then, close the poller's sockets.
func (c *conn) close() {
	c.mu.Lock()
	open := c.ka.phase < phaseParked
	if open {
		c.ka.phase = phaseClosed
		c.handled.Broadcast()
		for _, r := range c.reqs { // a reader that holds a body must read on
			if r.stdin != nil {
				r.stdin.unhold()
			}
		}
	}
	nc := c.nc
	if open && c.lentFD >= 0 {
		// The borrower's reads end too; lend closes the descriptor.
		_ = unix.Shutdown(c.lentFD, unix.SHUT_RDWR)
	}
	c.mu.Unlock()
	if open {
		nc.Close()
	}
}
