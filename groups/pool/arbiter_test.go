package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// A worker that cannot start is retried after 0.5 s, then 1 s, ...; once
// one is ready the backoff is forgotten: a ready worker that dies is
// respawned at once, and a later failure waits 0.5 s again.
func TestBackoffOnlyBeforeReady(t *testing.T) {
	f := &fleet{}
	fails := map[int]bool{0: true, 1: true, 4: true}
	f.fail = func(n int) error {
		if fails[n] {
			return fmt.Errorf("start %d: %w", n, errExited)
		}
		return nil
	}
	p, log, ev := fakePool(t, f, 1, 1, nil)
	// Requests while nothing can start fail at once.
	eventually(t, "the first failure", func() bool { return len(f.startTimes()) >= 1 && len(log.lines("worker failed to start")) == 1 })
	if _, err := serve(p, context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("request while failing: %v, want ErrUnavailable", err)
	}
	eventually(t, "a ready worker", func() bool { return f.started() == 1 })
	st := f.startTimes()
	if d := st[1].Sub(st[0]); d < 450*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("second start %v after the first, want 0.5 s", d)
	}
	if d := st[2].Sub(st[1]); d < 950*time.Millisecond || d > 1300*time.Millisecond {
		t.Errorf("third start %v after the second, want 1 s", d)
	}
	if _, err := serve(p, context.Background()); err != nil {
		t.Fatal(err)
	}

	// Ready, then dead: respawned at once (start 3).
	killed := time.Now()
	f.worker(0).Kill()
	eventually(t, "the respawn", func() bool { return f.started() == 2 })
	if d := f.startTimes()[3].Sub(killed); d > 200*time.Millisecond {
		t.Errorf("a ready worker that died was respawned after %v, want at once", d)
	}
	// Start 4 fails: the backoff starts from 0.5 s again.
	f.worker(1).Kill()
	eventually(t, "the retry", func() bool { return len(f.startTimes()) == 6 })
	st = f.startTimes()
	if d := st[5].Sub(st[4]); d < 450*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("retry %v after a failed start that followed a ready worker, want 0.5 s", d)
	}
	eventually(t, "a ready worker", func() bool { return inService(p) == 1 })
	if n := ev.count(ReasonDied); n != 2 {
		t.Errorf("died counted %d times, want 2 (failed starts are not replacements)", n)
	}
}

// The backoff is per slot: while one slot cannot start, a ready worker of
// another that dies is respawned at once, and requests keep being served.
func TestBackoffIsPerSlot(t *testing.T) {
	f := &fleet{}
	var mu sync.Mutex
	failed := 0
	f.fail = func(n int) error {
		mu.Lock()
		defer mu.Unlock()
		// One of the two first starts fails, and every retry of it.
		if n == 1 || failed > 0 && n != 2 {
			failed++
			return errExited
		}
		return nil
	}
	p, log, _ := fakePool(t, f, 2, 1, nil)
	eventually(t, "one ready, one failing", func() bool { return f.started() == 1 && len(log.lines("worker failed to start")) >= 1 })
	killed := time.Now()
	f.worker(0).Kill()
	eventually(t, "the respawn", func() bool { return f.started() == 2 })
	if d := time.Since(killed); d > 300*time.Millisecond {
		t.Errorf("respawned after %v while the other slot backs off, want at once", d)
	}
	if _, err := serve(p, context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A worker killed while busy: exactly the requests in flight on it fail
// (ErrWorkerLost, a 502), its death is logged with that count, a request
// queued meanwhile is served by its successor, started at once.
func TestCrashWhileBusyLosesExactlyItsRequests(t *testing.T) {
	f := &fleet{hold: make(chan struct{})}
	p, log, ev := fakePool(t, f, 1, 4, func(s *Spec) { s.Ahead = 1 })
	eventually(t, "ready", func() bool { return inService(p) == 1 })
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() { _, err := serve(p, context.Background()); errs <- err }()
	}
	// 4 threads and 1 ahead on the worker, 1 in the queue.
	eventually(t, "5 running, 1 queued", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return f.worker(0).InFlight() == 5 && p.waiters.Len() == 1
	})
	f.worker(0).Kill()
	lost := 0
	for i := 0; i < 5; i++ {
		if err := <-errs; errors.Is(err, pyworker.ErrWorkerLost) {
			lost++
		} else {
			t.Errorf("request on the killed worker: %v", err)
		}
	}
	eventually(t, "the successor", func() bool { return f.started() == 2 })
	close(f.hold)
	if err := <-errs; err != nil {
		t.Errorf("queued request: %v", err)
	}
	eventually(t, "the death logged", func() bool { return len(log.lines("worker process died")) == 1 })
	line := log.lines("worker process died")[0]
	if line["in_flight"] != float64(lost) || line["pid"] != float64(1000) || line["error"] != "signal: killed" {
		t.Errorf("death logged as %v, want in_flight %d", line, lost)
	}
	if ev.count(ReasonDied) != 1 || len(log.lines("replacing worker")) != 0 {
		t.Errorf("died counted %d times, replacements logged %d", ev.count(ReasonDied), len(log.lines("replacing worker")))
	}
}

// A request that reaches a worker already dead, before its exit is seen,
// goes to another: the worker is replaced at once, and its death is a
// crash, not a planned retirement.
func TestTurnedAwayByADeadWorkerIsACrash(t *testing.T) {
	f := &fleet{}
	p, log, ev := fakePool(t, f, 2, 1, nil)
	eventually(t, "ready", func() bool { return inService(p) == 2 })
	f.worker(0).lose()
	f.worker(1).lose()
	// Both turn it away; a successor serves it.
	if pid, err := serve(p, context.Background()); err != nil || pid < 1002 {
		t.Fatalf("request turned away by dead workers: pid %d, %v", pid, err)
	}
	eventually(t, "both deaths logged", func() bool { return len(log.lines("worker process died")) == 2 })
	if ev.count(ReasonDied) != 2 || ev.count(ReasonWorkerRetired) != 0 || len(log.lines("replacing worker")) != 0 {
		t.Errorf("replacements counted %v, want 2 died", ev.counts())
	}
	for _, l := range log.lines("worker process died") {
		if l["in_flight"] != float64(0) {
			t.Errorf("death logged with in_flight %v, want 0: the request went elsewhere", l["in_flight"])
		}
	}
}

// A worker that retires itself for a changed script turns the request
// away; it goes to a fresh worker, and the exit is planned.
func TestWorkerRetiredItself(t *testing.T) {
	f := &fleet{}
	p, log, ev := fakePool(t, f, 1, 1, nil)
	eventually(t, "ready", func() bool { return inService(p) == 1 })
	w := f.worker(0)
	w.mu.Lock()
	w.reload = true
	w.mu.Unlock()
	pid, err := serve(p, context.Background())
	if err != nil || pid == w.pid {
		t.Fatalf("request that found the script changed: pid %d, %v", pid, err)
	}
	eventually(t, "the exit reaped", func() bool { return len(log.lines("worker stopped")) == 1 })
	if ev.count(ReasonWorkerRetired) != 1 || ev.count(ReasonDied) != 0 || len(log.lines("worker process died")) != 0 {
		t.Errorf("replacements %v, want one worker-retired", ev.counts())
	}
}

// maximum-requests: each worker serves at most that many, its successor
// starts first, none fails, and the old ones are stopped, not crashed.
func TestMaximumRequestsWithFakes(t *testing.T) {
	f := &fleet{}
	p, log, ev := fakePool(t, f, 2, 2, func(s *Spec) { s.MaximumRequests = 3 })
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := serve(p, context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < f.started(); i++ {
		if n := f.worker(i).requests(); n > 3 {
			t.Errorf("worker %d served %d requests, maximum-requests is 3", i, n)
		}
	}
	eventually(t, "the replaced workers stopped", func() bool { return len(log.lines("worker stopped")) >= 12 })
	if n := ev.count(ReasonMaximumRequests); n < 12 || p.Restarts() != n {
		t.Errorf("%d replacements for maximum-requests (Restarts %d), want at least 12", n, p.Restarts())
	}
	if len(log.lines("worker process died")) != 0 || ev.count(ReasonDied) != 0 {
		t.Error("a replaced worker was counted as dead")
	}
}

// restart-interval replaces a worker after it has run that long.
func TestRestartInterval(t *testing.T) {
	f := &fleet{}
	p, log, ev := fakePool(t, f, 1, 1, func(s *Spec) { s.RestartInterval = 300 * time.Millisecond })
	eventually(t, "ready", func() bool { return inService(p) == 1 })
	ready := time.Now()
	eventually(t, "a successor", func() bool { return f.started() == 2 })
	if d := time.Since(ready); d < 250*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("replaced after %v, want 300 ms", d)
	}
	eventually(t, "the old one stopped", func() bool { return f.worker(0).shutdowns() == 1 && len(log.lines("worker stopped")) >= 1 })
	if ev.count(ReasonRestartInterval) < 1 {
		t.Errorf("replacements %v", ev.counts())
	}
}

// A replaced worker still busy after graceful-timeout is told to stop;
// killed after shutdown-timeout, the requests lost with it are logged, and
// it is not a crash.
func TestGracefulTimeout(t *testing.T) {
	f := &fleet{hold: make(chan struct{})}
	p, log, ev := fakePool(t, f, 1, 1, func(s *Spec) {
		s.GracefulTimeout = 200 * time.Millisecond
		s.ShutdownTimeout = 200 * time.Millisecond
	})
	eventually(t, "ready", func() bool { return inService(p) == 1 })
	done := make(chan error, 1)
	go func() { _, err := serve(p, context.Background()); done <- err }()
	eventually(t, "busy", func() bool { return f.worker(0).InFlight() == 1 })
	restarted := time.Now()
	p.Restart(ReasonSignal)
	eventually(t, "a successor", func() bool { return inService(p) == 1 })
	if f.worker(0).shutdowns() != 0 {
		t.Fatal("a busy worker was stopped at once")
	}
	if err := <-done; !errors.Is(err, pyworker.ErrWorkerLost) {
		t.Fatalf("request on the worker killed at shutdown-timeout: %v", err)
	}
	if d := time.Since(restarted); d < 350*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("killed %v after Restart, want graceful-timeout + shutdown-timeout = 400 ms", d)
	}
	eventually(t, "its end logged", func() bool { return len(log.lines("worker did not stop cleanly")) == 1 })
	if l := log.lines("worker did not stop cleanly")[0]; l["in_flight"] != float64(1) || l["reason"] != "restart-signal" {
		t.Errorf("logged %v", l)
	}
	if len(log.lines("worker process died")) != 0 || ev.count(ReasonDied) != 0 || ev.count(ReasonSignal) != 1 {
		t.Errorf("replacements %v", ev.counts())
	}
}

// deadlock-timeout kills a worker whose heartbeat stopped: its requests
// are lost and counted, a successor starts, and it is not a crash.
func TestDeadlockTimeout(t *testing.T) {
	f := &fleet{hold: make(chan struct{})}
	p, log, ev := fakePool(t, f, 1, 2, func(s *Spec) { s.DeadlockTimeout = 200 * time.Millisecond })
	eventually(t, "ready", func() bool { return inService(p) == 1 })
	// Live workers beat; the first one stops once stuck.
	var stuck atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for i := range f.started() {
				if i > 0 || !stuck.Load() {
					f.worker(i).beat.Store(time.Now().UnixNano())
				}
			}
		}
	}()
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { _, err := serve(p, context.Background()); errs <- err }()
	}
	eventually(t, "busy", func() bool { return f.worker(0).InFlight() == 2 })
	time.Sleep(400 * time.Millisecond)
	if f.started() != 1 {
		t.Fatal("a worker that beats was killed")
	}
	stuck.Store(true)
	for i := 0; i < 2; i++ {
		if err := <-errs; !errors.Is(err, pyworker.ErrWorkerLost) {
			t.Errorf("request in the stuck worker: %v", err)
		}
	}
	eventually(t, "a successor", func() bool { return inService(p) == 1 && f.started() == 2 })
	eventually(t, "its end logged", func() bool { return len(log.lines("worker did not stop cleanly")) == 1 })
	if l := log.lines("worker did not stop cleanly")[0]; l["in_flight"] != float64(2) || l["reason"] != "deadlock-timeout" {
		t.Errorf("logged %v", l)
	}
	if ev.count(ReasonDeadlockTimeout) != 1 || ev.count(ReasonDied) != 0 {
		t.Errorf("replacements %v", ev.counts())
	}
}

// Close while a worker starts waits for the start, stops the worker it
// brought, and returns once it has exited; a queued request gets ErrClosed.
func TestCloseDuringStartup(t *testing.T) {
	f := &fleet{gate: make(chan struct{})}
	p, _, ev := fakePool(t, f, 1, 1, nil)
	queued := make(chan error, 1)
	go func() { _, err := serve(p, context.Background()); queued <- err }()
	eventually(t, "queued", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.waiters.Len() == 1
	})
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Errorf("queued request at Close: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a worker was starting")
	case <-time.After(100 * time.Millisecond):
	}
	close(f.gate)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the start")
	}
	select {
	case <-f.worker(0).Done():
	default:
		t.Fatal("the worker started during Close still runs")
	}
	if _, err := serve(p, context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.started != 1 || ev.exited != 1 {
		t.Errorf("%d started, %d exited, want 1 and 1", ev.started, ev.exited)
	}
}

// Close gives up a start that hangs (a script that never finishes its
// import) instead of waiting for the start timeout.
func TestCloseGivesUpAHangingStart(t *testing.T) {
	f := &fleet{gate: make(chan struct{}), cancel: true}
	p, log, ev := fakePool(t, f, 1, 1, nil)
	eventually(t, "starting", func() bool { return len(f.startTimes()) == 1 })
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		close(f.gate) // let the cleanup's Close end
		t.Fatal("Close waited for a start that hangs")
	}
	if f.started() != 0 || len(log.lines("worker failed to start")) != 0 {
		t.Errorf("%d started; log:\n%s", f.started(), log.String())
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.started != 0 {
		t.Errorf("%d started", ev.started)
	}
}

// Close stops an idle worker at once and a busy one when its request is
// done; it returns when both have exited.
func TestCloseStopsIdleNowBusyWhenDone(t *testing.T) {
	f := &fleet{hold: make(chan struct{})}
	p, _, _ := fakePool(t, f, 2, 1, nil)
	eventually(t, "ready", func() bool { return inService(p) == 2 })
	done := make(chan error, 1)
	go func() { _, err := serve(p, context.Background()); done <- err }()
	eventually(t, "busy", func() bool { return f.worker(0).InFlight()+f.worker(1).InFlight() == 1 })
	busy, idle := f.worker(0), f.worker(1)
	if idle.InFlight() == 1 {
		busy, idle = idle, busy
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	eventually(t, "the idle one stopped", func() bool { return idle.shutdowns() == 1 })
	select {
	case <-closed:
		t.Fatal("Close returned while a request ran")
	case <-time.After(100 * time.Millisecond):
	}
	close(f.hold)
	if err := <-done; err != nil {
		t.Errorf("request in flight at Close: %v", err)
	}
	<-closed
	if busy.shutdowns() != 1 {
		t.Errorf("the busy worker was told to stop %d times", busy.shutdowns())
	}
}

// Workers that keep dying under load never leave queued requests without a
// worker starting: each waits only for a respawn.
func TestRepeatedCrashesKeepServing(t *testing.T) {
	f := &fleet{}
	p, _, _ := fakePool(t, f, 2, 2, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				_, err := serve(p, context.Background())
				if err != nil && !errors.Is(err, pyworker.ErrWorkerLost) {
					t.Error(err)
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 10; i++ {
		time.Sleep(30 * time.Millisecond)
		f.worker(f.started() - 1).Kill()
	}
	close(stop)
	wg.Wait()
	if slowest > time.Second {
		t.Errorf("a request waited %v while workers died", slowest)
	}
}
