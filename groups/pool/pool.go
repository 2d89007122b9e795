// Package pool keeps the worker processes of one process group and application
// group: it starts them, hands each request to a free worker thread, queues
// requests when every thread is busy, and replaces workers that die, reach
// maximum-requests or are restarted, without losing a request.
//
// Two parts share a Pool. The fast path (this file) runs on the requests'
// goroutines: it hands a request a thread of a process in service, or
// queues it, and takes the thread back; one lock acquisition each way. The
// arbiter (arbiter.go) is one goroutine that owns the processes: it starts,
// replaces, stops and reaps them, and is the only one to change their state.
package pool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// Errors of Serve that the caller turns into a status.
var (
	ErrOverloaded   = errors.New("pool: request queue full")            // 503
	ErrQueueTimeout = errors.New("pool: no worker thread became free")  // 503
	ErrUnavailable  = errors.New("pool: worker processes cannot start") // 503
	ErrClosed       = errors.New("pool: closed")                        // retry on the current pool
	// ErrRequestTimeout: the request ran past request-timeout; its process
	// is being replaced (504).
	ErrRequestTimeout = errors.New("pool: request-timeout reached")
	// errTimeoutCut ends a request at its request-timeout at once: the
	// answer is a 504 now, and its process is replaced in the background.
	errTimeoutCut = fmt.Errorf("%w: %w", ErrRequestTimeout, pyworker.ErrCut)
)

// Events is told of a pool's events, for metrics. Its methods may be called
// with the pool's lock held: they must be quick and must not call the pool.
type Events interface {
	WorkerStarted()               // a process is ready
	WorkerExited()                // a process that was ready has exited
	WorkerReplaced(reason Reason) // a process is replaced
	QueueWait(wait time.Duration) // how long a request waited for a free thread
}

// Worker is what a pool needs of a worker process (*pyworker.Worker); the
// pool's tests run fakes.
type Worker interface {
	Serve(ctx context.Context, c *pyworker.Call) (pyworker.Result, error)
	Pid() int
	InFlight() int                // requests the process has not finished
	Done() <-chan struct{}        // closed once the process has exited
	ExitErr() error               // why it exited (nil: cleanly, or still running)
	Retired() bool                // it stopped itself to reload a changed script
	Kill()                        // SIGKILL, at once
	Shutdown(time.Duration) error // graceful stop; SIGKILL after the timeout
	LastActivity() time.Time      // last request or frame: inactivity-timeout
	LastHeartbeat() time.Time     // last sign that Python runs: deadlock-timeout
}

// Start is how a pool starts a worker process and waits until it is ready.
type Start func(context.Context, pyworker.Config) (Worker, error)

// startPython starts a real worker.
func startPython(ctx context.Context, cfg pyworker.Config) (Worker, error) {
	w, err := pyworker.StartContext(ctx, cfg)
	if err != nil {
		return nil, err // not a nil *pyworker.Worker in a non-nil interface
	}
	return w, nil
}

// Pool is the set of worker processes of one (process group, application group).
type Pool struct {
	spec     Spec
	start    Start
	log      zerolog.Logger
	restarts atomic.Int64 // processes replaced, for mod_wsgi.daemon_restarts

	// The fast path's share, also read and written by the arbiter.
	mu       sync.Mutex
	serving  []*proc    // in service: requests may be handed to them
	waiters  *list.List // of chan *proc, FIFO
	starting int        // Start calls under way: nothing is sent ahead meanwhile
	failing  error      // the last start failure, while none serves
	closed   bool

	// The arbiter's inboxes (arbiter.go).
	kick    chan struct{} // one buffered: the fast path took a process out of service, or one out of it went idle
	spawned chan started
	exited  chan exited
	control chan control
	done    chan struct{} // closed when the arbiter has reaped every process after Close

	// starts is the context of the starts under way: Close cancels it.
	starts       context.Context
	cancelStarts context.CancelFunc
}

// New creates a pool and starts its processes in the background; start nil
// runs pyworker.Start.
func New(spec Spec, start Start) *Pool {
	spec = spec.withDefaults()
	if start == nil {
		start = startPython
	}
	p := &Pool{spec: spec, start: start, log: spec.Log.With().Str("pool", spec.Name).Logger(),
		waiters: list.New(),
		kick:    make(chan struct{}, 1), spawned: make(chan started), exited: make(chan exited),
		control: make(chan control), done: make(chan struct{})}
	p.starts, p.cancelStarts = context.WithCancel(context.Background())
	a := &arbiter{p: p, slots: make([]slot, spec.Processes)}
	for i := range a.slots {
		a.spawn(i)
	}
	go a.run()
	return p
}

// Restarts is how many processes were replaced since the pool started.
func (p *Pool) Restarts() int { return int(p.restarts.Load()) }

// Pids lists the processes in service.
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, 0, len(p.serving))
	for _, pr := range p.serving {
		pids = append(pids, pr.w.Pid())
	}
	return pids
}

// Restart replaces every process in service gracefully: each gets a
// successor at once and stops when its requests are done. It returns once
// none of them takes new requests.
func (p *Pool) Restart(reason Reason) { p.tell(control{restart: true, reason: reason}) }

// Close stops the pool: queued requests get ErrClosed; idle processes stop
// now, busy ones when their requests are done or graceful-timeout has
// passed, each then given ShutdownTimeout to exit. It returns once every
// process has exited.
func (p *Pool) Close() {
	p.tell(control{})
	<-p.done
}

// tell hands c to the arbiter and waits until it has been carried out.
func (p *Pool) tell(c control) {
	c.done = make(chan struct{})
	select {
	case p.control <- c:
		<-c.done
	case <-p.done:
	}
}

// Serve runs one call on a free worker thread, waiting in the queue if needed.
// It reports the pid of the worker that served the call. A worker that
// turns the call away unstarted (it is stopping, or it retires itself to
// reload a changed script) is taken out of service and the call goes to
// another one.
func (p *Pool) Serve(ctx context.Context, c *pyworker.Call) (pyworker.Result, int, error) {
	call := *c
	var rec *replay
	if c.Body != nil {
		rec = &replay{r: c.Body}
		call.Body = rec
	}
	for attempt := 0; ; attempt++ {
		pr, err := p.acquire(ctx)
		if err != nil {
			return pyworker.Result{}, 0, err
		}
		// The thread goes back to the pool as soon as the worker ends the
		// request, so that a queued request reaches the worker while this
		// response is still being passed on; whoever swaps freed first
		// gives it back.
		var freed atomic.Bool
		call.Freed = func() {
			if freed.CompareAndSwap(false, true) {
				p.release(pr, true, "", false)
			}
		}
		res, err, timedOut := p.serveOn(ctx, pr, &call)
		thread := freed.CompareAndSwap(false, true)
		turnedAway := errors.Is(err, pyworker.ErrClosed) && !res.HeadersSent
		again := turnedAway && attempt < 3 && (rec == nil || rec.rewind())
		var leave Reason
		switch {
		case timedOut:
			leave = ReasonRequestTimeout
		case turnedAway && pr.w.Retired():
			leave = ReasonWorkerRetired
		case turnedAway:
			// Not asked to stop, it refuses requests: it is going away, and
			// its exit tells the arbiter how.
			leave = ReasonDied
		}
		lost := !again && errors.Is(err, pyworker.ErrWorkerLost)
		if thread || leave != "" || lost {
			p.release(pr, thread, leave, lost)
		}
		switch {
		case timedOut:
			return res, pr.w.Pid(), ErrRequestTimeout
		case !again:
			return res, pr.w.Pid(), err
		}
	}
}

// serveOn runs the call on pr, bounded by request-timeout.
func (p *Pool) serveOn(ctx context.Context, pr *proc, c *pyworker.Call) (pyworker.Result, error, bool) {
	if p.spec.RequestTimeout <= 0 {
		res, err := pr.w.Serve(ctx, c)
		return res, err, false
	}
	tctx, cancel := context.WithTimeoutCause(ctx, p.spec.RequestTimeout, errTimeoutCut)
	defer cancel()
	res, err := pr.w.Serve(tctx, c)
	timedOut := ctx.Err() == nil && errors.Is(context.Cause(tctx), ErrRequestTimeout) && err != nil
	if timedOut {
		p.log.Error().Int("pid", pr.w.Pid()).Dur("request_timeout", p.spec.RequestTimeout).
			Msg("request-timeout reached: answered 504; the worker is replaced in the background")
	}
	return res, err, timedOut
}

// replay keeps the first pyworker.BodyWindow bytes read from a body, so a
// call that a worker turned away unstarted can be sent again in full.
type replay struct {
	r    io.Reader
	kept []byte
	pos  int  // next byte of kept to give out again
	over bool // more than the window was read: no rewind possible
}

func (b *replay) Read(p []byte) (int, error) {
	if b.pos < len(b.kept) {
		n := copy(p, b.kept[b.pos:])
		b.pos += n
		return n, nil
	}
	n, err := b.r.Read(p)
	if !b.over {
		if len(b.kept)+n <= pyworker.BodyWindow {
			b.kept = append(b.kept, p[:n]...)
			b.pos = len(b.kept)
		} else {
			b.over, b.kept = true, nil
		}
	}
	return n, err
}

// WantLoan passes a loan of the body's source on (pyworker.Lender).
func (b *replay) WantLoan() bool {
	l, ok := b.r.(pyworker.Lender)
	return ok && l.WantLoan()
}

func (b *replay) TakeLoan() *pyworker.Loan { return b.r.(pyworker.Lender).TakeLoan() }

// Repay: bytes read through a loan cannot be sent again.
func (b *replay) Repay(leftover []byte, n int64, broken, stalled bool) {
	if n > 0 || broken {
		b.over, b.kept = true, nil
	}
	b.r.(pyworker.Lender).Repay(leftover, n, broken, stalled)
}

// rewind makes the kept bytes readable again; false if they are incomplete.
func (b *replay) rewind() bool {
	if b.over {
		return false
	}
	b.pos = 0
	return true
}

func (p *Pool) acquire(ctx context.Context) (*proc, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if pr := p.pickLocked(); pr != nil {
		p.handLocked(pr)
		if ev := p.spec.Events; ev != nil {
			ev.QueueWait(0)
		}
		p.mu.Unlock()
		return pr, nil
	}
	if p.failing != nil && len(p.serving) == 0 {
		err := p.failing
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.waiters.Len() >= p.spec.Backlog {
		p.mu.Unlock()
		return nil, ErrOverloaded
	}
	ch := make(chan *proc, 1)
	el := p.waiters.PushBack(ch)
	p.mu.Unlock()
	if ev := p.spec.Events; ev != nil {
		queued := time.Now()
		defer func() { ev.QueueWait(time.Since(queued)) }()
	}

	var timeout <-chan time.Time
	if p.spec.QueueTimeout > 0 {
		t := time.NewTimer(p.spec.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var werr error
	select {
	case pr := <-ch:
		if pr == nil {
			return nil, p.waitFailure()
		}
		return pr, nil
	case <-ctx.Done():
		werr = ctx.Err()
	case <-timeout:
		werr = ErrQueueTimeout
	}
	p.mu.Lock()
	p.waiters.Remove(el) // no-op when a process was handed over already
	p.mu.Unlock()
	// A process may have been handed over just before the removal.
	select {
	case pr := <-ch:
		if pr != nil {
			p.release(pr, true, "", false)
		}
	default:
	}
	return nil, werr
}

// waitFailure is the error for a waiter woken with no process.
func (p *Pool) waitFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, p.failing)
}

// pickLocked returns the first process to pack a request into (pack.go);
// or else the least busy process with a free thread, or else the least
// busy one with room ahead of its threads. Nothing is sent ahead while a
// process is starting (it will have free threads), nor with queue-timeout
// or request-timeout set: a request waiting in a worker's pipe cannot be
// taken back when its time in the queue is up, and its wait would count as
// running time.
func (p *Pool) pickLocked() *proc {
	limit := p.spec.Worker.Threads
	if p.starting == 0 && p.spec.QueueTimeout <= 0 && p.spec.RequestTimeout <= 0 {
		limit += p.spec.Ahead
	}
	var best *proc
	var now time.Time
	pack := p.spec.Processes > 1 // one process: nothing to choose between
	if pack {
		now = time.Now()
	}
	for _, pr := range p.serving {
		// The worker's own count also holds requests whose client left but
		// whose application has not stopped yet.
		n := max(pr.inflight, pr.w.InFlight())
		if n >= limit {
			continue
		}
		if pack && pr.packable(n, now) {
			return pr
		}
		if best == nil || pr.inflight < best.inflight {
			best = pr
		}
	}
	return best
}

// handLocked gives pr one more request. maximum-requests counts here, so
// that no request is sent ahead to a process that must not serve it.
func (p *Pool) handLocked(pr *proc) {
	pr.inflight++
	pr.served++
	if p.spec.MaximumRequests > 0 && pr.served >= p.spec.MaximumRequests && p.outLocked(pr, ReasonMaximumRequests) {
		p.kickArbiter()
	}
}

// release ends a request on pr. thread: it still holds its thread (the
// worker's END did not free it first). leave: pr must take no more
// requests, for that reason. lost: the request failed with its process.
func (p *Pool) release(pr *proc, thread bool, leave Reason, lost bool) {
	p.mu.Lock()
	if lost {
		pr.lost++
	}
	if leave != "" && p.outLocked(pr, leave) {
		p.kickArbiter()
	}
	if thread {
		pr.inflight--
		if p.spec.Processes > 1 {
			pr.ended(time.Now())
		}
		if pr.out != "" && pr.inflight == 0 {
			p.kickArbiter() // the arbiter stops or reaps it
		}
		p.dispatchLocked()
	}
	p.mu.Unlock()
}

// outLocked takes pr out of service for reason, unless it is already out;
// it reports whether it did.
func (p *Pool) outLocked(pr *proc, reason Reason) bool {
	if pr.out != "" {
		return false
	}
	pr.out = reason
	if i := slices.Index(p.serving, pr); i >= 0 {
		p.serving = slices.Delete(p.serving, i, i+1)
	}
	return true
}

// kickArbiter wakes the arbiter without waiting: one pending kick stands
// for any number, as the arbiter looks at every process when it wakes.
func (p *Pool) kickArbiter() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// dispatchLocked hands free threads to queued requests, oldest first.
func (p *Pool) dispatchLocked() {
	for p.waiters.Len() > 0 {
		pr := p.pickLocked()
		if pr == nil {
			return
		}
		el := p.waiters.Front()
		p.waiters.Remove(el)
		p.handLocked(pr)
		el.Value.(chan *proc) <- pr
	}
}

// failWaitersLocked wakes every queued request with no process.
func (p *Pool) failWaitersLocked() {
	for p.waiters.Len() > 0 {
		el := p.waiters.Front()
		p.waiters.Remove(el)
		el.Value.(chan *proc) <- nil
	}
}
