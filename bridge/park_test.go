//go:build linux

package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parkedConns reports how many connections of s are parked.
func parkedConns(s *Server) int {
	s.poll.mu.Lock()
	defer s.poll.mu.Unlock()
	return len(s.poll.byID)
}

// waitParked waits until n connections are parked.
func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	if !eventually(func() bool { return parkedConns(s) == n }) {
		t.Fatalf("%d connections parked, want %d", parkedConns(s), n)
	}
}

// A connection that sends nothing is parked at once; one that went idle
// after a request is parked too (after its handler ended), and a parked
// connection is resumed by the next request.
func TestParkedConnectionResumes(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if r.Params[0].Value == "/slow" {
			<-release
		}
		io.WriteString(w, r.Params[0].Value)
		return EndStatus{}
	}))
	path, errc := serveUnix(t, s)
	c := dial(t, path)
	waitParked(t, s, 1) // accepted with nothing to read
	for i := 0; i < 3; i++ {
		id := uint16(i + 1)
		c.Write(requestBytes(id, true, []Param{{"SCRIPT_NAME", "/fast" + strconv.Itoa(i)}}, nil))
		if r := readResponse(t, c, id); string(r.stdout) != "/fast"+strconv.Itoa(i) {
			t.Fatalf("request %d: %q", i, r.stdout)
		}
		waitParked(t, s, 1)
	}
	// The reader waits while the handler runs; when it returns, the
	// connection parks.
	c.Write(requestBytes(9, true, []Param{{"SCRIPT_NAME", "/slow"}}, nil))
	if !eventually(func() bool { return s.Active() == 1 && parkedConns(s) == 0 }) {
		t.Fatal("request not started")
	}
	close(release)
	if r := readResponse(t, c, 9); string(r.stdout) != "/slow" {
		t.Fatalf("slow: %q", r.stdout)
	}
	waitParked(t, s, 1)
	// A management record wakes it as well.
	c.Write(rec(typeGetValues, 0, encodePairs(Param{"FCGI_MPXS_CONNS", ""}), 0))
	if rc, err := readRec(t, c); err != nil || rc.Type != typeGetValuesResult {
		t.Fatalf("GET_VALUES: %+v %v", rc.header, err)
	}
	waitParked(t, s, 1)
	// The web server hangs up: the parked connection goes.
	c.Close()
	if !eventually(func() bool { return s.openConns() == 0 && parkedConns(s) == 0 }) {
		t.Fatalf("%d connections open after hang-up", s.openConns())
	}
	s.Close()
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// A connection with part of a record read is not parked: the rest of the
// request, sent later, is served.
func TestPartialRecordNotParked(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	path, _ := serveUnix(t, s)
	c := dial(t, path)
	waitParked(t, s, 1)
	req := requestBytes(1, true, []Param{{"A", "b"}}, []byte("body"))
	c.Write(req[:13]) // most of BEGIN_REQUEST
	if !eventually(func() bool { return parkedConns(s) == 0 }) {
		t.Fatal("not resumed")
	}
	// The reader now waits for the rest of the record (its deadline is
	// the read timeout); whether or not this runs before it gets there,
	// the rest must be read in order.
	c.Write(req[13:])
	if r := readResponse(t, c, 1); string(r.stdout) != "Content-Type: text/plain\r\n\r\nA=b\nbody" {
		t.Fatalf("stdout %q", r.stdout)
	}
	waitParked(t, s, 1)
	s.Close()
}

// The idle timeout closes a parked connection.
func TestParkedConnectionIdleTimeout(t *testing.T) {
	noLeaks(t)
	s, logs := testServer(t, echoHandler())
	s.IdleTimeout = 300 * time.Millisecond
	path, _ := serveUnix(t, s)
	c := dial(t, path)
	c.Write(requestBytes(1, true, nil, nil))
	readResponse(t, c, 1)
	waitParked(t, s, 1)
	start := time.Now()
	expectClosed(t, c, 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v, idle timeout 300ms", d)
	}
	if !eventually(func() bool { return s.openConns() == 0 && parkedConns(s) == 0 }) {
		t.Fatalf("%d connections open", s.openConns())
	}
	if !strings.Contains(logs.String(), "idle connection closed") {
		t.Errorf("logs: %s", logs)
	}
	// One accepted and never used times out the same way.
	c2 := dial(t, path)
	expectClosed(t, c2, 5*time.Second)
	s.Close()
}

// Shutdown closes parked connections at once and waits for busy ones;
// Close closes parked ones too.
func TestShutdownClosesParked(t *testing.T) {
	noLeaks(t)
	started, release := make(chan struct{}), make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if len(r.Params) > 0 {
			close(started)
			<-release
		}
		io.WriteString(w, "ok")
		return EndStatus{}
	}))
	path, errc := serveUnix(t, s)
	var idle []net.Conn
	for i := 0; i < 3; i++ {
		c := dial(t, path)
		c.Write(requestBytes(1, true, nil, nil))
		readResponse(t, c, 1)
		idle = append(idle, c)
	}
	idle = append(idle, dial(t, path)) // never used
	waitParked(t, s, 4)
	busy := dial(t, path)
	busy.Write(requestBytes(1, true, []Param{{"X", "y"}}, nil))
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	for _, c := range idle {
		expectClosed(t, c, 2*time.Second)
	}
	close(release)
	if r := readResponse(t, busy, 1); string(r.stdout) != "ok" {
		t.Errorf("busy: %q", r.stdout)
	}
	expectClosed(t, busy, 2*time.Second)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if n := s.openConns(); n != 0 {
		t.Errorf("%d connections open after Shutdown", n)
	}

	s2, _ := testServer(t, echoHandler())
	path2, _ := serveUnix(t, s2)
	c := dial(t, path2)
	waitParked(t, s2, 1)
	s2.Close()
	expectClosed(t, c, 2*time.Second)
	if n := s2.openConns(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

// At MaxConns a new connection makes the one parked longest close, and
// that is logged once, not per connection.
func TestMaxConnsClosesOldestIdle(t *testing.T) {
	noLeaks(t)
	s, logs := testServer(t, echoHandler())
	s.MaxConns = 2
	path, _ := serveUnix(t, s)
	first := dial(t, path)
	first.Write(requestBytes(1, true, nil, nil))
	readResponse(t, first, 1)
	waitParked(t, s, 1)
	second := dial(t, path)
	waitParked(t, s, 2)
	third := dial(t, path)
	expectClosed(t, first, 2*time.Second)
	// second, then third: each parked again before the next request, so
	// that second has been idle the longest.
	for _, c := range []net.Conn{second, third} {
		c.Write(requestBytes(1, true, []Param{{"K", "v"}}, nil))
		if r := readResponse(t, c, 1); string(r.stdout) != "Content-Type: text/plain\r\n\r\nK=v\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
		waitParked(t, s, 2)
	}
	fourth := dial(t, path)
	expectClosed(t, second, 2*time.Second)
	fourth.Write(requestBytes(1, true, nil, nil))
	readResponse(t, fourth, 1)
	if n := s.openConns(); n != 2 {
		t.Errorf("%d connections open, MaxConns 2", n)
	}
	if n := strings.Count(logs.String(), "max-connections reached"); n != 1 {
		t.Errorf("logged %d times that max-connections was reached, want once:\n%s", n, logs)
	}
	s.Close()
}

// At MaxConns with every connection busy, a new one waits; once a busy one
// finishes its request and parks, it is closed for the waiting one.
func TestMaxConnsBusyThenIdle(t *testing.T) {
	noLeaks(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	s, logs := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
		return EndStatus{}
	}))
	s.MaxConns = 1
	path, _ := serveUnix(t, s)
	first := dial(t, path)
	first.Write(requestBytes(1, true, nil, nil))
	<-started
	second := dial(t, path)
	second.Write(requestBytes(1, true, nil, nil))
	if !eventually(func() bool { return strings.Contains(logs.String(), "max-connections reached") }) {
		t.Fatal("Serve did not wait at MaxConns")
	}
	release <- struct{}{}
	if r := readResponse(t, first, 1); string(r.stdout) != "done" {
		t.Fatalf("first: %q", r.stdout)
	}
	expectClosed(t, first, 2*time.Second) // idle now: closed to make room
	<-started
	close(release)
	if r := readResponse(t, second, 1); string(r.stdout) != "done" {
		t.Fatalf("second: %q", r.stdout)
	}
	s.Close()
}

// A connection that is not a socket is never parked: it keeps its reader
// and the idle timeout still closes it.
func TestNotSocketIdle(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	s.IdleTimeout = 200 * time.Millisecond
	s.init()
	client, srv := net.Pipe()
	defer client.Close()
	c := s.newConn(srv)
	go c.serve()
	go client.Write(requestBytes(1, true, []Param{{"A", "b"}}, nil))
	if r := readResponse(t, client, 1); string(r.stdout) != "Content-Type: text/plain\r\n\r\nA=b\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if n := parkedConns(s); n != 0 {
		t.Errorf("%d parked", n)
	}
	expectClosed(t, client, 5*time.Second)
	if !eventually(func() bool { return s.openConns() == 0 }) {
		t.Errorf("%d connections open", s.openConns())
	}
	s.Close()
}

// A connection that comes back from the poller after a request lingers
// twice as long as it was idle: a front end that reuses it every few
// hundred milliseconds does not have it parked and resumed per request.
// A new connection parked before its first request learns nothing (a
// burst of connections must not keep goroutines), nor does one idle for
// longer than maxLinger/2.
func TestResumedConnectionLingersLonger(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		io.WriteString(w, "ok")
		return EndStatus{}
	}))
	path, _ := serveUnix(t, s)
	c := dial(t, path)
	waitParked(t, s, 1)                // accepted with nothing to read
	time.Sleep(300 * time.Millisecond) // new: this idle spell teaches nothing
	c.Write(requestBytes(1, true, []Param{{"SCRIPT_NAME", "/"}}, nil))
	readResponse(t, c, 1)
	time.Sleep(150 * time.Millisecond)
	if n := parkedConns(s); n != 1 {
		t.Fatalf("a new connection still unparked 150 ms after its request (%d parked)", n)
	}
	time.Sleep(150 * time.Millisecond) // idle 300 ms after a request: the next linger is 600 ms
	c.Write(requestBytes(2, true, []Param{{"SCRIPT_NAME", "/"}}, nil))
	readResponse(t, c, 2)
	time.Sleep(150 * time.Millisecond)
	if n := parkedConns(s); n != 0 {
		t.Fatalf("parked 150 ms after a request, after an idle 300 ms (%d parked)", n)
	}
	waitParked(t, s, 1) // within eventually's 2 s
	for _, c := range []struct{ idle, want time.Duration }{
		{time.Millisecond, idleLinger}, {300 * time.Millisecond, 600 * time.Millisecond},
		{maxLinger / 2, maxLinger}, {maxLinger, idleLinger}, {time.Hour, idleLinger},
	} {
		if got := nextLinger(c.idle); got != c.want {
			t.Errorf("nextLinger(%v) = %v, want %v", c.idle, got, c.want)
		}
	}
}
