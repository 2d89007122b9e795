package bridge

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
)

// socketPair returns two connected unix stream sockets.
func socketPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conv(fds[0]), conv(fds[1])
}

// syncBuffer collects log output from several goroutines.
type syncBuffer = testlog.Buffer

// testServer returns a server logging into a buffer, closed at cleanup.
func testServer(t testing.TB, h Handler) (*Server, *syncBuffer) {
	logs := &syncBuffer{}
	s := &Server{Handler: h, Log: zerolog.New(logs)}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// serveConn serves one end of a socket pair and returns the other.
func serveConn(t testing.TB, s *Server) *net.UnixConn {
	t.Helper()
	client, srv := socketPair(t)
	go s.newConn(srv).serve()
	t.Cleanup(func() { client.Close() })
	return client
}

// waitConnsEnded waits until every connection of s has ended and released
// everything (the reader of an idle connection that parks ends long
// before its connection does).
func waitConnsEnded(t testing.TB, s *Server, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); s.openConns() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after %v", s.openConns(), d)
		}
	}
}

// noLeaks fails the test when goroutines started during it outlive it.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// rec frames one record with the given padding (filled with garbage).
func rec(typ uint8, id uint16, content []byte, pad int) []byte {
	b := make([]byte, 8, 8+len(content)+pad)
	b[0], b[1] = 1, typ
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint16(b[4:], uint16(len(content)))
	b[6] = uint8(pad)
	b = append(b, content...)
	for i := 0; i < pad; i++ {
		b = append(b, 0xEE)
	}
	return b
}

func beginRec(id, role uint16, keep bool) []byte {
	body := make([]byte, 8)
	binary.BigEndian.PutUint16(body, role)
	if keep {
		body[2] = 1
	}
	return rec(typeBeginRequest, id, body, 0)
}

func encodePairs(ps ...Param) []byte {
	var b []byte
	for _, p := range ps {
		b = appendPair(b, p.Name, p.Value)
	}
	return b
}

// request frames a whole responder request: params in one record, stdin in
// records of up to 65535 bytes.
func requestBytes(id uint16, keep bool, ps []Param, stdin []byte) []byte {
	b := beginRec(id, RoleResponder, keep)
	if enc := encodePairs(ps...); len(enc) > 0 {
		b = append(b, rec(typeParams, id, enc, 0)...)
	}
	b = append(b, rec(typeParams, id, nil, 0)...)
	for len(stdin) > 0 {
		n := min(len(stdin), 65535)
		b = append(b, rec(typeStdin, id, stdin[:n], 0)...)
		stdin = stdin[n:]
	}
	return append(b, rec(typeStdin, id, nil, 0)...)
}

type record struct {
	header
	content []byte
}

// readRec reads one record and checks the padding rule of our writer.
func readRec(t testing.TB, r io.Reader) (record, error) {
	t.Helper()
	var hb [8]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return record{}, err
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		t.Fatalf("bad header from server: %v", err)
	}
	if (int(h.ContentLen)+int(h.PadLen))%8 != 0 || h.PadLen > 7 {
		t.Errorf("record %+v not padded to 8", h)
	}
	b := make([]byte, int(h.ContentLen)+int(h.PadLen))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("truncated record from server: %v", err)
	}
	return record{h, b[:h.ContentLen]}, nil
}

// response is what the server sent for one request.
type response struct {
	stdout, stderr []byte
	records        []record
	end            EndStatus
}

// readResponses reads until END_REQUEST has come for every id given.
func readResponses(t testing.TB, r io.Reader, ids ...uint16) map[uint16]*response {
	t.Helper()
	out := make(map[uint16]*response)
	for _, id := range ids {
		out[id] = &response{}
	}
	pending := len(ids)
	for pending > 0 {
		rc, err := readRec(t, r)
		if err != nil {
			t.Fatalf("reading responses (%d pending): %v", pending, err)
		}
		resp := out[rc.ID]
		if resp == nil {
			t.Fatalf("record for unexpected id %d: %+v", rc.ID, rc.header)
		}
		resp.records = append(resp.records, rc)
		switch rc.Type {
		case typeStdout:
			resp.stdout = append(resp.stdout, rc.content...)
		case typeStderr:
			resp.stderr = append(resp.stderr, rc.content...)
		case typeEndRequest:
			resp.end = EndStatus{AppStatus: binary.BigEndian.Uint32(rc.content), ProtocolStatus: rc.content[4]}
			pending--
		default:
			t.Fatalf("unexpected record type %d", rc.Type)
		}
	}
	return out
}

func readResponse(t testing.TB, r io.Reader, id uint16) *response {
	t.Helper()
	return readResponses(t, r, id)[id]
}

// expectClosed checks that the server closed the connection within d.
func expectClosed(t testing.TB, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed within %v: %v (read %q)", d, err, b)
	}
}

// echoHandler answers with the params and the whole STDIN.
func echoHandler() HandlerFunc {
	return func(w ResponseWriter, r *Request) EndStatus {
		var sb strings.Builder
		sb.WriteString("Content-Type: text/plain\r\n\r\n")
		for _, p := range r.Params {
			fmt.Fprintf(&sb, "%s=%s\n", p.Name, p.Value)
		}
		io.WriteString(w, sb.String())
		body, err := io.ReadAll(r.Stdin)
		if err != nil {
			return EndStatus{AppStatus: 9}
		}
		w.Write(body)
		return EndStatus{AppStatus: uint32(len(r.Params))}
	}
}

// eventually polls cond for up to two seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// openConns reports the connections open, served or parked.
func (s *Server) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}
