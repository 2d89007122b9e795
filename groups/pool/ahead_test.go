package pool

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// A busy one-thread process takes the queued requests into its pipe (no
// request waits in the pool), and serves each exactly once.
func TestAheadRequestsGoToTheBusyWorker(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.Ahead = 3
	p := New(s, nil)
	defer p.Close()
	first, err := call(t, p, context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	pids := make(chan int, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := call(t, p, context.Background(), "/slow", "1")
			if err != nil {
				t.Error(err)
			}
			pids <- pid
		}()
	}
	// One running, three ahead in the pipe, one waiting in the pool.
	waitState(t, p, func() bool { return len(p.serving) == 1 && p.serving[0].inflight == 4 && p.waiters.Len() == 1 })
	wg.Wait()
	close(pids)
	for pid := range pids {
		if pid != first {
			t.Errorf("served by %d, want %d", pid, first)
		}
	}
}

// Requests waiting in the pipe of a worker that is killed all end: with
// ErrWorkerLost (a 502), none lost, none run twice.
func TestAheadRequestsOfAKilledWorkerFail(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.Ahead = 3
	p := New(s, nil)
	defer p.Close()
	pid, err := call(t, p, context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, _, err := p.Serve(context.Background(), slowCall(t))
			errs <- err
		}()
	}
	waitState(t, p, func() bool { return len(p.serving) == 1 && p.serving[0].inflight == 4 })
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 4; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, pyworker.ErrWorkerLost) {
				t.Errorf("request %d: %v, want ErrWorkerLost", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request on the killed worker never ended")
		}
	}
	if _, err := call(t, p, context.Background(), "/", ""); err != nil {
		t.Fatalf("after the kill: %v", err)
	}
}

// maximum-requests counts requests as they are handed out, so that none
// is sent ahead to a process that must not serve it.
func TestAheadHonoursMaximumRequests(t *testing.T) {
	s := testSpec(t, 1, 1)
	s.Ahead = 8
	s.MaximumRequests = 2
	p := New(s, nil)
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := map[int]int{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := call(t, p, context.Background(), "/slow", "0.05")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served[pid]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for pid, n := range served {
		if n > 2 {
			t.Errorf("pid %d served %d requests, maximum-requests is 2", pid, n)
		}
	}
}

// slowCall is a call of /slow?2 whose answer nobody checks.
func slowCall(t *testing.T) *pyworker.Call {
	return &pyworker.Call{Environ: appEnviron(t, "/slow", "2"), Out: &buffer{}}
}
