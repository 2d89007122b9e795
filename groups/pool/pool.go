// Package pool keeps the worker processes of one process group and application
// group: it starts them, hands each request to a free worker thread, queues
// requests when every thread is busy, and replaces workers that die, reach
// maximum-requests or are restarted, without losing a request.
package pool

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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

// DefaultAhead is how many requests a busy process may hold beyond its
// threads. Measured behind nginx with 16 clients on one thread: 2 ahead
// gave 11,500 requests/s, 8 gave 15,600 and 16 gave 18,000; a deeper
// queue in the pipe lets the worker read and answer more requests per
// system call.
const DefaultAhead = 16

// Spec is what a pool needs; the caller derives it from configuration.
type Spec struct {
	Name      string          // for logs: "process-group|application-group"
	Worker    pyworker.Config // template for each process
	Processes int
	// Ahead is how many requests a process may hold beyond its threads,
	// waiting in its pipe, when every thread of the pool is busy: the
	// worker then starts the next one without a round trip to the bridge,
	// and reads and answers several at once. 0: DefaultAhead, or its
	// threads when it has more.
	Ahead           int
	MaximumRequests int           // a process is replaced after this many requests (0: never)
	QueueTimeout    time.Duration // a queued request gets ErrQueueTimeout after this (0: waits for its client)
	Backlog         int           // requests that may wait for a thread (listen-backlog; 0: 100, mod_wsgi's default)
	ShutdownTimeout time.Duration // how long a stopping process may take to exit before SIGKILL

	// Timeouts of WSGIDaemonProcess; 0 disables each.
	RequestTimeout    time.Duration // a request running longer gets ErrRequestTimeout; its process is replaced
	InactivityTimeout time.Duration // a process with no request or I/O for this long is replaced
	DeadlockTimeout   time.Duration // a process whose heartbeat stops this long is killed (needs Worker.Heartbeat)
	GracefulTimeout   time.Duration // a replaced process still busy after this is stopped
	RestartInterval   time.Duration // every process is replaced after running this long

	Log zerolog.Logger

	// Events, when set, is told what happens to the processes (metrics).
	Events Events
}

// Events is told of a pool's events, for metrics. Its methods may be called
// with the pool's lock held: they must be quick and must not call the pool.
type Events interface {
	WorkerStarted()               // a process is ready
	WorkerExited()                // a process that was ready has exited
	WorkerReplaced(reason string) // a process is replaced: maximum-requests, died, ...
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
type Start func(pyworker.Config) (Worker, error)

// startPython starts a real worker.
func startPython(cfg pyworker.Config) (Worker, error) {
	w, err := pyworker.Start(cfg)
	if err != nil {
		return nil, err // not a nil *pyworker.Worker in a non-nil interface
	}
	return w, nil
}

// Pool is the set of worker processes of one (process group, application group).
type Pool struct {
	spec  Spec
	start Start
	log   zerolog.Logger

	mu       sync.Mutex
	procs    []*proc    // serving processes
	retired  []*proc    // out of service, not yet told to stop
	waiters  *list.List // of chan *proc, FIFO
	starting int        // processes being started
	failing  error      // last start failure while no process serves
	restarts int        // processes replaced for any reason
	crashes  int        // consecutive deaths of young processes
	closed   bool
	stopWg   sync.WaitGroup // retiring processes and restart loops
	closeCh  chan struct{}
}

type proc struct {
	w        Worker
	inflight int
	served   int
	retiring bool // out of service: takes no new requests
	stopping bool // Shutdown called (or the process is gone)
	started  time.Time
	retired  time.Time
	killedBy string // the timeout that killed it, for Events ("": died)
}

// New creates a pool and starts its processes in the background.
func New(spec Spec, start Start) *Pool {
	if spec.Processes < 1 {
		spec.Processes = 1
	}
	if spec.Worker.Threads < 1 {
		spec.Worker.Threads = 1
	}
	if spec.Backlog <= 0 {
		spec.Backlog = 100
	}
	if spec.Ahead <= 0 {
		spec.Ahead = max(DefaultAhead, spec.Worker.Threads)
	}
	if spec.ShutdownTimeout <= 0 {
		spec.ShutdownTimeout = 5 * time.Second
	}
	if start == nil {
		start = startPython
	}
	p := &Pool{spec: spec, start: start, log: spec.Log.With().Str("pool", spec.Name).Logger(),
		waiters: list.New(), closeCh: make(chan struct{})}
	p.mu.Lock()
	for i := 0; i < spec.Processes; i++ {
		p.spawnLocked(0)
	}
	p.mu.Unlock()
	if tick := spec.monitorInterval(); tick > 0 {
		p.stopWg.Add(1)
		go p.monitor(tick)
	}
	return p
}

// Restarts is how many processes were replaced since the pool started.
func (p *Pool) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Pids lists the serving processes.
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, 0, len(p.procs))
	for _, pr := range p.procs {
		pids = append(pids, pr.w.Pid())
	}
	return pids
}

// Serve runs one call on a free worker thread, waiting in the queue if needed.
// It reports the pid of the worker that served the call. A worker that
// turns the call away unstarted (it is stopping, or it retires itself to
// reload a changed script) is replaced and the call goes to another one.
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
		// response is still being passed on; freed decides who returns it.
		var freed atomic.Bool
		call.Freed = func() {
			if freed.CompareAndSwap(false, true) {
				p.free(pr)
			}
		}
		res, err, timedOut := p.serveOn(ctx, pr, &call)
		early := !freed.CompareAndSwap(false, true)
		turnedAway := errors.Is(err, pyworker.ErrClosed) && !res.HeadersSent
		switch {
		case timedOut:
			p.release(pr, "request-timeout", early)
			return res, pr.w.Pid(), ErrRequestTimeout
		case turnedAway:
			p.release(pr, "worker retired (script changed or stopping)", early)
		default:
			p.release(pr, "", early)
		}
		if !turnedAway || attempt >= 3 || (rec != nil && !rec.rewind()) {
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
	if p.failing != nil && len(p.procs) == 0 {
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
			p.free(pr)
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

// pickLocked returns the least busy process with a free thread, or else
// the least busy one with room ahead of its threads. Nothing is sent ahead
// while a process is starting (it will have free threads), nor with
// queue-timeout or request-timeout set: a request waiting in a worker's
// pipe cannot be taken back when its time in the queue is up, and its
// wait would count as running time.
func (p *Pool) pickLocked() *proc {
	limit := p.spec.Worker.Threads
	if p.starting == 0 && p.spec.QueueTimeout <= 0 && p.spec.RequestTimeout <= 0 {
		limit += p.spec.Ahead
	}
	var best *proc
	for _, pr := range p.procs {
		// The worker's own count also holds requests whose client left but
		// whose application has not stopped yet.
		if pr.retiring || max(pr.inflight, pr.w.InFlight()) >= limit {
			continue
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
	if !pr.retiring && p.spec.MaximumRequests > 0 && pr.served >= p.spec.MaximumRequests {
		p.retireLocked(pr, "maximum-requests")
	}
}

// release ends a call: a non-empty retire replaces the worker for that
// reason. Unless free did it already (freed), it returns the thread.
func (p *Pool) release(pr *proc, retire string, freed bool) {
	p.mu.Lock()
	if retire != "" && !pr.retiring {
		p.retireLocked(pr, retire)
	}
	if freed {
		if pr.retiring && pr.inflight == 0 {
			p.stopLocked(pr)
		}
	} else {
		p.releaseLocked(pr)
	}
	p.mu.Unlock()
}

// free returns the thread of a call the worker has finished (its END came).
func (p *Pool) free(pr *proc) {
	p.mu.Lock()
	p.releaseLocked(pr)
	p.mu.Unlock()
}

func (p *Pool) releaseLocked(pr *proc) {
	pr.inflight--
	if pr.retiring && pr.inflight == 0 {
		p.stopLocked(pr)
	}
	p.dispatchLocked()
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

// retireLocked takes pr out of service: a replacement starts at once, and pr
// stops when its last request is done.
func (p *Pool) retireLocked(pr *proc, reason string) {
	p.log.Info().Int("pid", pr.w.Pid()).Str("reason", reason).Msg("replacing worker")
	pr.retiring = true
	pr.retired = time.Now()
	p.restarts++
	p.replacedLocked(reason)
	p.removeLocked(pr)
	p.spawnLocked(0)
	if pr.inflight == 0 {
		p.stopLocked(pr)
	} else {
		p.retired = append(p.retired, pr)
	}
}

// replacedLocked reports a replacement to Events with a short reason.
func (p *Pool) replacedLocked(reason string) {
	if p.spec.Events == nil {
		return
	}
	switch reason {
	case "worker retired itself", "worker retired (script changed or stopping)":
		reason = "worker-retired"
	default:
		reason = strings.ReplaceAll(reason, " ", "-")
	}
	p.spec.Events.WorkerReplaced(reason)
}

func (p *Pool) removeLocked(pr *proc) {
	for i, x := range p.procs {
		if x == pr {
			p.procs = append(p.procs[:i], p.procs[i+1:]...)
			return
		}
	}
}

// stopLocked shuts a retired process down in the background.
func (p *Pool) stopLocked(pr *proc) {
	if pr.stopping {
		return
	}
	pr.stopping = true
	for i, x := range p.retired {
		if x == pr {
			p.retired = append(p.retired[:i], p.retired[i+1:]...)
			break
		}
	}
	p.stopWg.Add(1)
	go func() {
		defer p.stopWg.Done()
		if err := pr.w.Shutdown(p.spec.ShutdownTimeout); err != nil {
			p.log.Warn().Err(err).Int("pid", pr.w.Pid()).Msg("worker did not stop cleanly")
		}
	}()
}

// spawnLocked starts one process after delay, retrying with backoff until it
// runs or the pool closes.
func (p *Pool) spawnLocked(delay time.Duration) {
	if p.closed {
		return
	}
	p.starting++
	p.stopWg.Add(1)
	go func() {
		defer p.stopWg.Done()
		backoff := delay
		for {
			if backoff > 0 {
				select {
				case <-time.After(backoff):
				case <-p.closeCh:
					p.mu.Lock()
					p.starting--
					p.mu.Unlock()
					return
				}
			}
			w, err := p.start(p.spec.Worker)
			p.mu.Lock()
			if err != nil {
				p.log.Error().Err(err).Dur("retry_in", nextBackoff(backoff)).Msg("worker failed to start")
				if len(p.procs) == 0 {
					p.failing = err
					p.failWaitersLocked()
				}
				p.mu.Unlock()
				backoff = nextBackoff(backoff)
				continue
			}
			p.starting--
			if p.closed {
				p.mu.Unlock()
				w.Kill()
				return
			}
			pr := &proc{w: w, started: time.Now()}
			p.procs = append(p.procs, pr)
			p.failing = nil
			if p.spec.Events != nil {
				p.spec.Events.WorkerStarted()
			}
			p.log.Info().Int("pid", w.Pid()).Msg("worker ready")
			p.dispatchLocked()
			p.mu.Unlock()
			go p.watch(pr)
			return
		}
	}()
}

// watch respawns a process that exits while still in service.
func (p *Pool) watch(pr *proc) {
	<-pr.w.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spec.Events != nil {
		p.spec.Events.WorkerExited()
	}
	if pr.retiring || p.closed {
		return
	}
	if pr.w.Retired() {
		// It retired itself (a changed script with reload-mechanism process)
		// and exited before the request that saw it came back: planned.
		p.retireLocked(pr, "worker retired itself")
		return
	}
	pr.retiring = true
	pr.stopping = true
	p.removeLocked(pr)
	p.restarts++
	p.replacedLocked(cmp.Or(pr.killedBy, "died"))
	// A process that dies young may be in a crash loop: back off, doubling
	// up to 30 s, until one lives for a while.
	delay := time.Duration(0)
	if time.Since(pr.started) < 10*time.Second {
		p.crashes++
		delay = nextBackoff(time.Duration(250<<min(p.crashes, 8)) * time.Millisecond)
	} else {
		p.crashes = 0
	}
	p.log.Error().Err(pr.w.ExitErr()).Int("pid", pr.w.Pid()).Int("in_flight", pr.inflight).
		Dur("respawn_in", delay).Msg("worker process died")
	p.spawnLocked(delay)
}

func nextBackoff(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 500 * time.Millisecond
	case d >= 30*time.Second:
		return 30 * time.Second
	default:
		return d * 2
	}
}

// Restart replaces every process gracefully: each gets a successor at once
// and stops when its in-flight requests are done.
func (p *Pool) Restart(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	procs := append([]*proc(nil), p.procs...)
	for _, pr := range procs {
		p.retireLocked(pr, reason)
	}
}

// Close stops the pool: queued requests get ErrClosed; idle processes stop
// now, busy ones when their requests are done or graceful-timeout has
// passed, each then given ShutdownTimeout to exit. It waits for all that.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closeCh)
		p.failWaitersLocked()
		now := time.Now()
		for _, pr := range p.procs {
			pr.retiring, pr.retired = true, now
			if pr.inflight == 0 {
				p.stopLocked(pr)
			} else {
				p.retired = append(p.retired, pr)
			}
		}
		p.procs = nil
	}
	p.mu.Unlock()
	grace := p.spec.GracefulTimeout
	if grace <= 0 {
		grace = p.spec.ShutdownTimeout
	}
	deadline := time.Now().Add(grace)
	for {
		p.mu.Lock()
		if len(p.retired) == 0 {
			p.mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			for _, pr := range append([]*proc(nil), p.retired...) {
				p.stopLocked(pr)
			}
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	p.stopWg.Wait()
}

// monitorInterval is how often the timeouts are checked: often enough for
// the shortest one, at most once a second.
func (s Spec) monitorInterval() time.Duration {
	tick := time.Duration(0)
	for _, d := range []time.Duration{s.InactivityTimeout, s.DeadlockTimeout, s.GracefulTimeout, s.RestartInterval} {
		if d > 0 && (tick == 0 || d/4 < tick) {
			tick = d / 4
		}
	}
	if tick > time.Second {
		tick = time.Second
	}
	if tick > 0 && tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	return tick
}

// monitor replaces processes by the timeouts of the spec until Close.
func (p *Pool) monitor(tick time.Duration) {
	defer p.stopWg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.closeCh:
			return
		case now := <-t.C:
			p.mu.Lock()
			p.checkLocked(now)
			p.mu.Unlock()
		}
	}
}

func (p *Pool) checkLocked(now time.Time) {
	s := p.spec
	for _, pr := range append([]*proc(nil), p.procs...) {
		switch {
		case s.DeadlockTimeout > 0 && now.Sub(pr.w.LastHeartbeat()) > s.DeadlockTimeout:
			// The interpreter runs no Python code (C code holds the GIL):
			// nothing graceful can work, so kill; watch respawns it.
			p.log.Error().Int("pid", pr.w.Pid()).Dur("deadlock_timeout", s.DeadlockTimeout).
				Int("in_flight", pr.inflight).Msg("deadlock-timeout: the interpreter is stuck; killing the worker")
			pr.killedBy = "deadlock-timeout"
			pr.w.Kill()
		case s.RestartInterval > 0 && now.Sub(pr.started) > s.RestartInterval:
			p.retireLocked(pr, "restart-interval")
		case s.InactivityTimeout > 0 && pr.served+pr.inflight > 0 && now.Sub(pr.w.LastActivity()) > s.InactivityTimeout:
			// Idle (or stuck without any I/O) since its last activity. A
			// process that never served stays: restarting it frees nothing.
			p.retireLocked(pr, "inactivity-timeout")
			if pr.inflight > 0 {
				p.stopLocked(pr)
			}
		}
	}
	if s.GracefulTimeout > 0 {
		for _, pr := range append([]*proc(nil), p.retired...) {
			if now.Sub(pr.retired) > s.GracefulTimeout {
				p.log.Warn().Int("pid", pr.w.Pid()).Int("in_flight", pr.inflight).
					Msg("graceful-timeout: stopping a replaced worker that is still busy")
				p.stopLocked(pr)
			}
		}
	}
}
