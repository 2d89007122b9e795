package pool

import (
	"cmp"
	"slices"
	"time"
)

// The arbiter is one goroutine per pool that owns its processes, as
// gunicorn's arbiter owns its workers: it alone starts, replaces, stops and
// reaps them, and changes their state. What happens to them reaches it as
// events: a start's result, a process's exit, a kick from the fast path
// (which took a process out of service, or saw the last request of one out
// of service come back), Restart and Close, and its alarm, set to the next
// deadline (a timeout, a graceful-timeout, a backoff).

// state is where a process is in its life.
//
//	starting ──ready──▶ serving ──replaced──▶ retiring ──idle, or graceful-timeout──▶ stopping
//	   │                   │                     │                                      │
//	   │ fails: the slot   │ exits: died,        │ exits: died                          │ exits
//	   ▼ backs off         ▼ respawned at once   ▼                                      ▼
//	 (gone)               dead ◀─────────────────┴──────────────────────────────────────┘
//
// A serving process that turns requests away unasked is replaced as died
// (to retiring: it may still finish requests); deadlock-timeout kills one
// (to stopping). A dead process is reaped once its last request has come
// back.
type state uint8

const (
	starting state = iota // Start runs: no process yet
	serving               // ready, in service
	retiring              // out of service, its successor started: finishing its requests
	stopping              // asked to exit (SHUTDOWN, SIGKILL after shutdown-timeout), or killed
	dead                  // exited
)

// proc is one worker process.
type proc struct {
	slot int
	w    Worker // nil while starting

	// Under Pool.mu: the fast path counts the requests on it and may take
	// it out of service.
	inflight int    // requests handed to it and not yet released
	served   int    // requests handed to it (maximum-requests)
	lost     int    // requests that failed with it (ErrWorkerLost): the in_flight of its end
	out      Reason // why it takes no more requests; "": in service
	// Packing (pack.go): when it last ended a request, the mean time
	// between its ends (recent ones weigh most), its CPU time in clock
	// ticks when read at cpuAt, and whether it was busy then.
	lastEnd time.Time
	gap     time.Duration
	cpu     int64
	cpuAt   time.Time
	busy    bool

	// The arbiter's alone.
	state    state
	reason   Reason    // why it left service
	crashed  bool      // it exited unasked
	exitErr  error     // how it exited, or how its stop went
	started  time.Time // ready at (restart-interval)
	deadline time.Time // retiring: stopped then (graceful-timeout); zero: when idle
	stop     chan struct{}
}

// slot is one of the spec's Processes places, held by one starting or
// serving process at a time. A process that fails to start (it exits or
// times out before it is ready: a broken script, a missing module) is
// retried after a backoff that doubles from 0.5 s up to 30 s, until one of
// the slot is ready; one that dies after it was ready is respawned at once.
type slot struct {
	backoff time.Duration // before the next start; 0: none
	due     time.Time     // the next start, while backing off; zero: none
}

const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// The arbiter's events besides kicks and its alarm.
type (
	started struct { // a Start returned
		pr  *proc
		w   Worker
		err error
	}
	exited struct { // a process exited
		pr  *proc
		err error // its ExitErr, or what Shutdown returned
	}
	control struct { // Restart, or Close
		restart bool
		reason  Reason
		done    chan struct{}
	}
)

type arbiter struct {
	p       *Pool
	procs   []*proc // every process not yet reaped (only reap and a failed start remove one)
	slots   []slot
	closing bool
}

// run is the arbiter's loop; it ends when the pool is closed and every
// process is reaped.
func (a *arbiter) run() {
	p := a.p
	alarm := time.NewTimer(time.Hour)
	defer alarm.Stop()
	for !a.closing || len(a.procs) > 0 {
		a.arm(alarm)
		select {
		case r := <-p.spawned:
			a.onStarted(r)
		case e := <-p.exited:
			a.onExited(e)
		case <-p.kick:
			a.onKick()
		case c := <-p.control:
			a.onControl(c)
			close(c.done)
		case <-alarm.C:
			a.onAlarm(time.Now())
		}
	}
	close(p.done)
}

// onStarted puts a ready process in service, or backs its slot off.
func (a *arbiter) onStarted(r started) {
	p, pr, now := a.p, r.pr, time.Now()
	pr.w = r.w
	p.mu.Lock()
	p.starting--
	switch {
	case r.err != nil:
		if len(p.serving) == 0 && !a.closing {
			// Nothing serves: waiting requests would wait for a backoff.
			p.failing = r.err
			p.failWaitersLocked()
		}
	case !a.closing:
		p.serving = append(p.serving, pr)
		p.failing = nil
		p.dispatchLocked()
	}
	p.mu.Unlock()

	if r.err != nil {
		a.procs = slices.DeleteFunc(a.procs, func(x *proc) bool { return x == pr })
		if !a.closing {
			sl := &a.slots[pr.slot]
			sl.backoff = min(max(2*sl.backoff, minBackoff), maxBackoff)
			sl.due = now.Add(sl.backoff)
			p.log.Error().Err(r.err).Dur("retry_in", sl.backoff).Msg("worker failed to start")
		}
		return
	}
	pr.started = now
	go p.watch(pr)
	if ev := p.spec.Events; ev != nil {
		ev.WorkerStarted()
	}
	if a.closing {
		pr.state, pr.reason = retiring, reasonClose
		a.stop(pr)
		return
	}
	pr.state = serving
	a.slots[pr.slot].backoff = 0
	p.log.Info().Int("pid", pr.w.Pid()).Msg("worker ready")
}

// onExited records an exit. Unless the arbiter asked for it (stopping), or
// the process retired itself for a script reload, it is a crash.
func (a *arbiter) onExited(e exited) {
	pr, now := e.pr, time.Now()
	if ev := a.p.spec.Events; ev != nil {
		ev.WorkerExited()
	}
	switch {
	case pr.state == serving && pr.w.Retired():
		// It exited before the request that saw it retire came back.
		a.p.log.Info().Int("pid", pr.w.Pid()).Str("reason", string(ReasonWorkerRetired)).Msg("replacing worker")
		a.leave(pr, ReasonWorkerRetired, now)
	case pr.state == serving:
		pr.crashed = true
		a.leave(pr, ReasonDied, now)
	case pr.state == retiring:
		pr.crashed = !pr.w.Retired()
	}
	pr.state, pr.exitErr = dead, e.err
	a.p.mu.Lock()
	idle := pr.inflight == 0
	a.p.mu.Unlock()
	if idle {
		a.reap(pr)
	} // else the last request's release kicks
}

// onKick replaces the processes the fast path took out of service, stops
// retiring ones that have gone idle and reaps dead ones whose requests
// have all come back.
func (a *arbiter) onKick() {
	now := time.Now()
	var due []*proc
	a.p.mu.Lock()
	for _, pr := range a.procs {
		switch {
		case pr.state == serving && pr.out != "":
			pr.reason = pr.out
			due = append(due, pr)
		case (pr.state == retiring || pr.state == dead) && pr.inflight == 0:
			due = append(due, pr)
		}
	}
	a.p.mu.Unlock()
	for _, pr := range due {
		switch {
		case pr.state == serving && pr.reason == ReasonDied:
			// It turns requests away unasked: it is dying, or was told to
			// stop by someone else. Either way a crash, whose successor
			// need not wait for the exit.
			pr.crashed = true
			if a.leave(pr, ReasonDied, now) {
				a.stop(pr)
			}
		case pr.state == serving:
			a.retire(pr, pr.reason, now)
		case pr.state == retiring:
			a.stop(pr)
		case pr.state == dead:
			a.reap(pr)
		}
	}
}

// onControl carries out Restart or Close.
func (a *arbiter) onControl(c control) {
	now := time.Now()
	if !c.restart {
		a.close(now)
		return
	}
	for _, pr := range a.procs { // the successors retire appends are not seen
		if pr.state == serving {
			a.retire(pr, c.reason, now)
		}
	}
}

// onAlarm applies the timeouts and the backoffs that are due.
func (a *arbiter) onAlarm(now time.Time) {
	for _, pr := range a.procs {
		switch {
		case pr.state == serving:
			a.checkTimeouts(pr, now)
		case pr.state == retiring && !pr.deadline.IsZero() && !now.Before(pr.deadline):
			a.p.log.Warn().Int("pid", pr.w.Pid()).Int("in_flight", pr.w.InFlight()).Msg("graceful-timeout: stopping a worker that is still busy")
			a.stop(pr)
		}
	}
	for i, sl := range a.slots {
		if !sl.due.IsZero() && !now.Before(sl.due) {
			a.spawn(i)
		}
	}
}

func (a *arbiter) checkTimeouts(pr *proc, now time.Time) {
	s := a.p.spec
	switch {
	case s.DeadlockTimeout > 0 && now.Sub(pr.w.LastHeartbeat()) >= s.DeadlockTimeout:
		// The interpreter runs no Python code (C code holds the GIL):
		// nothing graceful can work.
		a.p.log.Error().Int("pid", pr.w.Pid()).Dur("deadlock_timeout", s.DeadlockTimeout).
			Msg("deadlock-timeout: the interpreter is stuck; killing the worker")
		a.leave(pr, ReasonDeadlockTimeout, now)
		pr.state, pr.deadline = stopping, time.Time{}
		pr.w.Kill()
	case s.RestartInterval > 0 && now.Sub(pr.started) >= s.RestartInterval:
		a.retire(pr, ReasonRestartInterval, now)
	case s.InactivityTimeout > 0 && now.Sub(pr.w.LastActivity()) >= s.InactivityTimeout && a.hasServed(pr):
		// Idle, or stuck without any I/O, since its last activity. A
		// process that never served stays: restarting it frees nothing.
		a.retire(pr, ReasonInactivityTimeout, now)
		if pr.state == retiring { // busy: stuck
			a.stop(pr)
		}
	}
}

// arm sets the alarm to the next deadline.
func (a *arbiter) arm(alarm *time.Timer) {
	now := time.Now()
	next := a.nextDeadline(now)
	if next.IsZero() {
		alarm.Stop()
		return
	}
	alarm.Reset(next.Sub(now))
}

// nextDeadline is the earliest time at which onAlarm has something to do;
// zero: none.
func (a *arbiter) nextDeadline(now time.Time) time.Time {
	s := a.p.spec
	var next time.Time
	at := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, pr := range a.procs {
		switch pr.state {
		case serving:
			if s.DeadlockTimeout > 0 {
				at(pr.w.LastHeartbeat().Add(s.DeadlockTimeout))
			}
			if s.RestartInterval > 0 {
				at(pr.started.Add(s.RestartInterval))
			}
			if s.InactivityTimeout > 0 {
				t := pr.w.LastActivity().Add(s.InactivityTimeout)
				if later := now.Add(s.InactivityTimeout / 4); t.Before(later) && !a.hasServed(pr) {
					// Not due before its first request, of which nobody
					// tells the arbiter: look again in a while.
					t = later
				}
				at(t)
			}
		case retiring:
			if !pr.deadline.IsZero() {
				at(pr.deadline)
			}
		}
	}
	for _, sl := range a.slots {
		if !sl.due.IsZero() {
			at(sl.due)
		}
	}
	return next
}

// spawn starts a process in slot i.
func (a *arbiter) spawn(i int) {
	p := a.p
	pr := &proc{slot: i, stop: make(chan struct{}), gap: packWait}
	a.procs = append(a.procs, pr)
	a.slots[i].due = time.Time{}
	p.mu.Lock()
	p.starting++
	p.mu.Unlock()
	go func() {
		w, err := p.start(p.starts, p.spec.Worker)
		p.spawned <- started{pr, w, err}
	}()
}

// retire replaces a serving process: it stops once its requests are done,
// or at graceful-timeout.
func (a *arbiter) retire(pr *proc, reason Reason, now time.Time) {
	a.p.log.Info().Int("pid", pr.w.Pid()).Str("reason", string(reason)).Msg("replacing worker")
	if a.leave(pr, reason, now) {
		a.stop(pr)
	}
}

// leave takes a serving process out of service for reason, counts it as
// replaced and starts its successor at once. It reports whether the
// process is idle.
func (a *arbiter) leave(pr *proc, reason Reason, now time.Time) (idle bool) {
	p := a.p
	p.mu.Lock()
	p.outLocked(pr, reason)
	idle = pr.inflight == 0
	p.mu.Unlock()
	pr.state, pr.reason = retiring, reason
	if g := p.spec.GracefulTimeout; g > 0 {
		pr.deadline = now.Add(g)
	}
	p.restarts.Add(1)
	if ev := p.spec.Events; ev != nil {
		ev.WorkerReplaced(reason)
	}
	if !a.closing {
		a.spawn(pr.slot)
	}
	return idle
}

// stop has watch shut a retiring process down.
func (a *arbiter) stop(pr *proc) {
	pr.state, pr.deadline = stopping, time.Time{}
	close(pr.stop)
}

// close takes every process out of service for good: idle ones stop now,
// busy ones when their requests are done, or after graceful-timeout (else
// shutdown-timeout). Queued requests get ErrClosed, and nothing starts any
// more.
func (a *arbiter) close(now time.Time) {
	if a.closing {
		return
	}
	a.closing = true
	a.p.cancelStarts() // a start that hangs is not waited for
	s := a.p.spec
	grace := now.Add(cmp.Or(s.GracefulTimeout, s.ShutdownTimeout))
	for i := range a.slots {
		a.slots[i].due = time.Time{}
	}
	var idle []*proc
	a.p.mu.Lock()
	a.p.closed = true
	a.p.failWaitersLocked()
	for _, pr := range a.procs {
		switch pr.state {
		case serving:
			a.p.outLocked(pr, reasonClose)
			pr.state, pr.reason = retiring, reasonClose
			fallthrough
		case retiring:
			if pr.deadline.IsZero() || pr.deadline.After(grace) {
				pr.deadline = grace
			}
			if pr.inflight == 0 {
				idle = append(idle, pr)
			}
		}
	}
	a.p.mu.Unlock()
	for _, pr := range idle {
		a.stop(pr)
	}
}

// reap forgets a dead process whose requests have all come back, and logs
// its end with the number of requests that failed with it.
func (a *arbiter) reap(pr *proc) {
	a.procs = slices.DeleteFunc(a.procs, func(x *proc) bool { return x == pr })
	a.p.mu.Lock()
	lost := pr.lost
	a.p.mu.Unlock()
	log := a.p.log
	switch {
	case pr.crashed:
		log.Error().Err(pr.exitErr).Int("pid", pr.w.Pid()).Int("in_flight", lost).Msg("worker process died")
	case lost > 0 || pr.exitErr != nil:
		log.Warn().Err(pr.exitErr).Int("pid", pr.w.Pid()).Int("in_flight", lost).Str("reason", string(pr.reason)).
			Msg("worker did not stop cleanly")
	default:
		log.Debug().Int("pid", pr.w.Pid()).Str("reason", string(pr.reason)).Msg("worker stopped")
	}
}

// hasServed reports whether pr was ever handed a request.
func (a *arbiter) hasServed(pr *proc) bool {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	return pr.served > 0
}

// watch tells the arbiter when pr's process has exited. Once pr.stop is
// closed it first shuts the process down: SHUTDOWN, then SIGKILL after
// shutdown-timeout.
func (p *Pool) watch(pr *proc) {
	var err error
	select {
	case <-pr.w.Done():
		err = pr.w.ExitErr()
	case <-pr.stop:
		err = pr.w.Shutdown(p.spec.ShutdownTimeout)
	}
	p.exited <- exited{pr, err}
}
