package bridge

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Buffer returns once n bytes are unread, or at the end of STDIN.
func TestBodyBuffer(t *testing.T) {
	p := newStdinPipe(newStdinMemory(64, 0), t.TempDir())
	done := make(chan error, 1)
	go func() { done <- p.Buffer(100) }()
	p.write(make([]byte, 60))
	select {
	case err := <-done:
		t.Fatalf("Buffer returned %v with 60 of 100 bytes", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.write(make([]byte, 50)) // 40 of them spooled: they count
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { done <- p.Buffer(1000) }()
	p.finish()
	if err := <-done; err != nil {
		t.Fatalf("Buffer at the end of STDIN: %v", err)
	}
}

// A read that waits longer than the idle timeout fails, the body is
// abandoned, and bytes that come in time keep it going.
func TestBodyIdleTimeout(t *testing.T) {
	p := newStdinPipe(newStdinMemory(64, 0), "")
	p.SetIdleTimeout(150 * time.Millisecond)
	go func() {
		for i := 0; i < 3; i++ { // 300 ms of trickle, each gap under the timeout
			time.Sleep(100 * time.Millisecond)
			p.write([]byte("x"))
		}
	}()
	b := make([]byte, 10)
	start := time.Now()
	for i := 0; i < 3; i++ {
		if _, err := p.Read(b); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	_, err := p.Read(b)
	if !errors.Is(err, ErrStdinTimeout) {
		t.Fatalf("stalled read: %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v, want about 450 ms", d)
	}
	select {
	case <-p.ended:
	default:
		t.Error("a timed-out body does not release the response")
	}
	p.write([]byte("late")) // dropped
	if _, err := p.Read(b); !errors.Is(err, ErrStdinTimeout) {
		t.Errorf("read after the timeout: %v", err)
	}
}

// A handler that gives up a stalled body (Abandon) can answer at once:
// the response no longer waits for the end of STDIN.
func TestBodyAbandonAnswers(t *testing.T) {
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		b := r.Stdin.(Body)
		b.SetIdleTimeout(100 * time.Millisecond)
		_, err := io.ReadAll(r.Stdin)
		if !errors.Is(err, ErrStdinTimeout) {
			io.WriteString(w, "unexpected "+err.Error())
			return EndStatus{}
		}
		io.WriteString(w, "Status: 408 Request Timeout\r\n\r\n")
		return EndStatus{}
	}))
	client := sendStalledBody(t, s)
	start := time.Now()
	r := readResponse(t, client, 1)
	if !strings.HasPrefix(string(r.stdout), "Status: 408") {
		t.Fatalf("response %q", r.stdout)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v", d)
	}
}

// A response that must wait for the end of STDIN (an application that did
// not read a stalled body) goes out once the body is idle past its timeout.
func TestBodyIdleTimeoutReleasesResponse(t *testing.T) {
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		r.Stdin.(Body).SetIdleTimeout(100 * time.Millisecond)
		io.WriteString(w, "Status: 200 OK\r\n\r\nanswered without reading")
		return EndStatus{}
	}))
	client := sendStalledBody(t, s)
	start := time.Now()
	r := readResponse(t, client, 1)
	if !strings.HasSuffix(string(r.stdout), "answered without reading") {
		t.Fatalf("response %q", r.stdout)
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 2*time.Second {
		t.Errorf("answered after %v, want about the idle timeout (100 ms)", d)
	}
}

// sendStalledBody sends request 1 with CONTENT_LENGTH 100 and 10 bytes of
// STDIN, no more, and returns the client's end of the connection.
func sendStalledBody(t *testing.T, s *Server) net.Conn {
	client := serveConn(t, s)
	b := beginRec(1, RoleResponder, true)
	b = append(b, rec(typeParams, 1, encodePairs(Param{"CONTENT_LENGTH", "100"}), 0)...)
	b = append(b, rec(typeParams, 1, nil, 0)...)
	b = append(b, rec(typeStdin, 1, []byte("only ten.."), 0)...)
	client.Write(b)
	return client
}
