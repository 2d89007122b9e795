package bridge

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// borrow reads the STDIN records of id from a lent descriptor, starting with
// prefix: whole records up to want content bytes, and then ahead bytes
// more raw, unparsed (read-ahead). It returns the content and what it read
// and did not parse, which starts at a record header.
func borrow(fd int, prefix []byte, id uint16, want, ahead int) (content, rest []byte, err error) {
	raw := append([]byte(nil), prefix...)
	fill := func(n int) error {
		buf := make([]byte, 64<<10)
		deadline := time.Now().Add(5 * time.Second)
		for len(raw) < n {
			k, err := unix.Read(fd, buf)
			switch {
			case errors.Is(err, unix.EAGAIN):
				if time.Now().After(deadline) {
					return fmt.Errorf("%d of %d bytes after 5 s", len(raw), n)
				}
				unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
			case err != nil || k == 0:
				return fmt.Errorf("read: %v (%d bytes)", err, k)
			default:
				raw = append(raw, buf[:k]...)
			}
		}
		return nil
	}
	pos := 0
	for len(content) < want {
		if err := fill(pos + headerLen); err != nil {
			return nil, nil, err
		}
		h, _ := parseHeader(raw[pos:])
		if h.Type != typeStdin || h.ID != id || h.ContentLen == 0 {
			return nil, nil, fmt.Errorf("record %+v at %d", h, pos)
		}
		end := pos + headerLen + int(h.ContentLen) + int(h.PadLen)
		if err := fill(end); err != nil {
			return nil, nil, err
		}
		content = append(content, raw[pos+headerLen:pos+headerLen+int(h.ContentLen)]...)
		pos = end
	}
	if err := fill(pos + ahead); err != nil {
		return nil, nil, err
	}
	return content, raw[pos:], nil
}

// readLending reads r's body as a worker does, borrowing the connection
// whenever the reader lends it: loaned gets each loan and the body bytes
// read before it, and says how many content bytes to borrow and how many
// to read ahead, or false to give the loan back untouched and fail.
func readLending(t *testing.T, r *Request, size int, loaned func(loan *Loan, n int) (want, ahead int, ok bool)) ([]byte, bool) {
	l := r.Stdin.(Lender)
	var got []byte
	buf := make([]byte, size)
	for {
		n, err := r.Stdin.Read(buf)
		got = append(got, buf[:n]...)
		switch {
		case errors.Is(err, ErrLent):
			loan := l.TakeLoan()
			want, ahead, ok := loaned(loan, len(got))
			if !ok {
				l.Repay(loan.Prefix, false, false)
				return got, false
			}
			content, rest, err := borrow(loan.FD, loan.Prefix, loan.ID, want, ahead)
			if err != nil {
				t.Errorf("borrower: %v", err)
				l.Repay(nil, true, false)
				return got, false
			}
			got = append(got, content...)
			l.Repay(rest, false, false)
		case err == io.EOF:
			return got, true
		case err != nil:
			t.Errorf("read: %v", err)
			return got, false
		}
	}
}

// A borrower that read ahead gives back more than the reader's buffer
// holds: the reader parses those bytes first, and lends the request no
// second time (it asked once; the bytes it gave back come first).
func TestLoanReadAheadComesBackFirst(t *testing.T) {
	body := make([]byte, 1<<20+77)
	for i := range body {
		body[i] = byte(i*7 + i>>9)
	}
	loans := make(chan int, 4)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if r.ID == 1 { // the next request reads as a plain one
			r.Stdin.(Lender).WantLoan()
		}
		got, ok := readLending(t, r, 32<<10, func(loan *Loan, n int) (int, int, bool) {
			loans <- n
			// A second loan fails the test; ahead: more than the reader's buffer holds.
			return 200 << 10, 100 << 10, len(loans) == 1
		})
		if !ok {
			return EndStatus{AppStatus: 1}
		}
		fmt.Fprintf(w, "Content-Type: text/plain\r\n\r\n%x %d", sha256.Sum256(got), len(got))
		return EndStatus{}
	}))
	client := serveConn(t, s)
	var in []byte
	in = append(in, beginRec(1, RoleResponder, true)...)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	for i, rest := 0, body; len(rest) > 0; i++ {
		n := min(len(rest), 16384-i%5)
		in = append(in, rec(typeStdin, 1, rest[:n], i%8)...)
		rest = rest[n:]
	}
	in = append(in, rec(typeStdin, 1, nil, 0)...)
	go client.Write(in)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp := readResponse(t, client, 1)
	want := fmt.Sprintf("Content-Type: text/plain\r\n\r\n%x %d", sha256.Sum256(body), len(body))
	if n := len(loans); n != 1 {
		t.Fatalf("%d loans, want 1", n)
	}
	if string(resp.stdout) != want {
		t.Fatalf("got %q, want %q", resp.stdout, want)
	}
	// The connection serves on.
	client.Write(requestBytes(2, true, nil, []byte("after")))
	if r := readResponse(t, client, 2); !bytes.HasSuffix(r.stdout, []byte(fmt.Sprintf("%x 5", sha256.Sum256([]byte("after"))))) {
		t.Fatalf("next request: %q", r.stdout)
	}
}

// A request that waits for a thread before it reads (the gateway buffers a
// probe of a large body and asks for the loan, then queues) leaves the rest
// of its body on the socket for the borrower: the reader takes the probe
// and at most what one read of its buffer brought, not body-buffer-size.
func TestWaitingBorrowerLeavesTheBodyOnTheSocket(t *testing.T) {
	const size, probe = 4 << 20, 64 << 10
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*13 + i>>11)
	}
	bridged := make(chan int, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if err := r.Stdin.(Body).Buffer(probe); err != nil {
			t.Errorf("buffer: %v", err)
			return EndStatus{AppStatus: 1}
		}
		r.Stdin.(Lender).WantLoan()
		time.Sleep(200 * time.Millisecond) // queued: the reader must not read on meanwhile
		got, ok := readLending(t, r, 64<<10, func(loan *Loan, n int) (int, int, bool) {
			bridged <- n + len(loan.Prefix)
			return size - n, 0, true
		})
		if !ok {
			return EndStatus{AppStatus: 1}
		}
		fmt.Fprintf(w, "Content-Type: text/plain\r\n\r\n%x", sha256.Sum256(got))
		return EndStatus{}
	}))
	client := serveConn(t, s)
	var in []byte
	in = append(in, beginRec(1, RoleResponder, true)...)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		in = append(in, rec(typeStdin, 1, rest[:n], 0)...)
		rest = rest[n:]
	}
	in = append(in, rec(typeStdin, 1, nil, 0)...)
	go client.Write(in)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp := readResponse(t, client, 1)
	if want := fmt.Sprintf("Content-Type: text/plain\r\n\r\n%x", sha256.Sum256(body)); string(resp.stdout) != want {
		t.Fatalf("got %q, want %q", resp.stdout, want)
	}
	// The probe, plus what came with the read that completed it.
	if n, max := <-bridged, probe+readBufferSize+headerLen+maxContent; n > max {
		t.Fatalf("the bridge read %d body bytes before the loan, want at most %d", n, max)
	}
}
