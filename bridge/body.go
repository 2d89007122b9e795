package bridge

import (
	"errors"
	"io"
	"time"
)

var (
	// ErrStdinTimeout is returned by reads of a request's STDIN that
	// waited longer than its idle timeout (Body.SetIdleTimeout) for more.
	ErrStdinTimeout = errors.New("fastcgi: the request body sent nothing in time")
	// errAbandoned is returned by reads after Body.Abandon.
	errAbandoned = errors.New("fastcgi: request body abandoned")
)

// Body is what the bridge's Request.Stdin offers beyond io.Reader: a
// handler may wait for a body to arrive before it commits resources to
// the request, and bound how long a read may wait for a stalled one.
type Body interface {
	io.Reader
	// SetIdleTimeout makes a read or Buffer that waits longer than d for
	// more STDIN fail with ErrStdinTimeout; the rest of the body is then
	// abandoned (see Abandon). 0: no limit (the connection's idle timeout).
	SetIdleTimeout(d time.Duration)
	// Buffer waits until n bytes are unread or STDIN has ended (nil), or
	// fails as a read would.
	Buffer(n int64) error
	// Abandon gives up the rest of STDIN: reads fail, what arrives is
	// dropped, and the response no longer waits for the web server to
	// finish sending the body (it may never: a stalled client).
	Abandon()
}

func (p *stdinPipe) SetIdleTimeout(d time.Duration) {
	p.mu.Lock()
	p.idle = d
	p.mu.Unlock()
}

func (p *stdinPipe) Buffer(n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The connection reader reads on, past the memory limit (spooling),
	// until n bytes are here.
	p.want = n
	p.signalHoldLocked()
	defer func() {
		p.want = 0
		p.signalHoldLocked() // a reader held for a borrower lends now
	}()
	for {
		switch {
		case p.err != nil:
			return p.err
		case p.closed:
			return io.ErrClosedPipe
		case p.eof || int64(len(p.buf)-p.r)+p.spooled() >= n:
			return nil
		}
		if err := p.waitLocked(); err != nil {
			return err
		}
	}
}

func (p *stdinPipe) Abandon() {
	p.mu.Lock()
	p.failLocked(errAbandoned)
	p.mu.Unlock()
}

// waitLocked waits for the connection reader (cond), at most until the
// idle timeout has passed with no new STDIN byte; then the body fails with
// ErrStdinTimeout. The idle time counts from the first wait after the last
// byte came, so a handler busy elsewhere does not count against the client.
func (p *stdinPipe) waitLocked() error {
	if p.idle <= 0 {
		p.cond.Wait()
		return nil
	}
	now := time.Now()
	if p.since.IsZero() || p.got != p.sinceGot {
		p.since, p.sinceGot = now, p.got
	}
	left := p.idle - now.Sub(p.since)
	if left <= 0 {
		p.failLocked(ErrStdinTimeout)
		return ErrStdinTimeout
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(left, p.wake)
	} else {
		p.timer.Reset(left)
	}
	p.cond.Wait()
	return nil
}

// wake makes waiters look at the clock again.
func (p *stdinPipe) wake() {
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// failLocked ends the body with err: reads fail, later STDIN is dropped,
// and writes of the response no longer wait for STDIN to end.
func (p *stdinPipe) failLocked(err error) {
	if p.err == nil {
		p.err = err
	}
	p.release()
	p.markEnded()
	p.cond.Broadcast()
}

// waitEnded waits for the end of STDIN, for a response that must not
// start before it; false when done is closed first. With an idle timeout,
// STDIN that sends nothing for that long is abandoned (ErrStdinTimeout),
// which ends it: a stalled client that the application did not read from
// does not hold the response back.
func (p *stdinPipe) waitEnded(done <-chan struct{}) bool {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		p.mu.Lock()
		idle, got := p.idle, p.got
		p.mu.Unlock()
		var expired <-chan time.Time
		if idle > 0 {
			if t == nil {
				t = time.NewTimer(idle)
			} else {
				t.Reset(idle)
			}
			expired = t.C
		}
		select {
		case <-p.ended:
			return true
		case <-done:
			return false
		case <-expired:
			p.mu.Lock()
			if p.got == got {
				p.failLocked(ErrStdinTimeout)
			}
			p.mu.Unlock()
		}
	}
}
