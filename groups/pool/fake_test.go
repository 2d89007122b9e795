package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// The arbiter's tests run fake workers: no python3, and every death,
// failed start and stuck request on cue.

// fleet starts fake workers and keeps them for the test.
type fleet struct {
	mu      sync.Mutex
	starts  []time.Time   // when each Start was called
	workers []*fakeWorker // the ones that started
	// fail decides whether start n (from 0) fails; nil: none does.
	fail func(n int) error
	// gate, when set, holds each Start until it receives; with cancel,
	// or until the start's context is done (as pyworker's start does).
	gate   chan struct{}
	cancel bool
	// hold, when set, holds each request until it receives (or is closed),
	// the worker dies or the client leaves.
	hold chan struct{}
}

var errExited = errors.New("exit status 1")

func (f *fleet) start(ctx context.Context, _ pyworker.Config) (Worker, error) {
	f.mu.Lock()
	n := len(f.starts)
	f.starts = append(f.starts, time.Now())
	fail, gate, hold, cancel := f.fail, f.gate, f.hold, f.cancel
	f.mu.Unlock()
	if gate != nil && cancel {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	} else if gate != nil {
		<-gate
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return nil, err
		}
	}
	w := &fakeWorker{pid: 1000 + n, hold: hold, lost: make(chan struct{}), done: make(chan struct{})}
	now := time.Now().UnixNano()
	w.activity.Store(now)
	w.beat.Store(now)
	f.mu.Lock()
	f.workers = append(f.workers, w)
	f.mu.Unlock()
	return w, nil
}

func (f *fleet) worker(i int) *fakeWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers[i]
}

func (f *fleet) started() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.workers)
}

func (f *fleet) startTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.starts...)
}

// fakeWorker behaves as a pyworker.Worker seen from the pool.
type fakeWorker struct {
	pid  int
	hold chan struct{}

	mu       sync.Mutex
	inflight int
	served   int
	closing  bool // takes no new request
	stopping bool // exits once idle
	retired  bool
	reload   bool // the next request finds its script changed
	shutdown int  // Shutdown calls
	exitErr  error

	lost     chan struct{} // closed when it can serve no more
	lostOnce sync.Once
	done     chan struct{}
	exitOnce sync.Once
	activity atomic.Int64
	beat     atomic.Int64
}

func (w *fakeWorker) Serve(ctx context.Context, c *pyworker.Call) (pyworker.Result, error) {
	w.mu.Lock()
	select {
	case <-w.lost:
		w.mu.Unlock()
		return pyworker.Result{}, fmt.Errorf("%w: pid %d, before the request was sent (%w)", pyworker.ErrWorkerLost, w.pid, pyworker.ErrClosed)
	default:
	}
	if w.closing {
		w.mu.Unlock()
		return pyworker.Result{}, pyworker.ErrClosed
	}
	if w.reload {
		// As a worker with reload-mechanism process: it retires itself and
		// exits once idle.
		w.closing, w.stopping, w.retired = true, true, true
		idle := w.inflight == 0
		w.mu.Unlock()
		if idle {
			w.exit(nil)
		}
		return pyworker.Result{}, pyworker.ErrReloadRequired
	}
	w.inflight++
	w.served++
	w.mu.Unlock()
	w.activity.Store(time.Now().UnixNano())
	var err error
	if w.hold != nil {
		select {
		case <-w.hold:
		case <-w.lost:
			err = fmt.Errorf("%w: pid %d", pyworker.ErrWorkerLost, w.pid)
		case <-ctx.Done():
			err = pyworker.ErrAborted
		}
	}
	w.mu.Lock()
	w.inflight--
	exit := w.stopping && w.inflight == 0
	w.mu.Unlock()
	if err != nil {
		return pyworker.Result{}, err
	}
	if c.Freed != nil {
		c.Freed() // the END came
	}
	if exit {
		w.exit(nil)
	}
	return pyworker.Result{Status: 200, HeadersSent: true}, nil
}

func (w *fakeWorker) Pid() int { return w.pid }

func (w *fakeWorker) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight
}

func (w *fakeWorker) Done() <-chan struct{} { return w.done }

func (w *fakeWorker) ExitErr() error {
	select {
	case <-w.done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.exitErr
	default:
		return nil
	}
}

func (w *fakeWorker) Retired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retired
}

func (w *fakeWorker) Kill() { w.exit(errors.New("signal: killed")) }

func (w *fakeWorker) Shutdown(timeout time.Duration) error {
	w.mu.Lock()
	w.shutdown++
	w.closing, w.stopping = true, true
	idle := w.inflight == 0
	w.mu.Unlock()
	if idle {
		w.exit(nil)
	}
	select {
	case <-w.done:
		return w.ExitErr()
	case <-time.After(timeout):
		w.Kill()
		return fmt.Errorf("pid %d did not stop within %v: killed", w.pid, timeout)
	}
}

func (w *fakeWorker) LastActivity() time.Time  { return time.Unix(0, w.activity.Load()) }
func (w *fakeWorker) LastHeartbeat() time.Time { return time.Unix(0, w.beat.Load()) }

// lose makes it unable to serve, as a process that was killed is before
// its exit has been reaped.
func (w *fakeWorker) lose() { w.lostOnce.Do(func() { close(w.lost) }) }

func (w *fakeWorker) exit(err error) {
	w.exitOnce.Do(func() {
		w.lose()
		w.mu.Lock()
		w.exitErr = err
		w.mu.Unlock()
		close(w.done)
	})
}

func (w *fakeWorker) shutdowns() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.shutdown
}

func (w *fakeWorker) requests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.served
}

// events counts what the pool reports.
type events struct {
	mu       sync.Mutex
	started  int
	exited   int
	replaced map[Reason]int
}

func (e *events) WorkerStarted() { e.mu.Lock(); e.started++; e.mu.Unlock() }
func (e *events) WorkerExited()  { e.mu.Lock(); e.exited++; e.mu.Unlock() }
func (e *events) WorkerReplaced(r Reason) {
	e.mu.Lock()
	if e.replaced == nil {
		e.replaced = map[Reason]int{}
	}
	e.replaced[r]++
	e.mu.Unlock()
}
func (e *events) QueueWait(time.Duration) {}

func (e *events) counts() map[Reason]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.replaced)
}

func (e *events) count(r Reason) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.replaced[r]
}

// logBuffer keeps a pool's JSON log lines.
type logBuffer struct{ testlog.Buffer }

// lines are the decoded lines whose message is msg.
func (l *logBuffer) lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// fakePool runs a pool of processes x threads on f, logging to the
// returned buffer; the test's changes to the spec come in edit.
func fakePool(t *testing.T, f *fleet, processes, threads int, edit func(*Spec)) (*Pool, *logBuffer, *events) {
	t.Helper()
	log, ev := &logBuffer{}, &events{}
	s := Spec{
		Name:      "fake|",
		Worker:    pyworker.Config{Threads: threads},
		Processes: processes,
		Log:       zerolog.New(log).Level(zerolog.DebugLevel),
		Events:    ev,
	}
	if edit != nil {
		edit(&s)
	}
	p := New(s, f.start)
	t.Cleanup(func() {
		if f.hold != nil {
			select {
			case <-f.hold:
			default:
				close(f.hold)
			}
		}
		p.Close()
		if t.Failed() {
			t.Logf("pool log:\n%s", log)
		}
	})
	return p, log, ev
}

// serve runs one request and reports its error and pid.
func serve(p *Pool, ctx context.Context) (int, error) {
	_, pid, err := p.Serve(ctx, &pyworker.Call{Out: &buffer{}})
	return pid, err
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// inService is how many processes take requests.
func inService(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.serving)
}
