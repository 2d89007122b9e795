package pool

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// buffer is a Sink that keeps the body.
type buffer struct {
	status int
	body   []byte
}

func (b *buffer) WriteHeader(status int, _ []byte) error { b.status = status; return nil }
func (b *buffer) Write(p []byte) error                   { b.body = append(b.body, p...); return nil }

func testSpec(t *testing.T, processes, threads int) Spec {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	return Spec{
		Name:      "test|",
		Worker:    pyworker.Config{Python: py, Threads: threads, Log: zerolog.Nop()},
		Processes: processes,
		Log:       zerolog.Nop(),
	}
}

// appEnviron is the environ of GET path?query on the test app.
func appEnviron(t *testing.T, path, query string) *pyworker.Environ {
	app, err := filepath.Abs("testdata/app.wsgi")
	if err != nil {
		t.Fatal(err)
	}
	env := &pyworker.Environ{}
	env.Add("REQUEST_METHOD", "GET")
	env.Add("SCRIPT_NAME", "")
	env.Add("PATH_INFO", path)
	env.Add("QUERY_STRING", query)
	env.Add("SERVER_NAME", "localhost")
	env.Add("SERVER_PORT", "80")
	env.Add("SERVER_PROTOCOL", "HTTP/1.1")
	env.Add("SCRIPT_FILENAME", app)
	env.Add("wsgi.url_scheme", "http")
	return env
}

// call runs path on p and returns the serving pid as the app reports it.
func call(t *testing.T, p *Pool, ctx context.Context, path, query string) (int, error) {
	env := appEnviron(t, path, query)
	out := &buffer{}
	res, pid, err := p.Serve(ctx, &pyworker.Call{Environ: env, Out: out, Log: zerolog.Nop()})
	if err != nil {
		return 0, err
	}
	got, _ := strconv.Atoi(string(out.body))
	if res.Status != 200 || got != pid {
		t.Errorf("status %d, app pid %d, pool pid %d", res.Status, got, pid)
	}
	return pid, nil
}

func TestSpreadsOverProcesses(t *testing.T) {
	p := New(testSpec(t, 2, 2), nil)
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[int]bool{}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := call(t, p, context.Background(), "/slow", "0.5")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			pids[pid] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(pids) != 2 {
		t.Fatalf("4 concurrent requests on 2x2 served by %d processes", len(pids))
	}
}

func TestQueueTimeoutAndOverload(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.QueueTimeout = time.Second
	s.Backlog = 1
	p := New(s, nil)
	defer p.Close()
	call(t, p, context.Background(), "/", "") // started
	busy := make(chan struct{})
	go func() { call(t, p, context.Background(), "/slow", "3"); close(busy) }()
	waitState(t, p, func() bool { return len(p.serving) == 1 && p.serving[0].inflight == 1 })
	queued := make(chan error, 1)
	start := time.Now()
	go func() { _, err := call(t, p, context.Background(), "/", ""); queued <- err }()
	waitState(t, p, func() bool { return p.waiters.Len() == 1 })
	// The one queue place is taken: the next request is refused at once.
	if _, err := call(t, p, context.Background(), "/", ""); !errors.Is(err, ErrOverloaded) {
		t.Errorf("third request: %v, want ErrOverloaded", err)
	}
	if err := <-queued; !errors.Is(err, ErrQueueTimeout) || time.Since(start) < time.Second {
		t.Errorf("queued request: %v after %v, want ErrQueueTimeout after 1 s", err, time.Since(start))
	}
	<-busy
	if _, err := call(t, p, context.Background(), "/", ""); err != nil {
		t.Errorf("after the slow request: %v", err)
	}
}

// waitState waits until cond, evaluated under the pool's lock, holds.
func waitState(t *testing.T, p *Pool, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the pool never reached the expected state")
}

func TestQueuedRequestGetsFreedThread(t *testing.T) {
	p := New(testSpec(t, 1, 1), nil)
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := call(t, p, context.Background(), "/slow", "0.1"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMaximumRequestsRecyclesWithoutFailures(t *testing.T) {
	s := testSpec(t, 2, 2)
	s.MaximumRequests = 5
	p := New(s, nil)
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[int]bool{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				pid, err := call(t, p, context.Background(), "/slow", "0.02")
				if err != nil {
					t.Errorf("request failed during recycling: %v", err)
					return
				}
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(pids) < 6 {
		t.Fatalf("40 requests with maximum-requests=5 on 2 processes used %d processes, want >= 6", len(pids))
	}
	if p.Restarts() < 4 {
		t.Fatalf("restarts = %d", p.Restarts())
	}
}

func TestKilledWorkerIsRespawned(t *testing.T) {
	p := New(testSpec(t, 1, 2), nil)
	defer p.Close()
	pid, err := call(t, p, context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := p.Pids()
		if len(pids) == 1 && pids[0] != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new worker after kill -9 of %d: %v", pid, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if npid, err := call(t, p, context.Background(), "/", ""); err != nil || npid == pid {
		t.Fatalf("after respawn: pid %d err %v", npid, err)
	}
}

func TestRestartFinishesInFlight(t *testing.T) {
	p := New(testSpec(t, 1, 2), nil)
	defer p.Close()
	old, err := call(t, p, context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	inflight := make(chan error, 1)
	go func() { _, err := call(t, p, context.Background(), "/slow", "0.8"); inflight <- err }()
	time.Sleep(200 * time.Millisecond)
	p.Restart(ReasonSignal)
	pid, err := call(t, p, context.Background(), "/", "")
	if err != nil || pid == old {
		t.Fatalf("after Restart: pid %d (old %d), err %v", pid, old, err)
	}
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight request across Restart: %v", err)
	}
}

func TestUnstartablePoolFailsFast(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.Worker.Python = filepath.Join(t.TempDir(), "no-python")
	p := New(s, nil)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := call(t, p, ctx, "/", "")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	p := New(testSpec(t, 1, 1), nil)
	call(t, p, context.Background(), "/", "")
	done := make(chan error, 1)
	go func() { _, err := call(t, p, context.Background(), "/slow", "0.5"); done <- err }()
	time.Sleep(150 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("in-flight request during Close: %v", err)
		}
	default:
		t.Fatal("Close returned before the in-flight request ended")
	}
	if _, err := call(t, p, context.Background(), "/", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// countWriter counts log lines that contain a message.
type countWriter struct {
	mu  sync.Mutex
	msg string
	n   int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(string(p), c.msg) {
		c.n++
	}
	return len(p), nil
}

func (c *countWriter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// A worker that can never start is retried with a growing delay, each
// failure logged: the crash loop does not spin.
func TestStartFailuresBackOff(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.Worker.Python = "/bin/false" // exits at once, never ready
	w := &countWriter{msg: "worker failed to start"}
	s.Log = zerolog.New(w)
	p := New(s, nil)
	time.Sleep(3 * time.Second)
	p.Close()
	// Delays 0.5 s, 1 s, 2 s...: at most 4 attempts in 3 s (a spin would make hundreds).
	if n := w.count(); n < 2 || n > 4 {
		t.Fatalf("%d failed starts logged in 3 s, want 2 to 4", n)
	}
}

// blockingSink holds the response until released, like a slow web server.
type blockingSink struct {
	buffer
	got     chan struct{}
	release chan struct{}
}

func (b *blockingSink) Write(p []byte) error {
	close(b.got)
	<-b.release
	return b.buffer.Write(p)
}

// The worker's thread is free once the worker has ended a request: a queued
// request runs while the first response is still being passed on.
func TestThreadFreedAtWorkerEnd(t *testing.T) {
	p := New(testSpec(t, 1, 1), nil)
	defer p.Close()
	app, _ := filepath.Abs("testdata/app.wsgi")
	env := &pyworker.Environ{}
	env.Add("REQUEST_METHOD", "GET")
	env.Add("SCRIPT_FILENAME", app)
	slow := &blockingSink{got: make(chan struct{}), release: make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		_, _, err := p.Serve(context.Background(), &pyworker.Call{Environ: env, Out: slow, Log: zerolog.Nop()})
		first <- err
	}()
	<-slow.got
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call(t, p, ctx, "/", ""); err != nil {
		t.Fatalf("second request while the first response is held: %v", err)
	}
	close(slow.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.serving[0].inflight; n != 0 || p.serving[0].served != 2 {
		t.Fatalf("inflight %d served %d, want 0 and 2", n, p.serving[0].served)
	}
}
