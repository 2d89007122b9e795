package bridge

import "sync"

// runners keeps the goroutines that ran handlers, for the next requests.
// A new goroutine's stack starts at 2 KiB and a handler's calls (routing,
// the script's stat, the pool, the worker) grow it to 16 KiB, copying it
// three times on the way: that cost more than everything else about
// starting the goroutine. The most recently idle runner goes first, so
// its stack and caches are warm; at most maxIdleRunners wait, the rest end.
type runners struct {
	mu     sync.Mutex
	idle   []chan *request
	closed bool
}

const maxIdleRunners = 64

// run runs r's handler in an idle runner, or a new one.
func (rs *runners) run(r *request) {
	rs.mu.Lock()
	if n := len(rs.idle); n > 0 {
		ch := rs.idle[n-1]
		rs.idle = rs.idle[:n-1]
		rs.mu.Unlock()
		ch <- r
		return
	}
	rs.mu.Unlock()
	go rs.loop(r)
}

func (rs *runners) loop(r *request) {
	ch := make(chan *request, 1)
	for r != nil {
		r.c.run(r)
		r.c.requestDone(r)
		rs.mu.Lock()
		if rs.closed || len(rs.idle) >= maxIdleRunners {
			rs.mu.Unlock()
			return
		}
		rs.idle = append(rs.idle, ch)
		rs.mu.Unlock()
		r = <-ch
	}
}

// close ends the idle runners, and the others as they finish.
func (rs *runners) close() {
	rs.mu.Lock()
	rs.closed = true
	idle := rs.idle
	rs.idle = nil
	rs.mu.Unlock()
	for _, ch := range idle {
		ch <- nil
	}
}
