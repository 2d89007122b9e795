package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveUnix runs s on a fresh unix socket and returns its path and the
// channel Serve's result arrives on.
func serveUnix(t *testing.T, s *Server) (string, chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen("unix:"+path, ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	return path, errc
}

func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A connection whose request has ended (EndWith) while its handler still
// runs is idle once that handler returns, and Shutdown closes it then, not
// after the requests of other connections are done.
func TestShutdownClosesWhenTheLastHandlerReturns(t *testing.T) {
	noLeaks(t)
	ended, finish := make(chan struct{}), make(chan struct{})
	started, release := make(chan struct{}), make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if len(r.Params) > 0 && r.Params[0].Name == "QUICK" {
			if ok, err := w.(Ender).EndWith([]byte("Status: 200 OK\r\n\r\n"), []byte("quick")); !ok || err != nil {
				t.Errorf("EndWith: %v %v", ok, err)
			}
			close(ended)
			<-finish // still running after its request ended
			return EndStatus{}
		}
		close(started)
		<-release
		return EndStatus{}
	}))
	path, _ := serveUnix(t, s)
	busy, idle := dial(t, path), dial(t, path)
	idle.Write(requestBytes(1, true, []Param{{"QUICK", "1"}}, nil))
	readResponse(t, idle, 1)
	<-ended
	busy.Write(requestBytes(1, true, nil, nil))
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // Shutdown has found idle's handler running
	close(finish)
	expectClosed(t, idle, 2*time.Second)
	close(release)
	readResponse(t, busy, 1)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	noLeaks(t)
	started, release := make(chan struct{}), make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if len(r.Params) > 0 && r.Params[0].Name == "QUICK" {
			return EndStatus{}
		}
		close(started)
		<-release
		io.WriteString(w, "finished")
		return EndStatus{AppStatus: 3}
	}))
	path, errc := serveUnix(t, s)
	busy, idle := dial(t, path), dial(t, path)
	// idle has served a request, so the server surely has it when draining
	// starts (one still being accepted then waits for its request, to
	// answer it 503: a web server sends one right after connecting).
	idle.Write(requestBytes(1, true, []Param{{"QUICK", "1"}}, nil))
	readResponse(t, idle, 1)
	busy.Write(requestBytes(1, true, nil, nil))
	<-started
	if s.Active() != 1 {
		t.Errorf("Active = %d, want 1", s.Active())
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	expectClosed(t, idle, 2*time.Second) // idle connections go at once
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	// While draining, the listener stays open and a new request gets a
	// prompt 503 with FCGI_OVERLOADED.
	late := dial(t, path)
	late.Write(requestBytes(1, false, []Param{{"SCRIPT_NAME", "/late"}}, []byte("body")))
	if r := readResponse(t, late, 1); !strings.HasPrefix(string(r.stdout), "Status: 503") || r.end.ProtocolStatus != StatusOverloaded {
		t.Errorf("request while draining: %q %+v", r.stdout, r.end)
	}
	expectClosed(t, late, 2*time.Second)
	close(release)
	r := readResponse(t, busy, 1)
	if string(r.stdout) != "finished" || r.end.AppStatus != 3 {
		t.Errorf("response %q %+v", r.stdout, r.end)
	}
	expectClosed(t, busy, 2*time.Second) // keep-alive, closed after its request
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("still accepting after Shutdown")
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func TestShutdownDeadlineCancels(t *testing.T) {
	noLeaks(t)
	started := make(chan struct{})
	ctxErr := make(chan error, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		close(started)
		<-r.Context().Done()
		ctxErr <- r.Context().Err()
		return EndStatus{}
	}))
	path, errc := serveUnix(t, s)
	c := dial(t, path)
	c.Write(requestBytes(1, true, nil, nil))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("request context: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	expectClosed(t, c, 2*time.Second)
}

func TestServeAfterClose(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

// At MaxConns with every connection busy, a new one waits (in the listen
// backlog) until one closes.
func TestMaxConnsWaits(t *testing.T) {
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
	first.Write(requestBytes(1, false, nil, nil))
	<-started
	second := dial(t, path) // queued in the backlog, not served yet
	second.Write(requestBytes(1, true, nil, nil))
	if !eventually(func() bool { return strings.Contains(logs.String(), "max-connections reached") }) {
		t.Fatal("Serve did not wait at MaxConns")
	}
	if n := s.openConns(); n != 1 {
		t.Fatalf("%d connections open at MaxConns 1", n)
	}
	close(release)
	if r := readResponse(t, first, 1); string(r.stdout) != "done" {
		t.Fatalf("first: %q", r.stdout)
	}
	expectClosed(t, first, 2*time.Second) // no FCGI_KEEP_CONN
	if r := readResponse(t, second, 1); string(r.stdout) != "done" {
		t.Fatalf("second: %q", r.stdout)
	}
	if n := strings.Count(logs.String(), "max-connections reached"); n != 1 {
		t.Errorf("logged %d times that max-connections was reached, want once:\n%s", n, logs)
	}
	s.Close()
}

func TestManyConnections(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	path, _ := serveUnix(t, s)
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		go func() {
			c, err := net.Dial("unix", path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.Write(requestBytes(7, false, []Param{{"K", "v"}}, []byte("hello")))
			b, err := io.ReadAll(c)
			if err == nil && len(b) < 40 {
				err = errors.New("short response")
			}
			errs <- err
		}()
	}
	for i := 0; i < 50; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	s.Close()
}

// FCGI_GET_VALUES reports the default MaxConns.
func TestGetValuesDefaultMaxConns(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	client := serveConn(t, s)
	client.Write(rec(typeGetValues, 0, encodePairs(Param{"FCGI_MAX_CONNS", ""}), 0))
	rc, err := readRec(t, client)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := decodePairs(string(rc.content), nil)
	if err != nil || len(ps) != 1 || ps[0] != (Param{"FCGI_MAX_CONNS", strconv.Itoa(DefaultMaxConns)}) {
		t.Fatalf("got %v %v", ps, err)
	}
}

// A unix connection's send buffer holds more than the system's default
// (208 KiB) of a response while the web server reads none of it, so that
// a large response goes out in fewer, larger writes.
func TestUnixConnSendBuffer(t *testing.T) {
	noLeaks(t)
	const size = 300 << 10
	wrote := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		w.Write(make([]byte, size))
		close(wrote)
		return EndStatus{}
	}))
	path, _ := serveUnix(t, s)
	c := dial(t, path)
	c.Write(requestBytes(1, true, nil, nil))
	select {
	case <-wrote:
	case <-time.After(3 * time.Second):
		t.Error("a 300 KiB response did not fit the connection's send buffer")
	}
	if got := readResponse(t, c, 1); len(got.stdout) < size {
		t.Errorf("response of %d bytes, want at least %d", len(got.stdout), size)
	}
}

// A request refused before its STDIN came (here: PARAMS over
// MaxParamsBytes) leaves STDIN to come after its end. Shutdown then closes
// the connection once the front end has sent it, as the end of the last
// request does on a closing connection, not at once, under the web
// server's writes.
func TestShutdownDrainsStdinStillComing(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	s.MaxParamsBytes = 100
	path, _ := serveUnix(t, s)
	c := dial(t, path)
	in := beginRec(1, RoleResponder, true)
	in = append(in, rec(typeParams, 1, encodePairs(Param{"A", strings.Repeat("x", 100)}), 0)...)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, rec(typeStdin, 1, make([]byte, 1000), 0)...)
	c.Write(in)
	if r := readResponse(t, c, 1); !strings.HasPrefix(string(r.stdout), "Status: 4") {
		t.Fatalf("stdout %q", r.stdout)
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n > 0 || !isNetTimeout(err) {
		t.Fatalf("closed before STDIN ended: %d bytes, %v", n, err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write(append(rec(typeStdin, 1, make([]byte, 3000), 0), rec(typeStdin, 1, nil, 0)...)); err != nil {
		t.Fatalf("rest of STDIN: %v", err)
	}
	expectClosed(t, c, 2*time.Second)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
