package pyworker

import (
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// event is a frame for one request, queued by the reader for Serve.
type event struct {
	typ, flags uint8
	data       []byte
	buf        *[]byte // pooled storage of data, returned after use

	// tResponse: the reader passed a whole response to the Sink.
	status int
	n      int64
	err    error
}

// stream is the Go side of one request. The reader goroutine only appends to
// its queue, so a slow Sink never holds up frames of other requests; the
// worker's send window bounds how much can pile up.
type stream struct {
	id    uint32
	log   zerolog.Logger
	freed func()      // Call.Freed
	whole WholeWriter // Call.Out, when it can take whole responses

	// over: the reader is passing the whole response to the Sink, which
	// ends the request (and cancels its context): not an abort.
	over atomic.Bool
	// aborting: Serve told the worker to stop; the reader sends nothing on.
	aborting atomic.Bool
	// begun: the reader queued HEADERS or DATA, so a RESPONSE frame cannot
	// be a whole response any more (the reader's own).
	begun bool

	mu        sync.Mutex
	queue     []event
	credit    int  // request body bytes the worker can take
	abandoned bool // Serve has returned: drop what arrives

	wake chan struct{} // an event was queued
	// With a body only: the pump's signals.
	creditUp chan struct{} // credit grew
	finished chan struct{} // Serve is returning: the body pump stops
}

func newStream(id uint32, c *Call) *stream {
	ww, _ := c.Out.(WholeWriter)
	s := &stream{id: id, log: c.Log, freed: c.Freed, whole: ww, credit: bodyWindow, wake: make(chan struct{}, 1)}
	if c.Body != nil {
		s.creditUp, s.finished = make(chan struct{}, 1), make(chan struct{})
	}
	return s
}

// push queues ev; it reports false when nobody will take it.
func (s *stream) push(ev event) bool {
	s.mu.Lock()
	if s.abandoned {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	signal(s.wake)
	return true
}

func (s *stream) pop() (event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return event{}, false
	}
	ev := s.queue[0]
	s.queue[0] = event{}
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0]
	}
	return ev, true
}

// endQueued reports whether the next queued event is the request's END.
func (s *stream) endQueued() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0 && s.queue[0].typ == tEnd
}

// abandon stops queueing and hands back what is still queued.
func (s *stream) abandon() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abandoned = true
	q := s.queue
	s.queue = nil
	return q
}

func (s *stream) grant(n int) {
	s.mu.Lock()
	s.credit += n
	s.mu.Unlock()
	signal(s.creditUp)
}

// takeCredit waits for body credit and claims up to max bytes of it; 0 means
// the request is over or the worker gone.
func (s *stream) takeCredit(max int, lost <-chan struct{}) int {
	for {
		s.mu.Lock()
		n := min(s.credit, max)
		s.credit -= n
		s.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-s.creditUp:
		case <-s.finished:
			return 0
		case <-lost:
			return 0
		}
	}
}

// giveBack returns credit claimed but not used.
func (s *stream) giveBack(n int) {
	if n > 0 {
		s.mu.Lock()
		s.credit += n
		s.mu.Unlock()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
